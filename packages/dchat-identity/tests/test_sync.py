"""Multi-device sync: hybrid logical clocks, CRDT convergence, encrypted sync messages."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import (
    DeviceCertificate,
    DeviceRevocation,
    DocumentChain,
    ForgedRecordError,
    Identity,
    IdentityDocument,
    MalformedRecordError,
    RevokedDeviceError,
)
from dchat_identity.lowlevel import (
    ClockSkewError,
    HybridClock,
    IdentitySeed,
    SyncKey,
    SyncOp,
    SyncReplica,
    SyncState,
    Timestamp,
    open_sync_message,
    seal_sync_message,
)
from dchat_testing import hostile_bytes, make_signing_key, seeded_random

NOW = 1_700_000_000.0

# -- hybrid logical clocks -----------------------------------------------------


def test_hlc_is_monotonic_when_the_wall_clock_goes_back() -> None:
    clock = HybridClock(b"a")
    stamps = [clock.tick(t) for t in (NOW, NOW, NOW - 50, NOW - 100, NOW + 0.001)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert stamps[3].wall_ms == int(NOW * 1000)  # did not follow the clock backwards


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),  # which replica acts
            st.sampled_from(["a", "b", "c"]),  # whose last stamp it receives first
            st.floats(min_value=-30, max_value=30),  # physical clock jitter (s)
        ),
        max_size=60,
    ),
    st.fixed_dictionaries({n: st.floats(-40, 40) for n in "abc"}),
)
def test_hlc_monotonic_and_causal_under_clock_skew(steps, skew) -> None:
    clocks = {n: HybridClock(n.encode(), max_drift=200) for n in "abc"}
    highest_physical = 0
    last: dict[str, Timestamp] = {}
    issued: dict[str, list[Timestamp]] = {n: [] for n in "abc"}
    elapsed = 0.0
    for actor, source, jitter in steps:
        elapsed += 0.01
        now = NOW + elapsed + skew[actor] + jitter  # each replica's clock is off
        highest_physical = max(highest_physical, int(now * 1000))
        if source in last:
            clocks[actor].observe(last[source], now)
            received = last[source]
        else:
            received = None
        stamp = clocks[actor].tick(now)
        if received is not None:
            assert stamp > received  # happened-after gets a larger stamp
        if issued[actor]:
            assert stamp > issued[actor][-1]  # strictly monotonic per replica
        issued[actor].append(stamp)
        last[actor] = stamp
        # wall_ms is always some clock's physical reading: never invented further ahead
        assert stamp.wall_ms <= highest_physical


def test_hlc_refuses_a_clock_far_in_the_future() -> None:
    clock = HybridClock(b"a", max_drift=60)
    clock.observe(Timestamp(int((NOW + 59) * 1000), 0, b"b"), NOW)
    with pytest.raises(ClockSkewError):
        clock.observe(Timestamp(int((NOW + 3600) * 1000), 0, b"b"), NOW)
    assert clock.last.wall_ms == int((NOW + 59) * 1000)


def test_hlc_round_trip() -> None:
    clock = HybridClock(b"replica")
    clock.tick(NOW)
    restored = HybridClock.from_bytes(clock.to_bytes())
    assert restored.last == clock.last
    assert restored.tick(NOW) > clock.last


# -- CRDTs -----------------------------------------------------------------------


def test_lww_register_keeps_the_latest_write() -> None:
    a, b = SyncReplica(b"a"), SyncReplica(b"b")
    early = a.set("settings/theme", "dark", now=NOW)
    late = b.set("settings/theme", "light", now=NOW + 1)
    for replica in (a, b):
        replica.receive(late, now=NOW + 2)
        replica.receive(early, now=NOW + 2)
    assert a.state.get("settings/theme") == b.state.get("settings/theme") == "light"


def test_or_set_add_wins_over_a_concurrent_remove() -> None:
    a, b = SyncReplica(b"a"), SyncReplica(b"b")
    add = a.add("contacts", "bob", now=NOW)
    b.receive(add, now=NOW)
    remove = b.remove("contacts", "bob", now=NOW + 1)  # b saw the first add
    readd = a.add("contacts", "bob", now=NOW + 1)  # concurrently, a adds again
    for op in (remove, readd):
        a.receive(op, now=NOW + 2)
        b.receive(op, now=NOW + 2)
    assert a.state.members("contacts") == b.state.members("contacts") == {"bob"}
    gone = a.remove("contacts", "bob", now=NOW + 3)
    b.receive(gone, now=NOW + 3)
    assert a.state.members("contacts") == b.state.members("contacts") == frozenset()


def test_a_remove_that_arrives_before_its_add_still_removes() -> None:
    a, b, c = SyncReplica(b"a"), SyncReplica(b"b"), SyncReplica(b"c")
    add = a.add("contacts", "carol", now=NOW)
    b.receive(add, now=NOW)
    remove = b.remove("contacts", "carol", now=NOW + 1)
    c.receive(remove, now=NOW + 2)
    c.receive(add, now=NOW + 2)
    assert c.state.members("contacts") == frozenset()


OPS = st.tuples(
    st.sampled_from([0, 1, 2]),  # replica
    st.sampled_from(["set", "add", "remove"]),
    st.sampled_from(["settings/theme", "profile/status", "read/chat1", "contacts"]),
    st.sampled_from(["alice", "bob", "carol", "dan"]),
    st.floats(min_value=-5, max_value=5),  # clock skew of this action
)


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, min_size=1, max_size=40), st.data())
def test_three_replicas_converge_under_any_delivery(actions, data) -> None:
    replicas = [SyncReplica(bytes([65 + i]), clock=HybridClock(bytes([65 + i]))) for i in range(3)]
    log: list[tuple[int, SyncOp]] = []
    for step, (who, kind, name, element, skew) in enumerate(actions):
        replica, now = replicas[who], NOW + step + skew
        # Some operations are issued after the replica heard part of the log.
        for _, op in data.draw(st.lists(st.sampled_from(log), max_size=3)) if log else []:
            replica.receive(op, now=now)
        if kind == "set":
            op = replica.set(name, element, now=now)
        elif kind == "add":
            op = replica.add("contacts", element, now=now)
        else:
            op = replica.remove("contacts", element, now=now)
        log.append((who, op))
    for replica in replicas:
        # Any order, with duplicates, including ops the replica made itself.
        order = data.draw(st.permutations(log))
        duplicates = data.draw(st.lists(st.sampled_from(log), max_size=10))
        for _, op in [*order, *duplicates]:
            replica.receive(op, now=NOW + 1000)
    snapshots = [r.state.snapshot() for r in replicas]
    assert snapshots[0] == snapshots[1] == snapshots[2]
    assert replicas[0].state.to_bytes() == replicas[1].state.to_bytes()
    assert replicas[1].state.to_bytes() == replicas[2].state.to_bytes()


def test_sync_state_round_trip() -> None:
    a = SyncReplica(b"a")
    a.set("settings/notify", True, now=NOW)
    a.set("read/chat1", 42, now=NOW)
    a.add("contacts", "bob", now=NOW)
    a.remove("contacts", "bob", now=NOW + 1)
    a.add("contacts", "carol", now=NOW + 2)
    restored = SyncState.from_bytes(a.state.to_bytes())
    assert restored.snapshot() == a.state.snapshot()
    assert restored.to_bytes() == a.state.to_bytes()


# -- sync messages ---------------------------------------------------------------


@functools.cache
def setup() -> tuple[Identity, DocumentChain, SigningKey, SigningKey, SyncKey]:
    seed = IdentitySeed(bytes(range(64)))
    owner = Identity.from_seed(seed)
    dev1, dev2 = (
        make_signing_key(seeded_random("sync dev1")),
        make_signing_key(seeded_random("sync dev2")),
    )
    certs = tuple(
        DeviceCertificate.issue(
            owner.signing_key, owner.identity_id, d.public_key,
            PrivateKey.from_bytes(bytes([7]) * 32).public_key, name="d", now=NOW,
        )
        for d in (dev1, dev2)
    )  # fmt: skip
    doc = IdentityDocument.genesis(
        owner.signing_key, owner.encryption_key.public_key, now=NOW, devices=certs
    )
    return owner, DocumentChain(doc), dev1, dev2, SyncKey(seed.sync_secret())


def test_sync_message_round_trip_between_devices() -> None:
    owner, chain, dev1, _, key = setup()
    replica = SyncReplica(dev1.public_key.to_bytes())
    ops = [replica.add("contacts", "bob", now=NOW), replica.set("profile/status", "hi", now=NOW)]
    message = seal_sync_message(ops, key=key, device_key=dev1, subject=owner.identity_id)
    assert b"bob" not in message
    assert b"hi" not in message
    assert open_sync_message(message, key=key, chain=chain) == ops
    other = SyncReplica(b"dev2")
    for op in open_sync_message(message, key=key, chain=chain):
        other.receive(op, now=NOW)
    assert other.state.members("contacts") == {"bob"}


def test_sync_message_from_a_revoked_device_is_rejected() -> None:
    owner, chain, _dev1, dev2, key = setup()
    message = seal_sync_message([], key=key, device_key=dev2, subject=owner.identity_id)
    open_sync_message(message, key=key, chain=chain)
    local = DocumentChain(chain.head)
    revoke = DeviceRevocation.issue(
        owner.signing_key, owner.identity_id, dev2.public_key, seq=2, now=NOW
    )
    local.update(
        chain.head.successor(
            owner.signing_key, now=NOW, devices=chain.head.devices[:1], revoked=(revoke,)
        )
    )
    with pytest.raises(RevokedDeviceError):
        open_sync_message(message, key=key, chain=local)
    # ...and the owner moves to a new epoch the revoked device does not know.
    with pytest.raises(ForgedRecordError):
        open_sync_message(message, key=key.next_epoch(), chain=chain)


def test_forged_and_misdirected_sync_messages_are_rejected() -> None:
    owner, chain, dev1, _, key = setup()
    op = SyncReplica(b"x").add("contacts", "eve", now=NOW)
    outsider = make_signing_key(seeded_random("sync outsider"))
    with pytest.raises(RevokedDeviceError):
        open_sync_message(
            seal_sync_message([op], key=key, device_key=outsider, subject=owner.identity_id),
            key=key,
            chain=chain,
        )
    wrong_key = SyncKey(bytes([3]) * 32)
    message = seal_sync_message([op], key=wrong_key, device_key=dev1, subject=owner.identity_id)
    with pytest.raises(ForgedRecordError):
        open_sync_message(message, key=key, chain=chain)
    good = seal_sync_message([op], key=key, device_key=dev1, subject=owner.identity_id)
    for position in range(0, len(good), 5):
        tampered = bytearray(good)
        tampered[position] ^= 0x10
        with pytest.raises((ForgedRecordError, MalformedRecordError, RevokedDeviceError)):
            open_sync_message(bytes(tampered), key=key, chain=chain)
    assert "secret" not in repr(key)
    assert key.secret.hex() not in repr(key)


@settings(max_examples=200)
@given(hostile_bytes(max_size=400))
def test_garbage_sync_input_is_typed(data: bytes) -> None:
    _, chain, _, _, key = setup()
    with pytest.raises(MalformedRecordError):
        open_sync_message(data, key=key, chain=chain)
    with pytest.raises(MalformedRecordError):
        SyncState.from_bytes(data)
    with pytest.raises(MalformedRecordError):
        HybridClock.from_bytes(data)
