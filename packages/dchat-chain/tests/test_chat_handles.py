"""Chat chain handles: the naming rule, work against squatting, renew, expire, transfer, release."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dchat_chain import ChatChainApp, Transaction
from dchat_chain._chat_handles import parse_relay_text
from dchat_chain._handle_names import handle_pow_ok, handle_skeleton
from dchat_chain.lowlevel import (
    BlockContext,
    ChainAnswerError,
    HandleOwner,
    InvalidHandleError,
    handle_key,
    handle_work_bits,
    normalize_handle,
    solve_handle_pow,
    solve_pow,
)
from dchat_core import DchatError, IdentityId, canonical_decode, canonical_encode
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, Identity

POW, HANDLE_POW, TERM, DAY = 4, 4, 50, 24 * 3600 * 1000
MALFORMED, UNAUTHORIZED, REJECTED = 1, 8, 9
RELAYS = ["127.0.0.1:7000", "dcnd1" + "a" * 52 + "@relay.example:443"]


def _identity(i: int) -> Identity:
    seed = bytes([i]) * 32
    return Identity(
        SigningKey(seed), PrivateKey.from_bytes(seed), SigningKey(bytes([i + 100]) * 32)
    )


A, B, C, NEW = (_identity(i) for i in (31, 32, 33, 34))


def pk(who: Identity) -> bytes:
    return who.signing_key.public_key.to_bytes()


def ident(who: Identity) -> bytes:
    return bytes(IdentityId.derive(pk(who)))


def card(who: Identity, signer: Identity | None = None) -> bytes:
    """``who``'s card (signed by ``signer``'s keys instead, to forge one)."""
    keys = who if signer is None else signer
    return ContactCard.issue(keys, name="x", relay=RELAYS[0]).to_bytes()


class Chain:
    def __init__(self, **params: int) -> None:
        genesis = {
            "v": 1,
            "kind": "chat",
            "chain_id": "chat",
            "params": {
                "pow_bits": POW,
                "handle_pow_bits": HANDLE_POW,
                "handle_term": TERM,
                "recovery_delay_ms": DAY,
                **params,
            },
        }
        self.genesis = canonical_encode(genesis)
        self.app = ChatChainApp.from_genesis(self.genesis)
        self.nonces: dict[bytes, int] = {}
        self.time_ms = 0
        self.bits = params.get("handle_pow_bits", HANDLE_POW)

    def run(self, who: Identity | SigningKey, kind: str, body: dict[str, Any]) -> int:
        key = who.signing_key if isinstance(who, Identity) else who
        sender = key.public_key.to_bytes()
        nonce = self.nonces.get(sender, 0)
        tx = Transaction.create(key, chain_id="chat", nonce=nonce, fee=0, kind=kind, body=body)
        self.nonces[sender] = nonce + 1
        return self.block([tx.raw])[0]

    def block(self, txs: list[bytes] = ()) -> list[int]:  # type: ignore[assignment]
        self.time_ms += DAY + 1
        context = BlockContext("chat", self.app.height + 1, self.time_ms, b"")
        result = self.app.apply_block(context, list(txs))
        self.app.commit()
        return [r.code for r in result.tx_results]

    def register(self, who: Identity, guardians: list[bytes] = (), threshold: int = 0) -> None:  # type: ignore[assignment]
        body: dict[str, Any] = {"pow": solve_pow("chat", pk(who), POW), "doc": bytes(32)}
        if guardians:
            body.update(guardians=sorted(guardians), threshold=threshold)
        assert self.run(who, "register_identity", body) == 0

    def take(self, who: Identity, name: str, **extra: Any) -> int:
        bits = handle_work_bits(self.bits, name)
        body = {
            "name": name,
            "pow": solve_handle_pow("chat", name, ident(who), bits),
            "relays": RELAYS,
            "card": card(who),
            **extra,
        }
        return self.run(who, "register_handle", body)

    def renew(self, who: Identity, name: str, owner: Identity | None = None, **extra: Any) -> int:
        """Renew ``name`` as ``who`` with fresh work for ``owner``'s identity (default: who)."""
        record = self.handle(name)
        term = 0 if record is None else record["exp"]
        bits = handle_work_bits(self.bits, name)
        work = solve_handle_pow("chat", name, ident(owner or who), bits, term)
        return self.run(who, "renew_handle", {"name": name, "pow": work, **extra})

    def handle(self, name: str) -> dict[str, Any] | None:
        raw = self.app.state.committed_get(handle_key(name))
        return None if raw is None else canonical_decode(raw)


