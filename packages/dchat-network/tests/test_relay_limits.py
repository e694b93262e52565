"""The relay's abuse limits, sans-IO: buckets, connection caps, the replay window, ``busy``."""

from __future__ import annotations

import copy
import gc
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_network import (
    LinkClosedError,
    RelayBusyError,
    RelayClient,
    RelayError,
    RelayLimits,
    RelayProtocolError,
    RelayReply,
    RelayServer,
    _relay_limits,
)
from dchat_network._relay_limits import entry_id_of, source_of
from dchat_network.lowlevel import (
    MAX_BATCH_BYTES,
    MAX_RETRY_MS,
    DeliveredSet,
    RelayBusy,
    RelayGuard,
    RelayStored,
    RelayStoredMany,
    RelayWork,
    TokenBucket,
    auth_token,
    decode_relay_message,
    encode_relay_message,
    token_hash,
)
from dchat_testing import MemoryMailboxStore

OWNER, SENDER = b"O" * 32, b"S" * 32


def envelope_for(mailbox: bytes, body: bytes) -> bytes:
    return mailbox + body


def mailbox_of(envelope: bytes) -> bytes | None:
    return envelope[:32] if len(envelope) >= 32 else None


# -- token buckets --------------------------------------------------------------------------

_events = st.lists(
    st.tuples(st.floats(0, 2, allow_nan=False), st.integers(1, 30)), min_size=1, max_size=60
)


@given(rate=st.floats(1, 100), capacity=st.floats(1, 50), events=_events)
def test_a_bucket_never_grants_more_than_its_capacity_plus_its_rate(
    rate: float, capacity: float, events: list[tuple[float, int]]
) -> None:
    bucket, now, granted = TokenBucket(rate, capacity, 0.0), 0.0, 0.0
    for step, tokens in events:
        now += step
        wait = bucket.wait(tokens, now)
        if wait == 0:
            bucket.take(tokens, now)
            granted += min(tokens, capacity)
        else:  # after the promised wait the same take succeeds
            assert copy.copy(bucket).wait(tokens, now + wait + 1e-9) == 0
        assert granted <= capacity + rate * now + 1e-6


def test_a_zero_rate_bucket_is_unlimited() -> None:
    bucket = TokenBucket(0, 0, 0.0)
    bucket.take(10**9, 0.0)
    assert bucket.wait(10**9, 0.0) == 0
    assert bucket.full(0.0)


def test_a_budget_charges_all_its_buckets_or_none() -> None:
    limits = RelayLimits(link_puts=100, source_puts=5, burst=1)
    guard = RelayGuard(limits)
    first, second = guard.budget("10.0.0.1", 0.0), guard.budget("10.0.0.1", 0.0)
    for _ in range(5):
        assert first.charge(1, 10, 0.0) == 0
    # the source's bucket is empty, so the second link of that source waits too
    assert second.charge(1, 10, 0.0) == pytest.approx(0.2)
    link_puts = second.buckets[0]
    assert link_puts.level(0.0) == 100  # nothing was taken from the link's own bucket
    assert guard.budget("10.0.0.2", 0.0).charge(1, 10, 0.0) == 0  # other sources unaffected


def test_a_bytes_bucket_always_holds_one_largest_request() -> None:
    budget = RelayGuard(RelayLimits(link_bytes=1000, source_bytes=1000)).budget("1.2.3.4", 0.0)
    assert budget.charge(1, MAX_BATCH_BYTES, 0.0) == 0
    assert budget.charge(1, MAX_BATCH_BYTES, 0.0) > 0


# -- connections ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "source"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("", ""),
    ],
)
def test_sources_are_ipv4_addresses_and_ipv6_prefixes(address: str, source: str) -> None:
    assert source_of(address) == source


