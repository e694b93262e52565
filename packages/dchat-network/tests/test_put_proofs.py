"""Put authorization by contact proof (section 41): the ring book, its typed refusals, the wire."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import MailboxId, canonical_encode
from dchat_crypto import SigningKey
from dchat_network import (
    RelayHost,
    RelayLimits,
    RelayPool,
    RelayProtocolError,
    RelayServer,
    serve_links,
)
from dchat_network.lowlevel import (
    ContactRings,
    ProofContexts,
    PutProofError,
    RelayPut,
    RelayPutMany,
    RelayStoredMany,
    RingHeld,
    RingSet,
    ZkContexts,
    ZkGet,
    auth_proof,
    decode_relay_message,
    encode_relay_message,
    prove_deposits,
)
from dchat_privacy import ContactContext, ContactRing, ContactSecret, prove_contact
from dchat_privacy.lowlevel import ring_statement
from dchat_testing import MemoryMailboxStore

KEY_A, KEY_B = SigningKey.generate(), SigningKey.generate()
A, B = (bytes(MailboxId.derive(k.public_key.to_bytes())) for k in (KEY_A, KEY_B))
KEYS = {A: KEY_A, B: KEY_B}
WAIT = 20.0
NOW = 6000.0


def ring_of(*secrets: ContactSecret, size: int = 8) -> ContactRing:
    return ContactRing.padded([s.public_key for s in secrets], size=size)


def signed(mailbox: bytes, ring: ContactRing, key: SigningKey | None = None) -> tuple[bytes, ...]:
    """``(ring, key, signature)`` as the owner of ``mailbox`` registers it."""
    key = key or KEYS[mailbox]
    raw = ring.to_bytes()
    return raw, key.public_key.to_bytes(), key.sign(ring_statement(mailbox, raw))


def book_with(ring: ContactRing, *mailboxes: bytes) -> ContactRings:
    book = ContactRings()
    for mailbox in mailboxes:
        assert book.set_ring(mailbox, *signed(mailbox, ring)) == len(ring)
    return book


def one_proof(secret: ContactSecret, book: ContactRings, mailbox: bytes, now: float) -> bytes:
    contexts = book.contexts(mailbox, 1, now)
    proofs = prove_deposits(secret, mailbox, contexts)
    assert len(proofs) == 1
    return proofs[0]


def refusal(book: ContactRings, mailbox: bytes, auth: bytes, now: float = NOW) -> str:
    with pytest.raises(PutProofError) as caught:
        book.check(mailbox, auth, now)
    return caught.value.code


# -- the ring book --------------------------------------------------------------------------


def test_a_contact_proof_is_accepted_once_and_a_replay_is_refused() -> None:
    alice, bob = ContactSecret.generate(), ContactSecret.generate()
    book = book_with(ring_of(alice, bob), A)
    auth = one_proof(bob, book, A, NOW)
    book.check(A, auth, NOW + 1)  # accepted: no error
    assert refusal(book, A, auth) == "proof_replayed"
    assert book.outstanding() == 0


def test_a_wrong_witness_never_verifies() -> None:
    """An outsider proves against a ring with its own key in a decoy's place: refused."""
    member, outsider = ContactSecret.generate(), ContactSecret.generate()
    ring = ring_of(member)
    book = book_with(ring, A)
    contexts = book.contexts(A, 1, NOW)
    forged_ring = ContactRing([*ring.keys[:-1], outsider.public_key])
    nonce = contexts.nonces[0]
    proof = prove_contact(outsider, forged_ring, ContactContext(A, contexts.epoch, nonce))
    assert refusal(book, A, auth_proof(contexts.epoch, nonce, proof.to_bytes())) == "proof_invalid"
    # and its own key is not in the relay's ring: the sender side refuses to prove at all
    assert prove_deposits(outsider, A, book.contexts(A, 1, NOW)) == []


