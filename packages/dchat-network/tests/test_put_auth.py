"""Put authorization: put tokens, proof of work scaled with load, the typed ``pow`` answers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_crypto import SigningKey
from dchat_network import (
    RelayBusyError,
    RelayClient,
    RelayError,
    RelayHost,
    RelayLimits,
    RelayPool,
    RelayProtocolError,
    RelayServer,
    serve_links,
)
from dchat_network._put_auth import MAX_REDEMPTION
from dchat_network._relay_limits import entry_id_of
from dchat_network.lowlevel import (
    PowChallenge,
    PutAuthClient,
    PutAuthorizer,
    PutProofError,
    RelayBusy,
    RelayPut,
    RelayPutMany,
    RelayStored,
    RelayStoredMany,
    RelayTokenSet,
    RelayTokensHeld,
    auth_pow,
    auth_token,
    decode_relay_message,
    encode_relay_message,
    pow_ok,
    solve_pow,
    token_hash,
)
from dchat_testing import MemoryMailboxStore

OWNER, OTHER = b"O" * 32, b"P" * 32
SEED = b"s" * 16
WAIT = 10.0


def envelope_for(mailbox: bytes, body: bytes) -> bytes:
    return mailbox + body


def mailbox_of(envelope: bytes) -> bytes | None:
    return envelope[:32] if len(envelope) >= 32 else None


def new_server(**limits: object) -> RelayServer:
    settings_ = {"pow_free_relay": 1000.0, "pow_free_mailbox": 4.0, "pow_min_bits": 6}
    settings_.update(limits)
    return RelayServer(
        MemoryMailboxStore(),
        mailbox_of,
        limits=RelayLimits(**settings_),  # type: ignore[arg-type]
    )


def put(server: RelayServer, mailbox: bytes, body: bytes, auth: bytes | None, now: float) -> object:
    request = encode_relay_message(RelayPut(1, mailbox, envelope_for(mailbox, body), auth))
    return server.handle(OTHER, request, now).message


# -- the stamp ------------------------------------------------------------------------------


def test_a_solved_stamp_verifies_and_is_bound_to_its_envelope_and_seed() -> None:
    entry = entry_id_of(b"an envelope")
    nonce = solve_pow(SEED, entry, 10)
    assert nonce is not None
    assert pow_ok(SEED, entry, nonce, 10)
    # Another envelope, another seed, or more bits: the same nonce almost never serves.
    others = [(SEED, entry_id_of(b"other"), 10), (b"t" * 16, entry, 10), (SEED, entry, 30)]
    assert not all(pow_ok(s, e, nonce, b) for s, e, b in others)
    assert solve_pow(SEED, entry, 40, tries=100) is None  # bounded


@settings(max_examples=300)
@given(auth=st.binary(max_size=40), body=st.binary(max_size=64), bits=st.integers(1, 12))
def test_hostile_authorizations_never_pass_without_the_work(
    auth: bytes, body: bytes, bits: int
) -> None:
    book = PutAuthorizer(free_relay=0, min_bits=bits, max_bits=bits, secret=b"k" * 32)
    entry = entry_id_of(body)
    try:
        challenge = book.authorize(OWNER, entry, auth or None, 5.0)
    except PutProofError:  # a contact proof (section 41) the relay refuses, typed
        assert auth[0] == 4
        return
    passed = challenge is None
    if passed:  # only a real stamp over the current seed can pass
        assert auth[0] == 2
        assert auth[1:17] == book.seed(5.0)
        assert pow_ok(auth[1:17], entry, auth[17:], bits)
    else:
        assert challenge == PowChallenge(book.seed(5.0), bits)


@given(data=st.binary(max_size=200))
@example(data=b"\x03\x00")  # a paid token's shape (section 40): its content is checked later
@example(data=b"\x03")
@example(data=b"\x05" + bytes(24))
def test_hostile_put_authorizations_decode_or_raise_the_protocol_error(data: bytes) -> None:
    body = {"t": "put_many", "rid": 1, "items": [[OWNER, OWNER + b"x", data]]}
    try:
        message = decode_relay_message(canonical_encode(body))
    except RelayProtocolError:
        return
    assert isinstance(message, RelayPutMany)
    assert message.auth == (data,)
    token, stamp = data[0] == 1 and len(data) == 17, data[0] == 2 and len(data) == 25
    paid = data[0] == 3 and 2 <= len(data) <= 1 + MAX_REDEMPTION  # decoded when redeemed
    proof = data[0] == 4 and len(data) > 41
    assert token or stamp or paid or proof


def test_auth_tokens_and_challenges_round_trip_through_the_codec() -> None:
    messages = [
        RelayPut(1, OWNER, b"e", auth_token(b"t" * 16)),
        RelayPutMany(2, ((OWNER, b"a"), (OTHER, b"b")), (None, auth_pow(SEED, b"n" * 8))),
        RelayStoredMany(3, (b"i" * 32, "pow"), PowChallenge(SEED, 12)),
        RelayBusy(4, "pow", 0, PowChallenge(SEED, 9)),
        RelayTokenSet(5, OWNER, (b"h" * 16, b"j" * 16)),
        RelayTokensHeld(6, 2),
    ]
    for message in messages:
        assert decode_relay_message(encode_relay_message(message)) == message
    # A put_many without any authorization keeps the old two-element items.
    plain = encode_relay_message(RelayPutMany(7, ((OWNER, b"a"),), (None,)))
    assert decode_relay_message(plain) == RelayPutMany(7, ((OWNER, b"a"),))


def test_the_tok_set_example_of_the_protocol_document() -> None:
    encoded = encode_relay_message(RelayTokenSet(3, bytes(32), ()))
    assert (
        encoded.hex()
        == "a4617467746f6b5f736574626d625820" + "00" * 32 + "63726964036668617368657380"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"t": "busy", "rid": 1, "why": "pow", "retry": 0, "pow": [SEED, 0]},
        {"t": "busy", "rid": 1, "why": "pow", "retry": 0, "pow": [SEED, 41]},
        {"t": "busy", "rid": 1, "why": "pow", "retry": 0, "pow": [b"short", 8]},
        {"t": "stored_many", "rid": 1, "res": ["pow"], "pow": [SEED]},
        {"t": "tok_set", "rid": 1, "mb": OWNER, "hashes": [b"h" * 15]},
        {"t": "tok_set", "rid": 1, "mb": OWNER, "hashes": [b"h" * 16, b"h" * 16]},
        {"t": "tok_set", "rid": 1, "mb": OWNER, "hashes": [b"h" * 16] * 1025},
        {"t": "put", "rid": 1, "mb": OWNER, "env": b"e", "auth": b"\x7f" + b"x" * 16},
        {"t": "put", "rid": 1, "mb": OWNER, "env": b"e", "auth": b"\x03"},
        {"t": "put", "rid": 1, "mb": OWNER, "env": b"e", "auth": b"\x03" + b"x" * 1025},
    ],
)
def test_malformed_authorization_messages_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(RelayProtocolError):
        decode_relay_message(canonical_encode(body))


# -- the relay's book -----------------------------------------------------------------------


def test_a_quiet_relay_serves_strangers_free_then_asks_for_work_as_a_mailbox_floods() -> None:
    server = new_server()
    answers = [put(server, OWNER, bytes([i]), None, 1.0) for i in range(8)]
    stored = [a for a in answers if not isinstance(a, RelayBusy)]
    refused = [a for a in answers if isinstance(a, RelayBusy)]
    assert len(stored) == 4  # the mailbox's free allowance
    assert refused
    assert all(a.reason == "pow" and a.retry_ms == 0 for a in refused)
    challenge = refused[0].pow
    assert challenge is not None
    assert challenge.bits == 6
    # Another mailbox is still quiet.
    assert not isinstance(put(server, OTHER, b"x", None, 1.0), RelayBusy)
    # Solving the challenge gets the envelope stored.
    envelope = envelope_for(OWNER, b"paid")
    nonce = solve_pow(challenge.seed, entry_id_of(envelope), challenge.bits)
    assert nonce is not None
    assert not isinstance(
        put(server, OWNER, b"paid", auth_pow(challenge.seed, nonce), 1.0), RelayBusy
    )
    # The work is bound to that envelope: the stamp does not pay for another. (A 6-bit stamp
    # meets another envelope's target by chance once in 64, so pick one it does not meet.)
    body = next(
        b
        for b in (b"other%d" % i for i in range(1000))
        if not pow_ok(challenge.seed, entry_id_of(envelope_for(OWNER, b)), nonce, challenge.bits)
    )
    other = put(server, OWNER, body, auth_pow(challenge.seed, nonce), 1.0)
    assert isinstance(other, RelayBusy)
    assert server.authorizer.counts["work"] == 1
    assert server.refusals["busy_pow"] >= 2


def test_the_work_asked_rises_with_each_doubling_of_load_and_falls_when_it_decays() -> None:
    book = PutAuthorizer(free_relay=10, free_mailbox=1e9, min_bits=4, step_bits=2, max_bits=12)
    asked = []
    for i in range(200):
        challenge = book.authorize(bytes([i % 7]) * 32, entry_id_of(bytes([i])), None, 0.0)
        if challenge is not None:
            asked.append(challenge.bits)
            book._count(b"x" * 32, 0.0)  # an attacker that pays: the load keeps rising
    assert asked[0] == 4
    assert asked == sorted(asked)
    assert asked[-1] == 12
    assert book.required_bits(b"y" * 32, 0.0) == 12
    assert book.required_bits(b"y" * 32, 600.0) == 0  # ten windows later: quiet again


def test_a_registered_token_is_served_without_work_and_not_counted_as_load() -> None:
    server = new_server(pow_free_mailbox=0.0)  # every stranger pays here
    token = os.urandom(16)
    set_tokens = encode_relay_message(RelayTokenSet(1, OWNER, (token_hash(token),)))
    assert server.handle(OWNER, set_tokens, 0.0).message == RelayTokensHeld(1, 1)
    for i in range(20):
        assert not isinstance(put(server, OWNER, bytes([i]), auth_token(token), 0.0), RelayBusy)
    assert server.authorizer.counts["token"] == 20
    assert server.authorizer.required_bits(OTHER, 0.0) == 6  # free allowance 0: strangers pay
    # The token is the owner's mailbox's only: elsewhere it is a stranger's put.
    assert isinstance(put(server, OTHER, b"x", auth_token(token), 0.0), RelayBusy)
    # A made-up token is refused; a revoked one too.
    assert isinstance(put(server, OWNER, b"y", auth_token(os.urandom(16)), 0.0), RelayBusy)
    server.handle(OWNER, encode_relay_message(RelayTokenSet(2, OWNER, ())), 0.0)
    assert isinstance(put(server, OWNER, b"z", auth_token(token), 0.0), RelayBusy)
    assert server.authorizer.tokens_held == 0


def test_only_the_owner_sets_its_tokens_and_the_budget_is_answered_busy() -> None:
    server = new_server(max_put_tokens=2)
    hashes = (b"a" * 16, b"b" * 16, b"c" * 16)
    forbidden = server.handle(OTHER, encode_relay_message(RelayTokenSet(1, OWNER, hashes)), 0.0)
    assert isinstance(forbidden.message, RelayError)
    assert forbidden.message.code == "forbidden"
    over = server.handle(OWNER, encode_relay_message(RelayTokenSet(2, OWNER, hashes)), 0.0)
    assert isinstance(over.message, RelayBusy)
    assert over.message.reason == "tokens"
    assert not over.close
    ok = server.handle(OWNER, encode_relay_message(RelayTokenSet(3, OWNER, hashes[:2])), 0.0)
    assert ok.message == RelayTokensHeld(3, 2)


def test_a_stamp_over_an_old_seed_is_refused() -> None:
    book = PutAuthorizer(free_relay=0, min_bits=2, max_bits=2)
    entry = entry_id_of(b"e")
    old_seed = book.seed(0.0)
    nonce = solve_pow(old_seed, entry, 2)
    assert nonce is not None
    assert book.authorize(OWNER, entry, auth_pow(old_seed, nonce), 700.0) is None  # previous
    assert book.authorize(OWNER, entry, auth_pow(old_seed, nonce), 1300.0) is not None  # older


def test_put_many_refuses_only_the_items_that_need_work_and_says_what_work() -> None:
    server = new_server(pow_free_mailbox=0.0)
    token = os.urandom(16)
    server.handle(OWNER, encode_relay_message(RelayTokenSet(1, OWNER, (token_hash(token),))), 0.0)
    client = RelayClient()
    items = [(OWNER, envelope_for(OWNER, b"a")), (OTHER, envelope_for(OTHER, b"b"))]
    reply = server.handle(OTHER, client.put_many(items, [auth_token(token), None]), 0.0)
    answer = client.receive(reply.data)
    assert isinstance(answer, RelayStoredMany)
    assert isinstance(answer.results[0], bytes)
    assert answer.results[1] == "pow"
    assert answer.pow is not None
    assert answer.pow.bits == 6
    assert reply.notify == (OWNER,)


def test_the_client_raises_busy_with_the_challenge_for_a_put() -> None:
    server = new_server(pow_free_mailbox=0.0)
    client = RelayClient()
    reply = server.handle(OTHER, client.put(OWNER, envelope_for(OWNER, b"x")), 0.0)
    with pytest.raises(RelayBusyError) as caught:
        client.receive(reply.data)
    assert caught.value.reason == "pow"
    assert isinstance(caught.value.challenge, PowChallenge)


def test_without_limits_a_relay_never_asks_for_work() -> None:
    server = RelayServer(MemoryMailboxStore(), mailbox_of)
    for i in range(500):
        assert not isinstance(put(server, OWNER, i.to_bytes(2, "big"), None, 0.0), RelayBusy)


# -- the sender's rules ---------------------------------------------------------------------


def test_a_sender_attaches_tokens_only_where_work_was_asked_lately() -> None:
    client = PutAuthClient({OWNER: b"t" * 16}.get, max_bits=10)
    assert client.first("r:1", [OWNER, OTHER], 0.0) == [None, None]
    client.asked("r:1", 0.0)
    assert client.first("r:1", [OWNER, OTHER], 10.0) == [auth_token(b"t" * 16), None]
    assert client.first("r:2", [OWNER], 10.0) == [None]
    assert client.first("r:1", [OWNER], 1000.0) == [None]  # forgotten after ASK_MEMORY
    challenge = PowChallenge(SEED, 8)
    assert client.retry(OWNER, None, challenge) == auth_token(b"t" * 16)
    assert client.retry(OWNER, auth_token(b"t" * 16), challenge) == challenge  # token refused
    assert client.retry(OTHER, None, PowChallenge(SEED, 11)) is None  # over max_bits


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
                    host.handle,
                    "127.0.0.1",
                    0,
                    node_key=SigningKey.generate(),
                    task_status=task_status,
                )
            )
        yield bound
        nursery.cancel_scope.cancel()


async def test_the_pool_solves_the_work_asked_and_uses_tokens_once_asked() -> None:
    server = new_server(pow_free_mailbox=2.0)
    token = os.urandom(16)
    server.authorizer.set_tokens(OWNER, [token_hash(token)])
    async with relay(server) as (h, p):
        pool = RelayPool(tokens={OWNER: token}.get, max_bits=12)
        with trio.fail_after(WAIT):
            stranger = [(OTHER, envelope_for(OTHER, bytes([i]))) for i in range(6)]
            results = await pool.put_many(h, p, stranger)
            assert all(isinstance(r, bytes) for r in results)
            counts = server.authorizer.counts  # about 2 free (the meter decays), the rest paid
            assert counts["free"] + counts["work"] == 6
            assert counts["work"] >= 3
            # Our contact's mailbox: the relay asked for work lately, so the token goes along.
            contact = [(OWNER, envelope_for(OWNER, bytes([i]))) for i in range(5)]
            results = await pool.put_many(h, p, contact)
            assert all(isinstance(r, bytes) for r in results)
            assert server.authorizer.counts["token"] == 5
        await pool.aclose()


async def test_work_over_the_senders_limit_stays_refused_for_a_later_retry() -> None:
    server = new_server(pow_free_mailbox=0.0, pow_min_bits=20, pow_max_bits=20)
    async with relay(server) as (h, p):
        pool = RelayPool(max_bits=12)
        with trio.fail_after(WAIT):
            results = await pool.put_many(h, p, [(OTHER, envelope_for(OTHER, b"x"))])
        assert results == ["pow"]
        assert server.stored == 0
        await pool.aclose()


def test_strangers_large_envelopes_pass_the_relay_byte_allowance_and_are_asked_work() -> None:
    # Each put goes to a fresh mailbox and the put count stays far below its
    # allowance: only the relay-wide byte meter says the relay is busy.
    server = new_server(pow_free_relay=1e6, pow_free_mailbox=1e6, pow_free_relay_bytes=64 * 1024)
    answers = [put(server, os.urandom(32), bytes(16 * 1024), None, 0.0) for _ in range(8)]
    stored = [a for a in answers if isinstance(a, RelayStored)]
    assert len(stored) == 4  # 4 x 16 KiB (+ headers) pass 64 KiB: the fifth pays
    assert all(isinstance(a, RelayBusy) and a.reason == "pow" for a in answers[4:])
    # Small envelopes are not held back by the same count of puts.
    small = new_server(pow_free_relay=1e6, pow_free_mailbox=1e6, pow_free_relay_bytes=64 * 1024)
    assert all(
        isinstance(put(small, os.urandom(32), b"x", None, 0.0), RelayStored) for _ in range(8)
    )
    # A put token is never charged to the byte meter.
    token = os.urandom(16)
    set_tokens = encode_relay_message(RelayTokenSet(1, OWNER, (token_hash(token),)))
    server.handle(OWNER, set_tokens, 0.0)
    assert isinstance(put(server, OWNER, bytes(16 * 1024), auth_token(token), 0.0), RelayStored)