@pytest.fixture
def chain() -> Chain:
    chain = Chain()
    for who in (A, B, C):
        chain.register(who)
    return chain


# -- the naming rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "name"),
    [("@Alice", "alice"), ("bob-smith", "bob-smith"), ("x99", "x99"), ("@" + "a" * 32, "a" * 32)],
)
def test_names_normalise(typed: str, name: str) -> None:
    assert normalize_handle(typed) == name


@pytest.mark.parametrize(
    "bad",
    [
        *("ab", "a" * 33, "-alice", "alice-", "al--ice", "al_ice", "al ice", "al.ice"),
        *("\u0430lice", "@@al", "\u00e9" * 4),
    ],
)
def test_names_outside_the_rule_are_refused(bad: str) -> None:
    with pytest.raises(InvalidHandleError):
        normalize_handle(bad)


def test_look_alikes_share_one_slot() -> None:
    assert {handle_skeleton(n) for n in ("alice", "a1ice", "a-lice", "alice")} == {"allce"}
    assert handle_skeleton("modern") == handle_skeleton("rnodern")
    assert handle_skeleton("bob") != handle_skeleton("bib")


@given(st.text(max_size=40))
def test_normalising_is_total_and_idempotent(text: str) -> None:
    try:
        name = normalize_handle(text)
    except InvalidHandleError:
        return
    assert normalize_handle(name) == name
    assert name.isascii()
    assert 3 <= len(name) <= 32


def test_relay_addresses_follow_the_relay_list_format() -> None:
    assert parse_relay_text("[::1]:9") == "[::1]:9"
    for bad in ("relay", "host:0", "host:65536", "dcnd1abc@host:1", "a b:1", 7, "h:" + "9" * 6):
        with pytest.raises(Exception, match="relay"):
            parse_relay_text(bad)


# -- squatting costs work ------------------------------------------------------------------


def test_short_names_cost_more_work() -> None:
    assert [handle_work_bits(20, n) for n in ("abc", "abcd", "abcde", "abcdef", "a" * 20)] == [
        26,
        24,
        22,
        20,
        20,
    ]
    assert handle_work_bits(63, "abc") == 64


def test_registration_without_enough_work_is_refused() -> None:
    chain = Chain(handle_pow_bits=16)
    chain.register(A)
    name = "alice-long"
    nonce = next(  # a proof of exactly one bit too few: refused, and the name stays free
        n.to_bytes(8, "big")
        for n in range(1 << 20)
        if handle_pow_ok("chat", name, ident(A), n.to_bytes(8, "big"), 15)
        and not handle_pow_ok("chat", name, ident(A), n.to_bytes(8, "big"), 16)
    )
    body = {"name": name, "pow": nonce, "relays": RELAYS, "card": card(A)}
    assert chain.run(A, "register_handle", body) == UNAUTHORIZED
    assert chain.handle(name) is None


def test_renewal_work_is_bound_to_the_term() -> None:
    chain = Chain(handle_pow_bits=12)
    chain.register(A)
    assert chain.take(A, "alice-long") == 0
    exp = chain.handle("alice-long")["exp"]
    stale = solve_handle_pow("chat", "alice-long", ident(A), handle_work_bits(12, "alice-long"))
    body = {"name": "alice-long", "pow": stale}  # the registration's work, replayed
    assert chain.run(A, "renew_handle", body) == UNAUTHORIZED
    assert chain.handle("alice-long")["exp"] == exp


