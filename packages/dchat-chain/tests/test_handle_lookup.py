"""Handle lookups through the light client: honest answers verify, a lying node is refused.

The validator side is the conftest's :class:`ValidatorChain` running the chat
chain, answering the handle and identity paths as the node API does
(``certified_query`` + ``answer_fields``); a lying node is that answer rewritten.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_chain import DchatChainError, Transaction
from dchat_chain._handle_lookup import decode_handle_record
from dchat_chain.lowlevel import (
    ChainAnswerError,
    HandleLookup,
    HandleRecord,
    InvalidHandleError,
    InvalidStateProofError,
    LightReader,
    answer_fields,
    certified_query,
    handle_key,
    handle_work_bits,
    solve_handle_pow,
    solve_pow,
)
from dchat_core import IdentityId, canonical_decode, canonical_encode
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, Identity

PARAMS = {"pow_bits": 2, "handle_pow_bits": 2, "handle_term": 12, "recovery_delay_ms": 0}
RELAYS = ["127.0.0.1:7000", "127.0.0.1:7001"]
_HANDLE = re.compile(r"/v1/chain/handles/([a-z0-9-]+)")
_IDENTITY = re.compile(r"/v1/chain/identities/([0-9a-f]{64})")


def _identity(i: int) -> Identity:
    seed = bytes([i]) * 32
    return Identity(SigningKey(seed), PrivateKey.from_bytes(seed), SigningKey(bytes([i + 9]) * 32))


ALICE, BOB, GUARD, NEW = (_identity(i) for i in (41, 42, 43, 44))


def _id(who: Identity) -> bytes:
    return bytes(IdentityId.derive(who.signing_key.public_key.to_bytes()))


def _card(who: Identity) -> bytes:
    return ContactCard.issue(who, name="me", relay=RELAYS[0]).to_bytes()


class HandleChain:
    """A certified chat chain with a node API's answers for handles and identities."""

    def __init__(self, validator_chain: Any) -> None:
        self.chain = validator_chain("chat", "chat", PARAMS)
        self.nonces: dict[bytes, int] = {}

    def send(self, who: Identity, kind: str, body: dict[str, Any]) -> int:
        sender = who.signing_key.public_key.to_bytes()
        nonce = self.nonces.get(sender, 0)
        tx = Transaction.create(
            who.signing_key, chain_id="chat", nonce=nonce, fee=0, kind=kind, body=body
        )
        self.nonces[sender] = nonce + 1
        height = self.chain.block([tx.raw])
        self.chain.block()  # the header that certifies the state after it
        code: int = self.chain.signed.results[height].tx_results[0].code
        return code

    def register(self, who: Identity, guardians: list[bytes] | None = None) -> None:
        key = who.signing_key.public_key.to_bytes()
        body: dict[str, Any] = {"pow": solve_pow("chat", key, 2), "doc": bytes(32)}
        if guardians:
            body.update(guardians=sorted(guardians), threshold=len(guardians))
        assert self.send(who, "register_identity", body) == 0

    def take(self, who: Identity, name: str) -> None:
        work = solve_handle_pow("chat", name, _id(who), handle_work_bits(2, name))
        body = {"name": name, "pow": work, "relays": RELAYS, "card": _card(who)}
        assert self.send(who, "register_handle", body) == 0

    def fetch(self, path: str) -> dict[str, Any]:
        found = _HANDLE.fullmatch(path)
        if found:
            return self._proven(handle_key(found[1]))
        found = _IDENTITY.fullmatch(path)
        if found:
            return self._proven(b"id/" + bytes.fromhex(found[1]))
        answer: dict[str, Any] = self.chain.fetch(path)
        return answer

    def _proven(self, key: bytes) -> dict[str, Any]:
        answer = certified_query(self.chain.app, self.chain.store.height(), key)
        return answer_fields(answer)

    def lookup(self, text: str, fetch: Any = None) -> HandleRecord | None:
        reader = LightReader.restore(None, self.chain.genesis)
        lookup = HandleLookup(reader, text)
        while (path := lookup.next_request()) is not None:
            lookup.receive((fetch or self.fetch)(path))
        return lookup.result()


@pytest.fixture
def net(validator_chain: Any) -> HandleChain:
    net = HandleChain(validator_chain)
    for who in (ALICE, BOB, GUARD):
        net.register(who)
    net.take(ALICE, "alice")
    return net


def test_a_registered_handle_is_found_and_verified(net: HandleChain) -> None:
    found = net.lookup("@Alice")
    assert found is not None
    assert (found.name, found.identity, found.relays) == ("alice", _id(ALICE), tuple(RELAYS))
    assert found.mailbox == bytes(ALICE.mailbox_id)
    assert found.key == ALICE.signing_key.public_key.to_bytes()
    assert found.card == _card(ALICE)
    assert found.card_current
    assert found.expires > found.height


