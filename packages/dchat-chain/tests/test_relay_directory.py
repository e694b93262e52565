"""The relay directory: listings with node keys and tags, the index, and reading it by proofs.

Relays are listed on an in-memory certified chat chain and bonded on a
currency chain (conftest's :class:`ValidatorChain`); :class:`DirectoryRead`
reads both through light readers the way a user node does. A lying node is
an answer rewritten on the way; every lie is refused by proof. The decoders
get hostile bytes.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import ChainStateError, InvalidTransactionError, Transaction
from dchat_chain._chat_directory import register_relay
from dchat_chain._state_records import put_record
from dchat_chain.lowlevel import (
    ChoicePolicy,
    DirectoryAnswerError,
    DirectoryRead,
    DirectoryView,
    HomeRelays,
    InvalidStateProofError,
    LightReader,
    SingleOperatorViewError,
    StateStore,
    choose_home_relays,
    decode_relay_bond,
    decode_relay_index,
    decode_relay_listing,
    epoch_score,
)
from dchat_core import DecodeError, IdentityId, canonical_decode, canonical_encode
from dchat_crypto import SigningKey
from dchat_testing import hostile_bytes

NODE_KEYS = [bytes([60 + i]) * 32 for i in range(4)]


def _listing(i: int, **extra: Any) -> dict[str, Any]:
    body = {"endpoint": f"127.0.0.1:{7400 + i}", "region": f"r{i}", "stake_ref": bytes([i]) * 32}
    return body | {"node": NODE_KEYS[i], "tags": [f"as:{64500 + i}"], "label": f"op{i}"} | extra


class Net:
    """A chat chain listing relays 0..2 (accounts 0..2) and a currency chain bonding them."""

    def __init__(self, validator_chain: Any, *, labels: list[str] | None = None) -> None:
        self.chat = validator_chain("chat", "chat-test", {"pow_bits": 0})
        self.currency = validator_chain("currency", "cur-test")
        pks = self.chat.PK
        self.ids = [bytes(IdentityId.derive(pk)) for pk in pks]
        self.chat.block(
            [
                self.chat.tx(i, "register_identity", {"pow": b"", "doc": bytes(32)}, 0)
                for i in range(3)
            ]
        )
        listings = []
        for i in range(3):
            extra = {"stake_ref": pks[i]} | ({"label": labels[i]} if labels else {})
            listings.append(self.chat.tx(i, "register_relay", _listing(i, **extra)))
        self.chat.block(listings)
        self.currency.block([self.currency.tx(i, "relay_bond", {"amount": 10}) for i in range(3)])
        for chain in (self.chat, self.currency):
            chain.block()
            chain.block()
        self.readers = {
            "chat": LightReader.restore(None, self.chat.genesis),
            "currency": LightReader.restore(None, self.currency.genesis),
        }

    def fetch(self, chain: str, path: str) -> dict[str, Any]:
        return (self.chat if chain == "chat" else self.currency).fetch(path)

    def read(self, lie: Any = None) -> DirectoryView:
        directory = DirectoryRead()
        while (step := directory.next_read()) is not None:
            chain, path, key = step
            read = self.readers[chain].read(path, key)
            while (request := read.next_request()) is not None:
                answer = self.fetch(chain, request)
                read.receive(answer if lie is None else lie(request, answer))
            directory.receive(read.result()[1])
        return directory.view()


def test_the_chain_keeps_an_index_of_listed_relays(validator_chain: Any) -> None:
    net = Net(validator_chain)
    state = net.chat.app.inner.state
    assert decode_relay_index(state.committed_get(b"relayidx")) == tuple(sorted(net.ids[:3]))
    record = canonical_decode(state.committed_get(b"relay/" + net.ids[0]))
    assert record["node"] == NODE_KEYS[0]
    assert (record["tags"], record["label"]) == (["as:64500"], "op0")
    net.chat.block([net.chat.tx(1, "unregister_relay", {})])
    left = decode_relay_index(state.committed_get(b"relayidx"))
    assert left == tuple(sorted([net.ids[0], net.ids[2]]))


@pytest.mark.parametrize(
    "bad",
    [
        {"tags": ["UPPER"]},
        {"tags": ["b", "a"]},
        {"tags": ["a", "a"]},
        {"tags": ["x" * 33]},
        {"tags": [f"t{i}" for i in range(9)]},
        {"node": b"short"},
        {"label": "x" * 65},
        {"colour": "red"},
    ],
)
def test_a_malformed_listing_is_refused_by_the_chain(validator_chain: Any, bad: Any) -> None:
    net = Net(validator_chain)
    before = net.chat.app.inner.state.committed_get(b"relay/" + net.ids[3])
    net.chat.block([net.chat.tx(3, "register_identity", {"pow": b"", "doc": bytes(32)}, 0)])
    net.chat.block([net.chat.tx(3, "register_relay", _listing(3, **bad))])
    assert before is None
    assert net.chat.app.inner.state.committed_get(b"relay/" + net.ids[3]) is None


def test_a_listing_without_the_new_fields_still_registers(validator_chain: Any) -> None:
    net = Net(validator_chain)
    old = {"endpoint": "relay.example:7400", "region": "eu", "stake_ref": bytes(32)}
    net.chat.block([net.chat.tx(3, "register_identity", {"pow": b"", "doc": bytes(32)}, 0)])
    net.chat.block([net.chat.tx(3, "register_relay", old)])
    listing = decode_relay_listing(
        net.ids[3], net.chat.app.inner.state.committed_get(b"relay/" + net.ids[3])
    )
    assert (listing.node_key, listing.tags, listing.label) == (None, (), "")
    assert listing.address == "relay.example:7400"


def test_the_directory_reads_verified_and_yields_diverse_home_relays(
    validator_chain: Any,
) -> None:
    net = Net(validator_chain)
    view = net.read()
    assert [entry.identity for entry in view.listings] == sorted(net.ids[:3])
    assert all(view.bond_of(entry) == 10 for entry in view.listings)
    assert {entry.label for entry in view.eligible(10)} == {"op0", "op1", "op2"}
    assert view.eligible(11) == ()
    home = choose_home_relays(view, HomeRelays(), ChoicePolicy(), 100.0, random.Random(1))
    assert len(home.relays) == 2
    assert all(a.startswith("dcnd1") and "@127.0.0.1:74" in a for a in home.addresses)


def test_a_lying_node_cannot_hide_or_alter_a_relay(validator_chain: Any) -> None:
    net = Net(validator_chain)
    fewer = canonical_encode(sorted(net.ids[:2]))

    def hide(request: str, answer: dict[str, Any]) -> dict[str, Any]:
        if request.startswith("/v1/chain/state/") and answer.get("value"):
            return answer | {"value": fewer.hex()}
        return answer

    with pytest.raises(InvalidStateProofError):
        net.read(hide)

    def move(request: str, answer: dict[str, Any]) -> dict[str, Any]:
        if request.startswith("/v1/chain/relays/") and answer.get("value"):
            record = canonical_decode(bytes.fromhex(answer["value"]))
            forged = canonical_encode(record | {"ep": "evil.example:7400"})
            return answer | {"value": forged.hex()}
        return answer

    with pytest.raises(InvalidStateProofError):
        net.read(move)

    def unbond(request: str, answer: dict[str, Any]) -> dict[str, Any]:
        if request.startswith("/v1/chain/state/72656c61792f"):  # "relay/" on the currency chain
            return answer | {"value": None}
        return answer

    with pytest.raises(InvalidStateProofError):
        net.read(unbond)
    assert len(net.read().listings) == 3  # the honest answer still verifies afterwards


def test_one_operator_behind_every_listed_relay_is_refused(validator_chain: Any) -> None:
    view = Net(validator_chain, labels=["acme", "acme", "acme"]).read()
    with pytest.raises(SingleOperatorViewError):
        choose_home_relays(view, HomeRelays(), ChoicePolicy(), 0.0, random.Random(0))


def test_a_directory_read_is_complete_before_its_view() -> None:
    read = DirectoryRead()
    with pytest.raises(ChainStateError):
        read.view()
    read.receive(None)
    assert read.view().listings == ()
    with pytest.raises(ChainStateError):
        read.receive(None)
    indexed = DirectoryRead()
    indexed.receive(canonical_encode([bytes(32)]))
    with pytest.raises(DirectoryAnswerError):
        indexed.receive(None)  # an indexed relay must have a listing


@given(hostile_bytes())
def test_hostile_directory_records_give_typed_errors(raw: bytes) -> None:
    for decode in (decode_relay_index, decode_relay_bond):
        with contextlib.suppress(DirectoryAnswerError):
            decode(raw)
    with contextlib.suppress(DirectoryAnswerError):
        decode_relay_listing(bytes(32), raw)


@given(
    st.dictionaries(
        st.sampled_from(["ep", "region", "stake", "n", "node", "tags", "label", "x"]),
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.text(max_size=40),
            st.binary(max_size=40),
            st.lists(st.text()),
        ),
    )
)
def test_mangled_listing_maps_give_typed_errors(record: dict[str, Any]) -> None:
    try:
        listing = decode_relay_listing(bytes(32), canonical_encode(record))
    except DirectoryAnswerError:
        return
    assert set(record) <= {"ep", "region", "stake", "n", "node", "tags", "label"}
    assert listing.stake_ref == record["stake"]


def test_the_epoch_score_is_the_lower_median_as_at_payout() -> None:
    relay, other = b"\x01" * 32, b"\x02" * 32
    reports = [
        canonical_encode([[relay, 9000], [other, 10]]),
        canonical_encode([[relay, 7000]]),
        canonical_encode([[other, 5]]),  # the relay scores 0 in this one
        None,  # a reporter whose report is gone counts for nothing
    ]
    assert epoch_score(reports, relay) == 7000
    assert epoch_score(reports, other) == 5
    assert epoch_score([], relay) == 0
    for bad in ([[relay, 10_001]], [[relay, True]], [relay], {"x": 1}):
        with pytest.raises(DirectoryAnswerError):
            epoch_score([canonical_encode(bad)], relay)
    with pytest.raises(DirectoryAnswerError):
        epoch_score([b"\xff"], relay)


_SENDER = SigningKey(b"\x07" * 32)
_BODY_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.just(bytes(32)),
    st.just(["as:1", "eu"]),
    st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=4)), max_size=10),
    st.none(),
    st.booleans(),
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["endpoint", "region", "stake_ref", "node", "tags", "label", "other"]),
        _BODY_VALUES,
    )
)
def test_hostile_register_relay_bodies_are_refused_typed(body: dict[str, Any]) -> None:
    state = StateStore()
    state.begin()
    put_record(state, b"idkey/" + _SENDER.public_key.to_bytes(), b"\x09" * 32)
    tx = Transaction.create(_SENDER, chain_id="c", nonce=0, fee=0, kind="register_relay", body=body)
    try:
        register_relay(state, tx)
    except (InvalidTransactionError, DecodeError):  # the app answers a DecodeError with code 1
        assert state.get(b"relay/" + b"\x09" * 32) is None
        return
    listing = decode_relay_listing(b"\x09" * 32, state.get(b"relay/" + b"\x09" * 32))
    assert decode_relay_index(state.get(b"relayidx")) == (b"\x09" * 32,)
    assert listing.endpoint == body["endpoint"]