def test_work_is_bound_to_the_name_the_identity_and_the_chain() -> None:
    name, bits = "alice-long", handle_work_bits(12, "alice-long")
    chain = Chain(handle_pow_bits=12)
    for who in (A, B):
        chain.register(who)
    work = solve_handle_pow("chat", name, ident(A), bits)
    assert not handle_pow_ok("chat", "alice-lonk", ident(A), work, bits)
    assert not handle_pow_ok("chat", name, ident(B), work, bits)
    assert not handle_pow_ok("other", name, ident(A), work, bits)
    body = {"name": name, "pow": work, "relays": RELAYS, "card": card(B)}
    assert chain.run(B, "register_handle", body) == UNAUTHORIZED  # A's work, B's claim


def test_registration_needs_no_fee_but_a_registered_identity() -> None:
    chain = Chain(min_fee=5)
    chain.register(A)
    assert chain.take(A, "alice") == 0
    assert chain.take(B, "bobby") == UNAUTHORIZED  # B has no identity on the chain
    assert chain.renew(A, "alice") == 0  # renewing costs work, no fee
    assert chain.run(A, "transfer_handle", {"name": "alice"}) == 7  # a transfer pays the fee


# -- register, look-alikes, one handle each ------------------------------------------------------


def test_register_points_to_the_identity_relays_and_card(chain: Chain) -> None:
    assert chain.take(A, "alice") == 0
    record = chain.handle("alice")
    assert record == {
        "name": "alice",
        "id": ident(A),
        "exp": chain.app.height + TERM,
        "relays": RELAYS,
        "mb": bytes(A.mailbox_id),
        "card": card(A),
    }
    assert canonical_decode(chain.app.state.committed_get(b"hid/" + ident(A))) == "allce"


def test_a_taken_name_and_its_look_alikes_are_refused(chain: Chain) -> None:
    assert chain.take(A, "alice") == 0
    assert chain.take(B, "alice") == REJECTED
    assert chain.take(B, "a1ice") == REJECTED
    assert chain.take(B, "a-lice") == REJECTED
    assert chain.handle("alice")["id"] == ident(A)


def test_one_live_handle_per_identity(chain: Chain) -> None:
    assert chain.take(A, "alice") == 0
    assert chain.take(A, "alice-two") == REJECTED
    assert chain.handle("alice-two") is None


def test_the_card_must_be_the_senders_and_verify(chain: Chain) -> None:
    assert chain.take(A, "alice", card=card(B)) == UNAUTHORIZED
    forged = bytearray(card(A))
    forged[-1] ^= 1
    assert chain.take(A, "alice", card=bytes(forged)) == MALFORMED
    assert chain.take(A, "Alice") == MALFORMED  # not normalised
    assert chain.take(A, "alice", relays=[]) == MALFORMED
    assert chain.take(A, "alice", relays=[RELAYS[0], RELAYS[0]]) == MALFORMED
    assert chain.handle("alice") is None


# -- renew, expire, release, transfer, key rotation ------------------------------------------------


def test_a_handle_expires_unless_renewed(chain: Chain) -> None:
    assert chain.take(A, "alice") == 0
    start = chain.app.height
    for _ in range(TERM - 2):
        chain.block()
    assert chain.renew(A, "alice", relays=RELAYS[:1]) == 0
    assert chain.handle("alice")["exp"] == chain.app.height + TERM > start + TERM
    assert chain.handle("alice")["relays"] == RELAYS[:1]
    while chain.app.height < chain.handle("alice")["exp"]:
        chain.block()
    assert chain.renew(A, "alice") == REJECTED  # expired
    assert chain.take(B, "alice") == 0  # free for anyone again
    assert chain.handle("alice")["id"] == ident(B)
    assert chain.app.state.committed_get(b"hid/" + ident(A)) is None
    assert chain.take(A, "alice-new") == 0  # A's expired handle no longer counts


