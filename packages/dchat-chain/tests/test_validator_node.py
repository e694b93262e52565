"""A validator node's decisions around its driver, and the two link directions' messages.

:class:`ValidatorBook` is driven over the in-memory certified chain of
``conftest`` (an :class:`IndexedApp` of four validators); the wire helpers get
good, malformed and arbitrary bytes.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import InvalidMessageError, SyncError, Transaction
from dchat_chain.lowlevel import (
    DuplicateVoteEvidence,
    PeerStats,
    PeerTag,
    SyncRequest,
    ValidatorBook,
    Vote,
    VoteKind,
    certified_height,
    decode_inbound,
    encode_peer_message,
    encode_txs,
    light_state_name,
    slash_tx,
    sync_response_payload,
)
from dchat_core import DchatError, PeerError
from dchat_crypto import BlsSecretKey

from .conftest import ACCOUNTS, BLS

# -- peer bookkeeping -------------------------------------------------------------------


def test_redial_backoff_doubles_to_its_cap_and_a_dial_resets_it() -> None:
    peer = PeerStats("node-1")
    assert [peer.dial_failed() for _ in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    peer.dialled()
    assert peer.connects == 1
    assert peer.dial_failed("LinkTimeoutError") == 0.2
    assert dict(peer.dial_failures) == {"DchatError": 7, "LinkTimeoutError": 1}


def test_peer_status_entry() -> None:
    peer = PeerStats("node-1")
    peer.connected, peer.dropped = True, 3
    assert peer.status() == {"node_id": "node-1", "connected": True, "dropped": 3}


# -- the link messages ------------------------------------------------------------------


def test_inbound_messages_decode_by_tag() -> None:
    assert decode_inbound(encode_peer_message(PeerTag.CONSENSUS, b"vote")) == b"vote"
    assert decode_inbound(encode_txs([b"a", b"bc"])) == [b"a", b"bc"]
    request = SyncRequest(5, 10)
    message = encode_peer_message(PeerTag.SYNC_REQUEST, request.to_bytes())
    assert decode_inbound(message) == request


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidMessageError),
        (b"\x09rest", InvalidMessageError),
        (encode_peer_message(PeerTag.SYNC_RESPONSE, b""), InvalidMessageError),
        (encode_peer_message(PeerTag.TXS, b"\xff\x00"), InvalidMessageError),
        (encode_peer_message(PeerTag.TXS, b"\x01"), InvalidMessageError),  # not a list
        (encode_peer_message(PeerTag.SYNC_REQUEST, b"\xa0"), SyncError),
    ],
)
def test_bad_inbound_messages_are_typed_peer_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_inbound(data)
    with pytest.raises(PeerError):
        decode_inbound(data)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_inbound_bytes_decode_or_give_a_typed_peer_error(data: bytes) -> None:
    with contextlib.suppress(PeerError):  # anything else (a crash) fails the test
        decode_inbound(data)


def test_only_sync_responses_come_back_on_a_dialled_link() -> None:
    assert sync_response_payload(encode_peer_message(PeerTag.SYNC_RESPONSE, b"xyz")) == b"xyz"
    for tag in (PeerTag.CONSENSUS, PeerTag.TXS, PeerTag.SYNC_REQUEST):
        with pytest.raises(InvalidMessageError):
            sync_response_payload(encode_peer_message(tag, b"xyz"))
    with pytest.raises(InvalidMessageError):
        sync_response_payload(b"")


@given(st.binary(max_size=16))
def test_dialled_link_payloads_are_what_follows_the_tag(data: bytes) -> None:
    try:
        assert sync_response_payload(data) == data[1:]
    except InvalidMessageError:
        assert data[:1] != bytes([PeerTag.SYNC_RESPONSE])


def test_light_state_names_are_one_safe_path_component() -> None:
    assert light_state_name("dchat-testnet-currency") == "dchat-testnet-currency.light"
    assert light_state_name("../a/b c") == ".._a_b_c.light"


# -- the book -----------------------------------------------------------------------------


def _book(chain: Any, every: int = 0) -> ValidatorBook:
    """A book whose driver resumes from ``chain``'s current state (validator 0)."""
    book = ValidatorBook(chain.app, ACCOUNTS[0], every)
    height = chain.signed.height
    last = chain.signed.certificates.get(height)
    book.resume(chain.signed.state, last, None, BLS[0], 0)
    return book


def _evidence(chain: Any) -> DuplicateVoteEvidence:
    """Validator 1 precommitting two blocks at one height and round."""
    validators = chain.app.genesis_state().validators.validators
    index = next(i for i, v in enumerate(validators) if v.bls_public_key == BLS[1].public_key)
    chain_id = chain.app.chain_id
    first, second = (
        Vote.create(BLS[1], chain_id, VoteKind.PRECOMMIT, 1, 0, block, index)
        for block in (b"\x01" * 32, None)
    )
    return DuplicateVoteEvidence.from_votes(validators[index].validator_id, first, second)