def test_connections_over_a_cap_are_refused_then_dropped_past_the_refusal_bound() -> None:
    guard = RelayGuard(RelayLimits(max_connections=3, max_connections_per_source=2, max_refusing=1))
    assert [guard.connect("10.0.0.1", 0) for _ in range(2)] == [None, None]
    assert guard.connect("10.0.0.1", 0) == "source_connections"
    assert guard.connect("10.0.0.2", 0) is None
    assert guard.connect("10.0.0.3", 0) == "overflow"  # one refusal is already being answered
    guard.disconnect("10.0.0.1", "source_connections", 0)
    assert guard.connect("10.0.0.3", 0) == "connections"
    assert guard.refusals == {"source_connections": 1, "overflow": 1, "connections": 1}
    guard.disconnect("10.0.0.1", None, 0)
    assert guard.connect("10.0.0.1", 0) is None


_ops = st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=200)


@given(ops=_ops)
def test_connection_counts_follow_any_sequence_of_opens_and_closes(
    ops: list[tuple[bool, int]],
) -> None:
    limits = RelayLimits(
        max_connections=5, max_connections_per_source=2, max_refusing=2, source_handshakes=0
    )
    guard = RelayGuard(limits)
    open_: list[tuple[str, str | None]] = []
    for opening, host in ops:
        if opening:
            address = f"10.0.0.{host}"
            open_.append((address, guard.connect(address, 0.0)))
        elif open_:
            guard.disconnect(*open_.pop(host % len(open_)), 0.0)
        admitted = [a for a, verdict in open_ if verdict is None]
        assert guard.connections == len(admitted) <= 5
        assert all(admitted.count(a) <= 2 for a in admitted)
        refusing = [v for _, v in open_ if v not in (None, "overflow")]
        assert guard.refusing == len(refusing) <= 2
    for address, verdict in open_:
        guard.disconnect(address, verdict, 1e9)
    assert (guard.connections, guard.refusing, guard.sources()) == (0, 0, 0)


def test_a_source_bucket_outlives_its_connections_until_refilled() -> None:
    guard = RelayGuard(RelayLimits(source_puts=1, burst=1, link_puts=0))
    assert guard.connect("10.0.0.1", 0.0) is None
    assert guard.budget("10.0.0.1", 0.0).charge(1, 0, 0.0) == 0
    guard.disconnect("10.0.0.1", None, 0.0)
    assert guard.connect("10.0.0.1", 0.0) is None  # reconnecting does not refill it
    assert guard.budget("10.0.0.1", 0.0).charge(1, 0, 0.0) > 0
    guard.disconnect("10.0.0.1", None, 5.0)
    assert guard.sources() == 0  # refilled: forgotten


# -- the replay window ----------------------------------------------------------------------


def test_delivered_envelopes_are_remembered_within_the_window_only() -> None:
    recent = DeliveredSet(capacity=10, window=100.0)
    recent.add(OWNER, [b"a" * 32], 0.0)
    assert (OWNER, b"a" * 32, 99.0) in recent
    assert (OWNER, b"a" * 32, 100.0) not in recent
    assert (SENDER, b"a" * 32, 1.0) not in recent  # per mailbox: an owner poisons only its own
    recent.add(OWNER, [b"b" * 32], 150.0)
    assert len(recent) == 1  # the expired one was dropped


@given(ids=st.lists(st.binary(min_size=32, max_size=32), max_size=100))
def test_the_replay_window_never_holds_more_than_its_capacity(ids: list[bytes]) -> None:
    recent = DeliveredSet(capacity=16, window=1e9)
    for i, entry in enumerate(ids):
        recent.add(OWNER, [entry], float(i))
        assert len(recent) <= 16
    assert all((OWNER, entry, 1e6) in recent for entry in ids[-16:])


def test_the_replay_window_costs_under_200_bytes_an_entry() -> None:
    count = 20_000
    ids = [i.to_bytes(32, "big") for i in range(count)]
    gc.collect()
    tracemalloc.start()
    recent = DeliveredSet(capacity=count, window=1e9)
    for start in range(0, count, 64):
        recent.add(OWNER, ids[start : start + 64], 0.0)
    used, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(recent) == count
    assert used / count < 200, used / count


# -- the server's answers -------------------------------------------------------------------


