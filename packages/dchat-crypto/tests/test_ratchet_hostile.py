"""Double Ratchet under hostile input, random schedules and state storage."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from dchat_core import PeerError, canonical_decode, canonical_encode
from dchat_crypto import DecryptionError, PrivateKey, RatchetPolicy, RatchetSession, SessionSecrets
from dchat_crypto.hazmat import RatchetFormatError, RatchetStateError
from dchat_testing import hostile_bytes

AD = b"alice|bob"


def make_pair(policy: RatchetPolicy | None = None) -> tuple[RatchetSession, RatchetSession]:
    policy = policy or RatchetPolicy()
    secrets = SessionSecrets(os.urandom(32), os.urandom(32), os.urandom(32))
    bob_key = PrivateKey.generate()
    alice = RatchetSession.initiator(
        secrets, bob_key.public_key, associated_data=AD, policy=policy, now=0.0
    )
    bob = RatchetSession.responder(secrets, bob_key, associated_data=AD, policy=policy, now=0.0)
    return alice, bob


def assert_rejected(session: RatchetSession, message: bytes) -> None:
    before = session.to_bytes()
    with pytest.raises(DecryptionError) as excinfo:
        session.decrypt(message, now=0.0)
    assert excinfo.type is DecryptionError
    assert session.to_bytes() == before


def scenario(kind: str) -> tuple[RatchetSession, bytes, bytes]:
    """A receiver, a valid message for it that takes the ``kind`` path, its plaintext."""
    alice, bob = make_pair()
    first = [alice.encrypt(b"first-%d" % i, now=0.0) for i in range(3)]
    if kind == "new-chain":  # the first message: a DH ratchet step
        return bob, first[1], b"first-1"
    bob.decrypt(first[2], now=0.0)
    if kind == "current-chain":
        return bob, alice.encrypt(b"next", now=0.0), b"next"
    if kind == "skipped-current":
        return bob, first[0], b"first-0"
    alice.decrypt(bob.encrypt(b"reply", now=0.0), now=0.0)
    bob.decrypt(alice.encrypt(b"second chain", now=0.0), now=0.0)
    assert kind == "skipped-old-chain"
    return bob, first[1], b"first-1"


KINDS = ["new-chain", "current-chain", "skipped-current", "skipped-old-chain"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_flipped_bit_is_rejected_and_changes_nothing(kind: str) -> None:
    receiver, message, plaintext = scenario(kind)
    for i in range(len(message)):
        for bit in (0x01, 0x80):
            tampered = bytearray(message)
            tampered[i] ^= bit
            assert_rejected(receiver, bytes(tampered))
    assert receiver.decrypt(message, now=0.0) == plaintext


@pytest.mark.parametrize("kind", KINDS)
def test_every_truncation_and_extension_is_rejected(kind: str) -> None:
    receiver, message, plaintext = scenario(kind)
    for length in range(len(message)):
        assert_rejected(receiver, message[:length])
    assert_rejected(receiver, message + b"\x00")
    assert_rejected(receiver, b"\x02" + message[1:])  # unknown version
    assert receiver.decrypt(message, now=0.0) == plaintext


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    garbage=st.one_of(
        st.binary(max_size=300), st.binary(min_size=85, max_size=300).map(b"\x01".__add__)
    ),
)
def test_garbage_is_rejected_and_changes_nothing(kind: str, garbage: bytes) -> None:
    receiver, message, plaintext = scenario(kind)
    assert_rejected(receiver, garbage)
    assert receiver.decrypt(message, now=0.0) == plaintext


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_random_mutations_are_rejected(kind: str, data: st.DataObject) -> None:
    receiver, message, plaintext = scenario(kind)
    position = data.draw(st.integers(0, len(message) - 1))
    mask = data.draw(st.integers(1, 255))
    tampered = bytearray(message)
    tampered[position] ^= mask
    assert_rejected(receiver, bytes(tampered))
    assert receiver.decrypt(message, now=0.0) == plaintext


def test_message_from_another_session_is_rejected() -> None:
    alice, bob = make_pair()
    other_alice, other_bob = make_pair()
    bob.decrypt(alice.encrypt(b"hi", now=0.0), now=0.0)
    stranger = other_alice.encrypt(b"wrong session", now=0.0)
    assert_rejected(bob, stranger)
    other_bob.decrypt(stranger, now=0.0)
    assert_rejected(alice, other_bob.encrypt(b"also wrong", now=0.0))
    assert bob.decrypt(alice.encrypt(b"still fine", now=0.0), now=0.0) == b"still fine"


def test_reflected_message_is_rejected() -> None:
    alice, bob = make_pair()
    bob.decrypt(alice.encrypt(b"hi", now=0.0), now=0.0)
    reply = bob.encrypt(b"to alice", now=0.0)
    assert_rejected(bob, reply)  # a party's own message sent back to it
    assert alice.decrypt(reply, now=0.0) == b"to alice"


# -- random schedules -----------------------------------------------------------------------------

SCHEDULE_POLICY = RatchetPolicy(
    max_skip=200, max_stored_skipped=2000, rotate_after_messages=3, rotate_after_seconds=50.0
)
PEER = {"a": "b", "b": "a"}


class TwoParties(RuleBasedStateMachine):
    """Alice and Bob send, and the network delivers, drops, reorders and replays."""

    @initialize()
    def start(self) -> None:
        alice, bob = make_pair(SCHEDULE_POLICY)
        self.sessions = {"a": alice, "b": bob}
        self.in_flight: dict[str, list[tuple[bytes, bytes]]] = {"a": [], "b": []}
        self.delivered: dict[str, list[bytes]] = {"a": [], "b": []}
        self.sent = 0
        self.now = 0.0

    @rule(sender=st.sampled_from("ab"), size=st.integers(0, 64))
    def send(self, sender: str, size: int) -> None:
        session = self.sessions[sender]
        plaintext = self.sent.to_bytes(4, "big") + os.urandom(size)
        if not session.can_send:
            with pytest.raises(RatchetStateError):
                session.encrypt(plaintext, now=self.now)
            return
        self.in_flight[sender].append((session.encrypt(plaintext, now=self.now), plaintext))
        self.sent += 1

    @rule(sender=st.sampled_from("ab"))
    def answer_request(self, sender: str) -> None:
        session = self.sessions[sender]
        if session.reply_needed:
            self.in_flight[sender].append((session.encrypt(b"", now=self.now), b""))
            assert not session.reply_needed

    @precondition(lambda self: self.in_flight["a"] or self.in_flight["b"])
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        sender = data.draw(st.sampled_from([s for s in "ab" if self.in_flight[s]]))
        queue = self.in_flight[sender]
        message, plaintext = queue.pop(data.draw(st.integers(0, len(queue) - 1)))
        receiver = self.sessions[PEER[sender]]
        assert receiver.decrypt(message, now=self.now) == plaintext
        self.delivered[sender].append(message)

    @precondition(lambda self: self.in_flight["a"] or self.in_flight["b"])
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        sender = data.draw(st.sampled_from([s for s in "ab" if self.in_flight[s]]))
        queue = self.in_flight[sender]
        queue.pop(data.draw(st.integers(0, len(queue) - 1)))

    @precondition(lambda self: self.delivered["a"] or self.delivered["b"])
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        sender = data.draw(st.sampled_from([s for s in "ab" if self.delivered[s]]))
        message = data.draw(st.sampled_from(self.delivered[sender]))
        assert_rejected(self.sessions[PEER[sender]], message)

    @rule(who=st.sampled_from("ab"))
    def store_and_restore(self, who: str) -> None:
        stored = self.sessions[who].to_bytes()
        restored = RatchetSession.from_bytes(stored)
        assert restored.to_bytes() == stored
        self.sessions[who] = restored  # the rest of the run uses the restored copy

    @rule(seconds=st.floats(0.0, 40.0))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def store_is_bounded(self) -> None:
        if hasattr(self, "sessions"):
            for session in self.sessions.values():
                assert session.skipped_key_count <= SCHEDULE_POLICY.max_stored_skipped


TwoParties.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTwoParties = TwoParties.TestCase


# -- state storage --------------------------------------------------------------------------------


def busy_session() -> RatchetSession:
    alice, bob = make_pair()
    skipped = [alice.encrypt(b"%d" % i, now=1.5) for i in range(4)]
    bob.decrypt(skipped[3], now=2.25)
    alice.decrypt(bob.encrypt(b"r", now=3.0), now=3.0)
    bob.decrypt(alice.encrypt(b"x", now=4.0), now=4.0)
    return bob


def test_state_round_trips_exactly_and_keeps_working() -> None:
    alice, bob = make_pair()
    pending = [alice.encrypt(b"%d" % i, now=0.0) for i in range(4)]
    bob.decrypt(pending[3], now=0.0)
    restored = RatchetSession.from_bytes(bob.to_bytes())
    assert restored.to_bytes() == bob.to_bytes()
    assert restored.skipped_key_count == 3
    assert restored.decrypt(pending[1], now=0.0) == b"1"
    assert restored.to_bytes() != bob.to_bytes()
    assert bob.decrypt(pending[1], now=0.0) == b"1"
    assert restored.to_bytes() == bob.to_bytes()


@settings(max_examples=300, deadline=None)
@given(hostile_bytes(max_size=400))
def test_from_bytes_on_garbage_raises_a_typed_error(data: bytes) -> None:
    with pytest.raises(RatchetFormatError) as excinfo:
        RatchetSession.from_bytes(data)
    assert isinstance(excinfo.value, PeerError)
    assert isinstance(excinfo.value, ValueError)


STATE = busy_session().to_bytes()
FIELDS = canonical_decode(STATE)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64 - 1),
    st.binary(max_size=80),
    st.text(max_size=5),
    st.lists(st.integers(0, 5), max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(FIELDS)), value=VALUES)
def test_from_bytes_on_altered_fields_is_typed_or_valid(field: str, value: object) -> None:
    altered = dict(FIELDS, **{field: value})
    data = canonical_encode(altered)
    try:
        session = RatchetSession.from_bytes(data)
    except RatchetFormatError:
        return
    assert session.to_bytes() == data  # accepted only if it is itself canonical


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_from_bytes_rejects_missing_and_extra_fields(field: str) -> None:
    missing = {k: v for k, v in FIELDS.items() if k != field}
    with pytest.raises(RatchetFormatError):
        RatchetSession.from_bytes(canonical_encode(missing))
    with pytest.raises(RatchetFormatError):
        RatchetSession.from_bytes(canonical_encode(dict(FIELDS, **{field + "x": 0})))


def test_from_bytes_rejects_bad_versions_and_inconsistent_states() -> None:
    for bad in (
        {"v": 2},
        {"v": True},
        {"t0": b"\x7f\xf0" + bytes(6)},  # +infinity
        {"skipped": FIELDS["skipped"] + bytes(67)},
        {"skipped": FIELDS["skipped"][:68] * 2},  # a duplicate entry
        {"cks": None},
        {"ckr": None},
        {"policy": [1000, 1, None, None]},  # more stored keys than the policy allows
        {"ns": 2**32},
    ):
        with pytest.raises(RatchetFormatError):
            RatchetSession.from_bytes(canonical_encode(dict(FIELDS, **bad)))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_flipped_state_bytes_never_crash(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(STATE) - 1))
    tampered = bytearray(STATE)
    tampered[position] ^= data.draw(st.integers(1, 255))
    try:
        session = RatchetSession.from_bytes(bytes(tampered))
    except RatchetFormatError:
        return
    assert session.to_bytes() == bytes(tampered)