@pytest.mark.parametrize("where", [43, 60, 400, -1])
def test_a_tampered_proof_is_refused_and_burns_its_nonce(where: int) -> None:
    bob = ContactSecret.generate()
    book = book_with(ring_of(bob), A)
    auth = bytearray(one_proof(bob, book, A, NOW))
    original = bytes(auth)
    auth[where] ^= 0x01  # the encoding, a challenge, a response, the last response byte
    assert refusal(book, A, bytes(auth)) == "proof_invalid"
    assert refusal(book, A, original) == "proof_replayed"  # the nonce is spent either way


def test_a_proof_for_mailbox_a_is_refused_at_mailbox_b() -> None:
    bob = ContactSecret.generate()
    book = book_with(ring_of(bob), A, B)
    assert refusal(book, B, one_proof(bob, book, A, NOW)) == "proof_mailbox"
    # a nonce issued for B used in a proof made for A's context does not verify either
    contexts = book.contexts(B, 1, NOW)
    nonce = contexts.nonces[0]
    proof = prove_contact(bob, ring_of(bob), ContactContext(A, contexts.epoch, nonce))
    assert refusal(book, B, auth_proof(contexts.epoch, nonce, proof.to_bytes())) in {
        "proof_invalid"
    }


def test_a_stale_epoch_an_expired_nonce_and_a_removed_ring_are_typed_refusals() -> None:
    bob = ContactSecret.generate()
    book = book_with(ring_of(bob), A)
    auth = one_proof(bob, book, A, NOW)
    assert refusal(book, A, auth, NOW + 1300.0) == "proof_stale"  # two epochs later
    late = one_proof(bob, book, A, NOW)
    assert refusal(book, A, late, NOW + 61.0) == "proof_replayed"  # past its ttl
    orphan = one_proof(bob, book, A, NOW)
    assert book.set_ring(A, b"") == 0
    assert refusal(book, A, orphan) == "proof_no_ring"
    assert book.contexts(A, 3, NOW) == ProofContexts(ContactRings.epoch(NOW), (), b"")


def test_the_previous_epoch_is_still_accepted_across_a_boundary() -> None:
    bob = ContactSecret.generate()
    book = book_with(ring_of(bob), A)
    boundary = 600.0 * 11
    auth = one_proof(bob, book, A, boundary - 1.0)
    book.check(A, auth, boundary + 1.0)


def test_rings_are_bounded_and_checked() -> None:
    book = ContactRings(max_keys=16)
    assert book.set_ring(A, *signed(A, ring_of(size=8))) == 8
    assert book.set_ring(B, *signed(B, ring_of(size=64))) is None  # past the bound
    assert not book.has_ring(B)
    assert book.set_ring(B, *signed(B, ring_of(size=8))) == 8
    assert book.keys_held == 16
    bad = b"\xff" * 32
    for args in (
        (bad, KEY_A.public_key.to_bytes(), KEY_A.sign(ring_statement(A, bad))),  # not an element
        signed(A, ring_of(size=8), KEY_B),  # signed by another mailbox's key
        (*signed(A, ring_of(size=8))[:2], b"\x00" * 64),  # a bad signature
        (ring_of(size=8).to_bytes(), b"", b""),  # none
    ):
        with pytest.raises(PutProofError) as caught:
            book.set_ring(A, *args)
        assert caught.value.code == "bad_ring"
    assert book.keys_held == 16  # unchanged by the refusals


def test_the_nonce_book_forgets_the_oldest_past_its_bound() -> None:
    bob = ContactSecret.generate()
    book = ContactRings(max_outstanding=4)
    book.set_ring(A, *signed(A, ring_of(bob)))
    first = one_proof(bob, book, A, NOW)
    book.contexts(A, 4, NOW)
    assert book.outstanding() == 4
    assert refusal(book, A, first) == "proof_replayed"