def test_only_the_owner_renews_or_releases(chain: Chain) -> None:
    assert chain.take(A, "alice") == 0
    assert chain.renew(B, "alice", owner=A) == UNAUTHORIZED
    assert chain.run(B, "release_handle", {"name": "alice"}) == UNAUTHORIZED
    assert chain.run(A, "release_handle", {"name": "a1ice"}) == REJECTED  # not its exact name
    assert chain.run(A, "release_handle", {"name": "alice"}) == 0
    assert chain.handle("alice") is None
    assert chain.run(A, "release_handle", {"name": "alice"}) == REJECTED
    assert chain.take(B, "a1ice") == 0  # the slot is free


def test_transfer_moves_the_handle_with_the_new_owners_card(chain: Chain) -> None:
    assert chain.take(A, "alice") == 0
    body = {"name": "alice", "to": ident(B), "relays": RELAYS[:1], "card": card(A)}
    assert chain.run(A, "transfer_handle", body) == UNAUTHORIZED  # not B's card
    body["card"] = card(B)
    assert chain.run(B, "transfer_handle", body) == UNAUTHORIZED  # B does not own it
    assert chain.run(A, "transfer_handle", {**body, "to": ident(A)}) == REJECTED
    assert chain.run(A, "transfer_handle", {**body, "to": bytes(32)}) == REJECTED  # no identity
    assert chain.run(A, "transfer_handle", body) == 0
    record = chain.handle("alice")
    assert (record["id"], record["card"], record["mb"]) == (ident(B), card(B), bytes(B.mailbox_id))
    assert chain.renew(B, "alice") == 0
    assert chain.take(A, "alice-again") == 0  # A holds none now
    assert chain.take(C, "carol") == 0
    body = {"name": "alice", "to": ident(C), "relays": RELAYS, "card": card(C)}
    assert chain.run(B, "transfer_handle", body) == REJECTED  # C holds a live handle


def test_the_handle_follows_a_key_rotation(chain: Chain) -> None:
    chain = Chain()
    for who in (B, C):
        chain.register(who)
    chain.register(A, [ident(B), ident(C)], 2)
    assert chain.take(A, "alice") == 0
    # Guardians B and C move A's identity to NEW's key (docs: recovery).
    assert chain.run(B, "recovery_request", {"identity": ident(A), "new_key": pk(NEW)}) == 0
    assert chain.run(C, "recovery_approve", {"identity": ident(A)}) == 0
    assert chain.run(B, "recovery_execute", {"identity": ident(A)}) == 0
    assert chain.renew(A, "alice") == UNAUTHORIZED  # the old key
    assert chain.renew(NEW, "alice", owner=A, card=card(A)) == UNAUTHORIZED
    assert chain.renew(NEW, "alice", owner=NEW, card=card(NEW)) == UNAUTHORIZED  # NEW's work
    rotated = HandleOwner(NEW.signing_key, chain.genesis)  # its own id is not A's
    renewal = rotated.renew(
        chain.nonces[pk(NEW)],
        "alice",
        chain.handle("alice")["exp"],
        RELAYS,
        card(NEW),
        identity=ident(A),
    )
    chain.nonces[pk(NEW)] += 1
    assert chain.block([renewal.raw]) == [0]
    record = chain.handle("alice")
    assert (record["id"], record["card"]) == (ident(A), card(NEW))  # same identity, new card
    assert chain.run(NEW, "release_handle", {"name": "alice"}) == 0