def test_unregistered_and_look_alike_names_are_not_found(net: HandleChain) -> None:
    assert net.lookup("nobody") is None
    assert net.lookup("a1ice") is None  # alice's slot, but not alice's name
    with pytest.raises(InvalidHandleError):
        HandleLookup(LightReader.restore(None, net.chain.genesis), "no")


def test_an_expired_or_released_handle_is_not_found(net: HandleChain) -> None:
    found = net.lookup("alice")
    assert found is not None
    while net.chain.signed.height < found.expires - 1:
        net.chain.block()
    assert net.lookup("alice") is not None  # the state after block exp - 2 is proven
    net.chain.block()
    net.chain.block()
    assert net.lookup("alice") is None
    net.take(BOB, "bobby")
    assert net.send(BOB, "release_handle", {"name": "bobby"}) == 0
    assert net.lookup("bobby") is None


def test_after_a_key_rotation_the_old_card_is_not_current(validator_chain: Any) -> None:
    net = HandleChain(validator_chain)
    net.register(GUARD)
    net.register(ALICE, [_id(GUARD)])
    net.take(ALICE, "alice")
    assert (
        net.send(
            GUARD,
            "recovery_request",
            {"identity": _id(ALICE), "new_key": NEW.signing_key.public_key.to_bytes()},
        )
        == 0
    )
    assert net.send(GUARD, "recovery_execute", {"identity": _id(ALICE)}) == 0
    stale = net.lookup("alice")
    assert stale is not None
    assert stale.key == NEW.signing_key.public_key.to_bytes()
    assert not stale.card_current  # the card of the retired key
    work = solve_handle_pow(
        "chat", "alice", _id(ALICE), handle_work_bits(2, "alice"), stale.expires
    )
    body = {"name": "alice", "pow": work, "card": _card(NEW)}
    assert net.send(NEW, "renew_handle", body) == 0
    fresh = net.lookup("alice")
    assert fresh is not None
    assert fresh.card_current
    assert fresh.identity == _id(ALICE)


# -- a lying node ----------------------------------------------------------------------------


def _liar(net: HandleChain, rewrite: Any) -> Any:
    def fetch(path: str) -> dict[str, Any]:
        answer = net.fetch(path)
        return rewrite(path, dict(answer)) if "/headers" not in path else answer

    return fetch


def _swap_value(path: str, doc: dict[str, Any], value: bytes | None) -> dict[str, Any]:
    return {**doc, "value": None if value is None else value.hex()}


def test_a_forged_record_is_refused(net: HandleChain) -> None:
    net.take(BOB, "bobby")
    bobs = net.chain.app.query(handle_key("bobby")).value
    record = canonical_decode(bobs)
    record["name"] = "alice"  # bob's record dressed as alice's
    forged = canonical_encode(record)
    with pytest.raises(InvalidStateProofError):
        net.lookup(
            "alice", _liar(net, lambda p, d: _swap_value(p, d, forged) if "handles" in p else d)
        )


def test_hiding_a_registered_handle_is_refused(net: HandleChain) -> None:
    with pytest.raises(InvalidStateProofError):
        net.lookup(
            "alice", _liar(net, lambda p, d: _swap_value(p, d, None) if "handles" in p else d)
        )


def test_inventing_a_handle_is_refused(net: HandleChain) -> None:
    alices = net.chain.app.query(handle_key("alice")).value
    with pytest.raises(InvalidStateProofError):
        net.lookup(
            "carol", _liar(net, lambda p, d: _swap_value(p, d, alices) if "handles" in p else d)
        )


def test_a_lie_about_the_current_key_is_refused(net: HandleChain) -> None:
    record = canonical_decode(net.chain.app.query(b"id/" + _id(ALICE)).value)
    record["key"] = BOB.signing_key.public_key.to_bytes()
    forged = canonical_encode(record)
    with pytest.raises(InvalidStateProofError):
        net.lookup(
            "alice", _liar(net, lambda p, d: _swap_value(p, d, forged) if "identities" in p else d)
        )


def test_a_proof_against_another_root_is_refused(net: HandleChain) -> None:
    with pytest.raises(InvalidStateProofError):
        net.lookup("alice", _liar(net, lambda p, d: {**d, "app_hash": "00" * 32}))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.sampled_from(["height", "header_height", "app_hash", "value", "proof", "key"]), _JSON
    )
)
def test_hostile_answers_are_typed(net: HandleChain, junk: dict[str, Any]) -> None:
    lookup = HandleLookup(LightReader.restore(None, net.chain.genesis), "alice")
    with pytest.raises(DchatChainError):
        lookup.receive(junk)


def test_a_value_that_is_no_handle_record_is_typed() -> None:
    for raw in (b"\xa0", canonical_encode({"name": 1}), b"\xff"):
        with pytest.raises(ChainAnswerError):
            decode_handle_record(raw, 1)