def test_a_sender_proves_only_against_a_ring_its_owner_signed_of_eight_or_more() -> None:
    bob = ContactSecret.generate()
    nonce = (os.urandom(32),)
    assert len(prove_deposits(bob, A, ProofContexts(1, nonce, *signed(A, ring_of(bob))))) == 1
    small = ContactRing.padded([bob.public_key], size=4)
    assert prove_deposits(bob, A, ProofContexts(1, nonce, *signed(A, small))) == []
    # a relay's tailored ring (our key and its own decoys) is not signed by A's owner
    tailored = ProofContexts(1, nonce, *signed(A, ring_of(bob), SigningKey.generate()))
    assert prove_deposits(bob, A, tailored) == []
    unsigned = ProofContexts(1, nonce, ring_of(bob).to_bytes())
    assert prove_deposits(bob, A, unsigned) == []


# -- the relay server -----------------------------------------------------------------------


def mailbox_of(envelope: bytes) -> bytes | None:
    return envelope[:32] if len(envelope) >= 32 else None


def strict_server() -> RelayServer:
    """A relay that asks every stranger's deposit for work (as under a flood)."""
    limits = RelayLimits(pow_free_mailbox=0.0, pow_min_bits=16, pow_max_bits=16)
    return RelayServer(MemoryMailboxStore(), mailbox_of, limits=limits)


def ask(server: RelayServer, owner: bytes, message: object, now: float = NOW) -> object:
    return server.handle(owner, encode_relay_message(message), now).message  # type: ignore[arg-type]


def test_the_relay_takes_proofs_in_place_of_work_and_holds_no_token() -> None:
    bob = ContactSecret.generate()
    server = strict_server()
    ring = ring_of(bob)
    assert ask(server, A, RingSet(1, A, *signed(A, ring))) == RingHeld(1, 8)
    refused = ask(server, B, RingSet(2, A, *signed(A, ring)))
    assert refused.code == "forbidden"  # type: ignore[attr-defined]
    got = ask(server, B, ZkGet(3, A, 3))
    assert isinstance(got, ZkContexts)
    assert (got.ring, got.key, got.signature) == signed(A, ring)
    contexts = ProofContexts(got.epoch, got.nonces, got.ring, got.key, got.signature)
    proofs = prove_deposits(bob, A, contexts)
    items = tuple((A, A + bytes([i])) for i in range(3))
    reply = ask(server, B, RelayPutMany(4, items, tuple(proofs)))
    assert isinstance(reply, RelayStoredMany)
    assert all(isinstance(r, bytes) for r in reply.results)
    assert server.authorizer.counts["proof"] == 3
    assert server.authorizer.tokens_held == 0  # no per-contact pseudonym
    replay = ask(server, B, RelayPutMany(5, ((A, A + b"again"),), (proofs[0],)))
    assert replay == RelayStoredMany(5, ("proof_replayed",))
    single = ask(server, B, RelayPut(6, A, A + b"x", proofs[1]))
    assert single.code == "proof_replayed"  # type: ignore[attr-defined]
    bare = ask(server, B, RelayPutMany(7, ((A, A + b"bare"),)))
    assert isinstance(bare, RelayStoredMany)
    assert bare.results == ("pow",)


# -- the wire -------------------------------------------------------------------------------