def test_after_a_key_rotation_the_new_key_registers_for_the_same_identity(chain: Chain) -> None:
    chain = Chain()
    chain.register(B)
    chain.register(A, [ident(B)], 1)
    assert chain.take(A, "alice") == 0
    assert chain.run(B, "recovery_request", {"identity": ident(A), "new_key": pk(NEW)}) == 0
    assert chain.run(B, "recovery_execute", {"identity": ident(A)}) == 0
    rotated, old = (
        HandleOwner(NEW.signing_key, chain.genesis),
        HandleOwner(A.signing_key, chain.genesis),
    )
    # What the shell reads (verified) to learn which identity the key speaks for.
    path, key = rotated.key_path
    assert (path, key) == (f"/v1/chain/state/{key.hex()}", b"idkey/" + pk(NEW))
    value = chain.app.state.committed_get(key)
    assert rotated.chain_identity(value) == ident(A) != rotated.identity
    assert old.chain_identity(chain.app.state.committed_get(old.key_path[1])) is None
    assert chain.run(NEW, "release_handle", {"name": "alice"}) == 0
    nonce = chain.nonces[pk(NEW)]
    naive = rotated.register(nonce, "alice-new", RELAYS, card(NEW), registered=True)
    assert chain.block([naive[0].raw]) == [UNAUTHORIZED]  # work bound to an id nobody holds
    (tx,) = rotated.register(
        nonce + 1, "alice-new", RELAYS, card(NEW), registered=True, identity=ident(A)
    )  # a refused transaction spends its nonce too
    assert chain.block([tx.raw]) == [0]
    chain.nonces[pk(NEW)] = nonce + 2
    record = chain.handle("alice-new")
    assert (record["id"], record["card"]) == (ident(A), card(NEW))
    # The retired key can neither take it back nor register for the identity.
    again = old.register(chain.nonces[pk(A)], "alice", RELAYS, card(A), registered=True)
    chain.nonces[pk(A)] += 1
    assert chain.block([again[0].raw]) == [UNAUTHORIZED]
    body = {"name": "alice-new", "to": ident(C), "relays": RELAYS, "card": card(C)}
    assert chain.run(A, "transfer_handle", body) == UNAUTHORIZED


@pytest.mark.parametrize("value", [canonical_encode(b"short"), canonical_encode("text"), b"\xff"])
def test_a_malformed_idkey_value_is_a_typed_answer_error(value: bytes) -> None:
    with pytest.raises(ChainAnswerError):
        HandleOwner.chain_identity(value)


def test_the_owner_plan_registers_renews_and_releases() -> None:
    chain = Chain()
    owner = HandleOwner(A.signing_key, chain.genesis)
    assert owner.identity == ident(A)
    txs = owner.register(0, "@Alice", RELAYS[:1], card(A), registered=False, document=b"doc")
    assert [tx.kind for tx in txs] == ["register_identity", "register_handle"]
    assert chain.block([tx.raw for tx in txs]) == [0, 0]
    assert chain.handle("alice")["relays"] == RELAYS[:1]
    renewal = owner.renew(2, "alice", chain.handle("alice")["exp"], RELAYS, card(A))
    assert chain.block([renewal.raw]) == [0]
    assert chain.handle("alice")["relays"] == RELAYS
    assert chain.block([owner.release(3, "alice").raw]) == [0]
    assert chain.handle("alice") is None
    again = owner.register(4, "alice", RELAYS, card(A), registered=True)
    assert [tx.kind for tx in again] == ["register_handle"]


# -- hostile bodies --------------------------------------------------------------------------


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_KINDS = ("register_handle", "renew_handle", "transfer_handle", "release_handle")
_FIELDS = ("name", "pow", "relays", "card", "to", "extra")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    who=st.sampled_from([A, B]),
    kind=st.sampled_from(_KINDS),
    body=st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=5),
)
def test_hostile_bodies_get_a_typed_rejection(
    chain: Chain, who: Identity, kind: str, body: dict[str, Any]
) -> None:
    try:
        code = chain.run(who, kind, body)
    except DchatError:  # a body no transaction can carry (too deep, too large to encode)
        assume(False)
    assert code in (MALFORMED, UNAUTHORIZED, REJECTED)
    assert chain.app.state.committed_get(b"hid/" + ident(who)) is None