def test_resume_starts_the_snapshot_count_at_the_replayed_height(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(3)
    book = _book(chain, every=2)
    assert book.snapshot_height == 3
    assert book.driver.engine.state.height == 4
    assert book.snapshot_due(3, chain.signed.state) is None  # already there


def test_a_snapshot_is_due_every_interval_and_one_at_a_time(validator_chain: Any) -> None:
    chain = validator_chain()
    book = _book(chain, every=2)
    chain.grow(1)
    assert book.snapshot_due(1, chain.signed.state) is None  # not at an interval yet
    chain.grow(2)
    assert book.snapshot_due(2, chain.signed.state) is None  # taken, held for block 3
    assert book.snapshot_height == 2
    assert book.snapshot_due(2, chain.signed.state) is None
    chain.grow(3)
    snapshot = book.snapshot_due(3, chain.signed.state)  # a header above it is stored now
    assert snapshot is not None
    assert snapshot.height == 2
    chain.grow(4)
    assert book.snapshot_due(4, chain.signed.state) is None  # the last one is being written
    book.snapshot_written()
    assert book.snapshot_due(4, chain.signed.state) is None  # taken, held
    chain.grow(5)
    later = book.snapshot_due(5, chain.signed.state)
    assert later is not None
    assert later.height == 4


def test_no_snapshot_when_the_state_is_past_the_block_or_snapshots_are_off(
    validator_chain: Any,
) -> None:
    chain = validator_chain()
    book = _book(chain, every=2)
    chain.grow(3)
    assert book.snapshot_due(2, chain.signed.state) is None  # a later block already ran
    assert _book(chain, every=0).snapshot_due(4, chain.signed.state) is None


def test_a_slash_on_the_currency_chain_is_signed_at_the_next_nonce(validator_chain: Any) -> None:
    chain = validator_chain()
    evidence = _evidence(chain)
    raw = slash_tx(chain.app, ACCOUNTS[0], evidence)
    assert raw is not None
    tx = Transaction.decode(raw)
    assert (tx.kind, tx.nonce, tx.chain_id) == ("slash", 0, chain.app.chain_id)
    assert tx.sender == ACCOUNTS[0].public_key.to_bytes()
    assert tx.fee == int(chain.app.inner.params()["min_fee"])
    assert tx.body == {"evidence": evidence.to_bytes()}


def test_evidence_is_kept_and_each_report_submits_a_slash(validator_chain: Any) -> None:
    chain = validator_chain()
    book = _book(chain)
    evidence = _evidence(chain)
    assert book.on_evidence(evidence) is None
    assert book.on_evidence(evidence) is None  # at the next nonce: the mempool's is counted
    assert len(chain.app.mempool) == 2
    assert book.evidence == [evidence, evidence]


def test_a_refused_slash_is_returned_and_the_evidence_still_kept(validator_chain: Any) -> None:
    chain = validator_chain()
    book = _book(chain)
    stranger = BlsSecretKey.from_seed(b"\x07" * 32)
    first, second = (
        Vote.create(stranger, chain.app.chain_id, VoteKind.PRECOMMIT, 1, 0, block, 0)
        for block in (b"\x01" * 32, None)
    )
    evidence = DuplicateVoteEvidence.from_votes(b"\x05" * 32, first, second)
    refused = book.on_evidence(evidence)
    assert isinstance(refused, DchatError)
    assert (book.evidence, len(chain.app.mempool)) == ([evidence], 0)


def test_the_chat_chain_only_counts_evidence(validator_chain: Any) -> None:
    chain = validator_chain("chat")
    book = _book(chain)
    evidence = _evidence(chain)
    assert slash_tx(chain.app, ACCOUNTS[0], evidence) is None
    assert book.on_evidence(evidence) is None
    assert (len(book.evidence), len(chain.app.mempool)) == (1, 0)


def test_submission_results(validator_chain: Any) -> None:
    chain = validator_chain()
    book = _book(chain)
    tx = chain.transfer()
    assert book.submit(tx.raw) == {"hash": tx.hash.hex(), "accepted": True}
    again = book.submit(tx.raw)
    assert again["accepted"] is False
    assert again["error"] == "DuplicateTransactionError"
    assert again["message"]
    bad = book.submit(b"\x00junk")
    assert (bad["accepted"], bad["error"]) == (False, "MalformedTransactionError")


def test_status_document(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(2)
    book = _book(chain)
    peer = PeerStats("node-9")
    status = book.status([peer], chain.store.height())
    state = chain.signed.state
    assert list(status) == [
        "chain_id",
        "app",
        "height",
        "last_block_hash",
        "app_hash",
        "round",
        "step",
        "validators",
        "mempool",
        "peers",
        "evidence",
        "rejected",
        "certified_height",
    ]
    assert status["chain_id"] == "idx"
    assert (status["app"], status["height"], status["round"]) == ("currency", 2, 0)
    assert status["app_hash"] == state.app_hash.hex()
    assert status["last_block_hash"] == state.last_block_hash.hex()
    assert len(status["validators"]) == 4
    assert status["validators"][0]["power"] == 100
    assert status["peers"] == [peer.status()]
    assert (status["mempool"], status["evidence"], status["rejected"]) == (0, 0, 0)
    assert status["certified_height"] == certified_height(chain.app, 2)


def test_the_driver_is_there_only_after_resume(validator_chain: Any) -> None:
    book = ValidatorBook(validator_chain().app, ACCOUNTS[0], 0)
    with pytest.raises(AssertionError):
        _ = book.driver