def _server(**limits: float) -> tuple[RelayServer, MemoryMailboxStore]:
    store = MemoryMailboxStore()
    usage = [0]
    server = RelayServer(
        store, mailbox_of, quota=1 << 30, limits=RelayLimits(**limits), usage=lambda: (0, usage[0])
    )
    return server, store


def test_a_deposit_over_the_rate_is_busy_with_the_time_to_wait_and_stores_nothing() -> None:
    server, store = _server()
    budget = RelayGuard(RelayLimits(link_puts=2, burst=1)).budget("10.0.0.1", 0.0)
    client = RelayClient()
    for n in range(2):
        put = client.put(OWNER, envelope_for(OWNER, bytes([n])))
        assert isinstance(client.receive(server.handle(SENDER, put, 0.0, budget).data), RelayStored)
    reply = server.handle(SENDER, client.put(OWNER, envelope_for(OWNER, b"x")), 0.0, budget)
    assert not reply.close  # backpressure, not an error: the link stays
    with pytest.raises(RelayBusyError) as busy:
        client.receive(reply.data)
    assert (busy.value.reason, busy.value.retry_after) == ("rate", pytest.approx(0.5, abs=0.01))
    assert len(store.fetch(OWNER)) == 2
    assert server.refusals["busy_rate"] == 1
    put = client.put(OWNER, envelope_for(OWNER, b"x"))
    assert isinstance(client.receive(server.handle(SENDER, put, 0.6, budget).data), RelayStored)