def test_the_proof_messages_round_trip_through_the_codec() -> None:
    ring = signed(A, ring_of(size=8))
    for message in (
        RingSet(1, A, *ring),
        RingSet(2, A, b""),
        RingHeld(3, 8),
        ZkGet(4, A, 64),
        ZkContexts(5, 2**40, (b"n" * 32, b"m" * 32), *ring),
        ZkContexts(6, 0, (), b""),
    ):
        assert decode_relay_message(encode_relay_message(message)) == message  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        {"t": "ring_set", "rid": 1, "mb": A, "ring": b"x" * 33, "pk": b"k" * 32, "sig": b"s" * 64},
        {"t": "ring_set", "rid": 1, "mb": A, "ring": b"x" * 32 * 1025, "pk": b"", "sig": b""},
        {"t": "ring_set", "rid": 1, "mb": A, "ring": b"x" * 32, "pk": b"", "sig": b""},
        {"t": "ring_set", "rid": 1, "mb": A, "ring": b"", "pk": b"k" * 32, "sig": b"s" * 64},
        {"t": "ring_set", "rid": 1, "mb": A, "ring": b"x" * 32},
        {"t": "zk_get", "rid": 1, "mb": A, "n": 0},
        {"t": "zk_get", "rid": 1, "mb": A, "n": 65},
        {"t": "zk_ctx", "rid": 1, "ep": 1, "nonces": [b"n" * 31], "ring": b"x" * 32},
        {
            "t": "zk_ctx",
            "rid": 1,
            "ep": 1,
            "nonces": [b"n" * 32],
            "ring": b"",
            "pk": b"",
            "sig": b"",
        },
        {"t": "zk_ctx", "rid": 1, "ep": -1, "nonces": [], "ring": b"", "pk": b"", "sig": b""},
        {"t": "put", "rid": 1, "mb": A, "env": b"e", "auth": b"\x04" + b"x" * 40},
    ],
)
def test_malformed_proof_messages_are_protocol_errors(body: dict[str, object]) -> None:
    with pytest.raises(RelayProtocolError):
        decode_relay_message(canonical_encode(body))


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["ring_set", "ring_held", "zk_get", "zk_ctx"]),
    fields=st.dictionaries(
        st.sampled_from(["rid", "mb", "ring", "n", "ep", "nonces", "pk", "sig", "x"]),
        st.one_of(
            st.integers(-5, 2**64 - 1),
            st.binary(max_size=80),
            st.sampled_from([b"", b"k" * 32, b"s" * 64]),
            st.lists(st.binary(min_size=30, max_size=34), max_size=3),
            st.none(),
            st.booleans(),
        ),
    ),
)
def test_hostile_proof_messages_decode_or_raise_the_protocol_error(
    kind: str, fields: dict[str, object]
) -> None:
    try:
        message = decode_relay_message(canonical_encode({"t": kind, **fields}))
    except RelayProtocolError:
        return
    assert decode_relay_message(encode_relay_message(message)) == message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_hostile_proof_authorizations_are_typed_refusals(junk: bytes) -> None:
    """Any bytes after the proof tag: refused with a proof code, never a crash or a store."""
    bob = ContactSecret.generate()
    book = book_with(ring_of(bob), A)
    contexts = book.contexts(A, 1, NOW)
    auth = auth_proof(contexts.epoch, contexts.nonces[0], junk)
    assert refusal(book, A, auth) == "proof_invalid"


# -- over links -----------------------------------------------------------------------------


@asynccontextmanager
async def relay(server: RelayServer) -> AsyncIterator[tuple[str, int]]:
    async def run(call: Callable[[], object]) -> object:
        return call()

    host = RelayHost(server, run, trio.current_time)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            bound = await nursery.start(
                lambda task_status: serve_links(
                    host.handle, "127.0.0.1", 0, node_key=SigningKey.generate(),
                    task_status=task_status,
                )
            )  # fmt: skip
        yield bound
        nursery.cancel_scope.cancel()


async def test_the_pool_proves_contact_where_work_is_asked_and_falls_back_to_work() -> None:
    bob = ContactSecret.generate()
    server = strict_server()
    server.authorizer.rings.set_ring(A, *signed(A, ring_of(bob)))
    async with relay(server) as (h, p):
        pool = RelayPool(secrets={A: bob, B: bob}.get, max_bits=16)
        with trio.fail_after(WAIT):
            items = [(A, A + bytes([i])) for i in range(4)]
            results = await pool.put_many(h, p, items)
            assert all(isinstance(r, bytes) for r in results)
            assert server.authorizer.counts["proof"] == 4
            assert server.authorizer.counts["work"] == 0
            # a mailbox whose ring lacks our key: the pool pays the work instead
            server.authorizer.rings.set_ring(B, *signed(B, ring_of()))
            results = await pool.put_many(h, p, [(B, B + b"x")])
            assert isinstance(results[0], bytes)
            assert server.authorizer.counts["work"] == 1
        await pool.aclose()