class _NoStore:
    """A store that fails on any use: what triage may not touch."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"triage used the store ({name})")


def test_triage_answers_over_rate_and_malformed_requests_without_the_store() -> None:
    server = RelayServer(_NoStore(), mailbox_of, quota=1 << 30, limits=RelayLimits())  # type: ignore[arg-type]
    budget = RelayGuard(RelayLimits(link_puts=1, burst=1)).budget("10.0.0.1", 0.0)
    client = RelayClient()
    first = server.triage(SENDER, client.put(OWNER, envelope_for(OWNER, b"a")), 0.0, budget)
    assert isinstance(first, RelayWork)  # charged; the worker stores it (not here)
    over = server.triage(SENDER, client.put(OWNER, envelope_for(OWNER, b"b")), 0.0, budget)
    assert isinstance(over, RelayReply)
    assert isinstance(over.message, RelayBusy)
    assert over.message.reason == "rate"
    assert not over.close
    malformed = server.triage(SENDER, b"\xff not cbor", 0.0, budget)
    assert isinstance(malformed, RelayReply)
    assert malformed.close
    assert dict(server.refusals) == {"busy_rate": 1, "malformed": 1}


def test_token_deposits_and_links_of_token_holding_mailboxes_are_authorised_work() -> None:
    server, _ = _server()
    token = b"t" * 16
    client = RelayClient()

    def authorised(owner: bytes, request: bytes) -> bool:
        work = server.triage(owner, request, 0.0)
        assert isinstance(work, RelayWork)
        return work.authorised

    envelope = envelope_for(OWNER, b"x")
    assert not authorised(OWNER, client.pull(OWNER, [], wait_ms=0))  # no tokens yet
    assert not authorised(OWNER, client.set_tokens(OWNER, [token_hash(token)]))
    client.receive(server.handle(OWNER, client.set_tokens(OWNER, [token_hash(token)]), 0.0).data)
    assert authorised(OWNER, client.pull(OWNER, [], wait_ms=0))  # contacts write to it
    assert not authorised(SENDER, client.pull(SENDER, [], wait_ms=0))
    assert authorised(SENDER, client.put(OWNER, envelope, auth_token(token)))
    assert not authorised(SENDER, client.put(OWNER, envelope, auth_token(b"u" * 16)))
    assert not authorised(SENDER, client.put(OWNER, envelope))
    stranger = (SENDER, envelope_for(SENDER, b"y"))
    assert authorised(
        SENDER, client.put_many([stranger, (OWNER, envelope)], [None, auth_token(token)])
    )
    assert not authorised(SENDER, client.put_many([stranger, (OWNER, envelope)]))


def test_owner_requests_are_never_charged() -> None:
    server, _ = _server()
    budget = RelayGuard(RelayLimits(link_puts=1, burst=1)).budget("10.0.0.1", 0.0)
    client = RelayClient()
    for _ in range(5):
        reply = server.handle(OWNER, client.pull(OWNER, [], wait_ms=0), 0.0, budget)
        client.receive(reply.data)


def test_the_disk_budget_counts_all_mailboxes_and_rereads_the_total() -> None:
    store = MemoryMailboxStore()
    held = [0]
    limits = RelayLimits(disk_budget=100, disk_retry=30)
    server = RelayServer(store, mailbox_of, limits=limits, usage=lambda: (0, held[0]))
    client = RelayClient()
    items = [(box, envelope_for(box, b"x" * 8)) for box in (OWNER, SENDER)]  # 40 bytes each
    stored = client.receive(server.handle(SENDER, client.put_many(items), 0.0).data)
    assert isinstance(stored, RelayStoredMany)
    held[0] = 80
    with pytest.raises(RelayBusyError) as busy:
        client.receive(server.handle(SENDER, client.put_many(items), 0.5).data)
    assert (busy.value.reason, busy.value.retry_after) == ("disk", 30.0)
    held[0] = 0  # the owners fetched and acknowledged; read again after a second
    with pytest.raises(RelayBusyError):
        client.receive(server.handle(SENDER, client.put_many(items), 0.9).data)
    reply = server.handle(SENDER, client.put_many(items), 1.5)
    assert isinstance(client.receive(reply.data), RelayStoredMany)


def test_a_delivered_envelope_put_again_is_refused_not_stored() -> None:
    server, store = _server(replay_window=60.0)
    sender, owner = RelayClient(), RelayClient()
    envelope = envelope_for(OWNER, b"hello")
    stored = sender.receive(server.handle(SENDER, sender.put(OWNER, envelope), 1.0).data)
    assert isinstance(stored, RelayStored)
    owner.receive(server.handle(OWNER, owner.pull(OWNER, [stored.entry_id], wait_ms=0), 2.0).data)
    assert stored.entry_id == entry_id_of(envelope)
    again = sender.receive(server.handle(SENDER, sender.put_many([(OWNER, envelope)]), 3.0).data)
    assert again == RelayStoredMany(again.rid, ("delivered",))
    reply = server.handle(SENDER, sender.put(OWNER, envelope), 3.0)
    assert isinstance(reply.message, RelayError)
    assert reply.message.code == "delivered"
    assert store.fetch(OWNER) == []
    assert server.stored == 1
    later = sender.receive(server.handle(SENDER, sender.put(OWNER, envelope), 70.0).data)
    assert isinstance(later, RelayStored)  # past the window the relay forgets it


def test_without_limits_the_server_behaves_as_before() -> None:
    server = RelayServer(MemoryMailboxStore(), mailbox_of)
    client = RelayClient()
    envelope = envelope_for(OWNER, b"x")
    stored = client.receive(server.handle(SENDER, client.put(OWNER, envelope), 1.0).data)
    assert isinstance(stored, RelayStored)
    client.receive(server.handle(OWNER, client.ack(OWNER, [stored.entry_id]), 2.0).data)
    assert isinstance(
        client.receive(server.handle(SENDER, client.put(OWNER, envelope), 3.0).data), RelayStored
    )
    assert server.recently_delivered is None


# -- the wire -------------------------------------------------------------------------------


@given(
    rid=st.integers(0, 2**63 - 1),
    reason=st.text(max_size=64),
    retry=st.integers(0, MAX_RETRY_MS),
)
def test_busy_round_trips_through_the_codec(rid: int, reason: str, retry: int) -> None:
    message = RelayBusy(rid, reason, retry)
    assert decode_relay_message(encode_relay_message(message)) == message


@pytest.mark.parametrize(
    "body",
    [
        {"t": "busy", "rid": 1, "why": "rate", "retry": MAX_RETRY_MS + 1},
        {"t": "busy", "rid": 1, "why": "rate", "retry": -1},
        {"t": "busy", "rid": 1, "why": "r" * 65, "retry": 5},
        {"t": "busy", "rid": 1, "why": b"rate", "retry": 5},
        {"t": "busy", "rid": 1, "retry": 5},
        {"t": "busy", "rid": 1, "why": "rate", "retry": 5, "extra": 0},
    ],
)
def test_malformed_busy_answers_are_protocol_errors(body: dict[str, object]) -> None:
    from dchat_core import canonical_encode

    with pytest.raises(RelayProtocolError):
        decode_relay_message(canonical_encode(body))


def test_a_relay_closing_an_idle_link_reads_as_the_link_closing() -> None:
    client = RelayClient()
    client.put(OWNER, envelope_for(OWNER, b"x"))
    with pytest.raises(LinkClosedError):
        client.receive(encode_relay_message(RelayError(0, "idle", "closed after a silence")))


@pytest.mark.parametrize(
    "bad",
    [{"max_connections": -1}, {"link_bytes": -0.5}, {"burst": 0}, {"idle_timeout": 0}],
)
def test_limits_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        RelayLimits(**bad)  # type: ignore[arg-type]


def test_zero_turns_caps_and_rates_off() -> None:
    limits = RelayLimits(max_connections=0, max_connections_per_source=0, link_puts=0)
    guard = RelayGuard(limits)
    assert all(guard.connect("10.0.0.1", 0.0) is None for _ in range(100))


def test_a_source_starting_connections_too_fast_is_refused_until_its_bucket_refills() -> None:
    guard = RelayGuard(RelayLimits(source_handshakes=2, burst=2, max_connections_per_source=0))
    verdicts = [guard.connect("10.0.0.1", 0.0) for _ in range(6)]
    assert verdicts == [None] * 4 + ["source_rate"] * 2  # a burst of 2 s at 2/s
    assert guard.connect("10.0.0.2", 0.0) is None  # another source has its own bucket
    assert guard.retry_after("10.0.0.1", "source_rate", 0.0) == pytest.approx(0.5)
    assert guard.retry_after("10.0.0.1", "source_connections", 0.0) == 1.0  # connection_retry
    assert guard.connect("10.0.0.1", 0.5) is None  # one more token after half a second
    assert guard.refusals["source_rate"] == 2
    for verdict in verdicts:
        guard.disconnect("10.0.0.1", verdict, 0.5)
    guard.disconnect("10.0.0.1", None, 0.5)
    guard.disconnect("10.0.0.2", None, 0.5)
    # 10.0.0.2's bucket refilled and is forgotten; 10.0.0.1's is not full yet, so
    # closing and reconnecting refills nothing.
    assert guard.sources() == 1
    assert guard.connect("10.0.0.1", 0.5) == "source_rate"
    guard.disconnect("10.0.0.1", "source_rate", 0.5)
    assert guard.connect("10.0.0.1", 100.0) is None
    guard.disconnect("10.0.0.1", None, 101.0)  # its bucket is full again at its last close
    assert guard.sources() == 0


def test_the_connection_rate_can_be_turned_off() -> None:
    guard = RelayGuard(RelayLimits(source_handshakes=0, max_connections_per_source=0))
    assert all(guard.connect("10.0.0.1", 0.0) is None for _ in range(1000))


def test_the_connection_rate_book_forgets_refilled_sources_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_relay_limits, "_MAX_RATE_SOURCES", 100)
    guard = RelayGuard(RelayLimits(source_handshakes=1, burst=1))
    for host in range(100):  # each source connects once and leaves: its bucket is not full
        guard.disconnect(f"10.1.0.{host}", guard.connect(f"10.1.0.{host}", 0.0), 0.0)
    assert guard.sources() == 100
    assert guard.connect("10.2.0.1", 0.5) is None  # the book is full, nothing refilled yet
    assert guard.sources() == 101
    assert guard.connect("10.2.0.2", 5.0) is None  # everyone refilled: forgotten
    assert guard.sources() == 2
