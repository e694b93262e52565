"""Double Ratchet with header encryption: delivery, limits and security properties."""

from __future__ import annotations

import os
import random

import pytest

from dchat_core import CallerError, PeerError
from dchat_crypto import (
    DecryptionError,
    InvalidKeyError,
    PrivateKey,
    RatchetPolicy,
    RatchetSession,
    SessionSecrets,
)
from dchat_crypto._ratchet_state import MAX_SKIPPED_CHAINS
from dchat_crypto.hazmat import RatchetArgumentError, RatchetStateError

AD = b"alice-identity|bob-identity"
NO_ROTATION = RatchetPolicy(rotate_after_messages=None, rotate_after_seconds=None)


def make_secrets() -> SessionSecrets:
    return SessionSecrets(os.urandom(32), os.urandom(32), os.urandom(32))


def make_pair(
    policy: RatchetPolicy = NO_ROTATION, ad: bytes = AD
) -> tuple[RatchetSession, RatchetSession]:
    secrets = make_secrets()
    bob_key = PrivateKey.generate()
    alice = RatchetSession.initiator(
        secrets, bob_key.public_key, associated_data=ad, policy=policy, now=0.0
    )
    bob = RatchetSession.responder(secrets, bob_key, associated_data=ad, policy=policy, now=0.0)
    return alice, bob


def assert_rejected(session: RatchetSession, message: bytes) -> None:
    """The message fails with exactly DecryptionError and leaves the state unchanged."""
    before = session.to_bytes()
    with pytest.raises(DecryptionError) as excinfo:
        session.decrypt(message, now=0.0)
    assert excinfo.type is DecryptionError
    assert str(excinfo.value) == "decryption failed"
    assert session.to_bytes() == before


def send(session: RatchetSession, count: int, tag: str) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(count):
        plaintext = f"{tag}{i}".encode()
        out.append((session.encrypt(plaintext, now=0.0), plaintext))
    return out


# -- delivery ------------------------------------------------------------------------------


def test_round_trips_both_directions_for_many_turns() -> None:
    alice, bob = make_pair()
    sender, receiver = alice, bob
    keys_seen = set()
    for turn in range(30):
        for message, plaintext in send(sender, 1 + turn % 4, f"t{turn}-"):
            assert receiver.decrypt(message, now=0.0) == plaintext
        keys_seen.add(sender.ratchet_key)
        sender, receiver = receiver, sender
    # Every turn used a fresh ratchet key: the DH ratchet really turns.
    assert len(keys_seen) == 30
    assert alice.skipped_key_count == bob.skipped_key_count == 0


def test_empty_and_large_plaintexts() -> None:
    alice, bob = make_pair()
    for plaintext in (b"", b"x", os.urandom(100_000)):
        message = alice.encrypt(plaintext, now=0.0)
        assert len(message) == len(plaintext) + 86
        assert bob.decrypt(message, now=0.0) == plaintext


def test_out_of_order_within_a_chain() -> None:
    alice, bob = make_pair()
    messages = send(alice, 12, "a")
    order = list(range(12))
    random.Random(7).shuffle(order)
    for i in order:
        assert bob.decrypt(messages[i][0], now=0.0) == messages[i][1]
    assert bob.skipped_key_count == 0


def test_a_copy_is_the_same_state_and_goes_its_own_way() -> None:
    alice, bob = make_pair()
    messages = send(alice, 3, "a")
    bob.decrypt(messages[2][0], now=0.0)  # two skipped keys in the state
    twin = bob.copy()
    assert twin.to_bytes() == bob.to_bytes()
    assert bob.decrypt(messages[0][0], now=0.0) == messages[0][1]
    assert bob.to_bytes() != twin.to_bytes()
    assert twin.skipped_key_count == 2  # what the original used up, the copy still holds
    assert twin.decrypt(messages[0][0], now=0.0) == messages[0][1]
    later = send(alice, 1, "b")[0]
    assert twin.decrypt(later[0], now=0.0) == later[1]
    assert_rejected(twin, later[0])
    assert bob.decrypt(later[0], now=0.0) == later[1]  # the original's chain did not move


def test_out_of_order_across_chains() -> None:
    alice, bob = make_pair()
    first = send(alice, 4, "a1-")
    assert bob.decrypt(first[1][0], now=0.0) == first[1][1]
    (reply,) = send(bob, 1, "b")
    assert alice.decrypt(reply[0], now=0.0) == reply[1]
    second = send(alice, 4, "a2-")  # a new chain after a DH ratchet step
    # The new chain arrives first, then the old chain's stragglers.
    for message, plaintext in [second[2], first[3], second[0], first[0], second[3], first[2]]:
        assert bob.decrypt(message, now=0.0) == plaintext
    assert bob.decrypt(second[1][0], now=0.0) == second[1][1]
    assert bob.skipped_key_count == 0


def test_lost_messages_do_not_block_later_ones() -> None:
    alice, bob = make_pair()
    sender, receiver = alice, bob
    late: list[tuple[RatchetSession, bytes, bytes]] = []
    for turn in range(10):
        messages = send(sender, 5, f"t{turn}-")
        for message, plaintext in messages[1::2]:  # the others are held back
            assert receiver.decrypt(message, now=0.0) == plaintext
        late += [(receiver, message, plaintext) for message, plaintext in messages[::2]]
        sender, receiver = receiver, sender
    # Held-back messages of every chain still decrypt at the very end, in any order.
    random.Random(3).shuffle(late)
    for receiver, message, plaintext in late:
        assert receiver.decrypt(message, now=0.0) == plaintext
    assert alice.skipped_key_count == bob.skipped_key_count == 0


def test_responder_cannot_send_before_receiving() -> None:
    alice, bob = make_pair()
    assert alice.can_send
    assert not bob.can_send
    with pytest.raises(RatchetStateError) as excinfo:
        bob.encrypt(b"too early", now=0.0)
    assert isinstance(excinfo.value, CallerError)
    bob.decrypt(alice.encrypt(b"hi", now=0.0), now=0.0)
    assert bob.can_send


def test_associated_data_is_bound() -> None:
    secrets, bob_key = make_secrets(), PrivateKey.generate()
    alice = RatchetSession.initiator(secrets, bob_key.public_key, associated_data=b"A|B", now=0)
    bob = RatchetSession.responder(secrets, bob_key, associated_data=b"A|C", now=0)
    assert_rejected(bob, alice.encrypt(b"hello", now=0.0))


# -- limits ------------------------------------------------------------------------------------


def test_skipping_more_than_max_skip_is_rejected_and_changes_nothing() -> None:
    alice, bob = make_pair(RatchetPolicy(max_skip=5, rotate_after_messages=None))
    messages = send(alice, 7, "a")
    assert_rejected(bob, messages[6][0])  # 6 keys to skip > 5
    assert bob.decrypt(messages[5][0], now=0.0) == messages[5][1]  # exactly 5 is allowed
    assert bob.skipped_key_count == 5
    assert bob.decrypt(messages[6][0], now=0.0) == messages[6][1]


def test_max_skip_applies_to_the_previous_chain_too() -> None:
    alice, bob = make_pair(RatchetPolicy(max_skip=3, rotate_after_messages=None))
    first = send(alice, 5, "a")
    bob.decrypt(first[0][0], now=0.0)
    alice.decrypt(bob.encrypt(b"r", now=0.0), now=0.0)
    (new_chain,) = send(alice, 1, "n")
    assert_rejected(bob, new_chain[0])  # would skip 4 keys of the old chain
    bob.decrypt(first[1][0], now=0.0)
    assert bob.decrypt(new_chain[0], now=0.0) == new_chain[1]


def test_skipped_store_is_bounded_and_evicts_the_oldest() -> None:
    alice, bob = make_pair(RatchetPolicy(max_skip=10, max_stored_skipped=4))
    messages = send(alice, 8, "a")
    bob.decrypt(messages[7][0], now=0.0)  # skips 0..6, keeps only 3..6
    assert bob.skipped_key_count == 4
    for message, _ in messages[:3]:
        assert_rejected(bob, message)
    for message, plaintext in messages[3:7]:
        assert bob.decrypt(message, now=0.0) == plaintext
    assert bob.skipped_key_count == 0


def test_store_bound_holds_across_chains() -> None:
    alice, bob = make_pair(RatchetPolicy(max_skip=10, max_stored_skipped=6))
    sender, receiver = alice, bob
    for turn in range(8):
        messages = send(sender, 4, f"t{turn}-")
        receiver.decrypt(messages[3][0], now=0.0)  # 3 skipped per chain
        assert receiver.skipped_key_count <= 6
        sender, receiver = receiver, sender
    assert bob.skipped_key_count == 6


def test_stored_chains_are_bounded_so_trial_decryption_is_bounded() -> None:
    alice, bob = make_pair(RatchetPolicy(max_skip=10, rotate_after_messages=None))
    lost = []
    for turn in range(MAX_SKIPPED_CHAINS + 6):
        (held, _), (message, _) = send(alice, 2, f"t{turn}-")
        bob.decrypt(message, now=0.0)  # one skipped key per chain
        lost.append(held)
        alice.decrypt(bob.encrypt(b"r", now=0.0), now=0.0)
    assert bob.skipped_key_count == MAX_SKIPPED_CHAINS  # under max_stored_skipped
    for message in lost[:6]:
        assert_rejected(bob, message)  # the oldest chains were evicted
    assert bob.decrypt(lost[6], now=0.0) == b"t6-0"


# -- replay, forward secrecy, post-compromise security ------------------------------------------


def test_replay_is_rejected_and_changes_nothing() -> None:
    alice, bob = make_pair()
    messages = send(alice, 3, "a")
    bob.decrypt(messages[2][0], now=0.0)
    bob.decrypt(messages[0][0], now=0.0)  # from the skipped store
    for message, _ in messages[::2]:
        assert_rejected(bob, message)
    assert bob.decrypt(messages[1][0], now=0.0) == messages[1][1]
    # After a DH step the old chain's messages stay rejected.
    alice.decrypt(bob.encrypt(b"r", now=0.0), now=0.0)
    bob.decrypt(alice.encrypt(b"new chain", now=0.0), now=0.0)
    for message, _ in messages:
        assert_rejected(bob, message)


def test_forward_secrecy_snapshot_cannot_decrypt_past_messages() -> None:
    alice, bob = make_pair()
    first = send(alice, 3, "a")
    before = bob.to_bytes()
    for message, _ in [first[2], first[0], first[1]]:
        bob.decrypt(message, now=0.0)
    alice.decrypt(bob.encrypt(b"r", now=0.0), now=0.0)
    second = send(alice, 3, "c")
    for message, _ in second:
        bob.decrypt(message, now=0.0)
    past = first + second
    # Control: the state from before could read them (so the check below is meaningful).
    early = RatchetSession.from_bytes(before)
    assert early.decrypt(first[0][0], now=0.0) == first[0][1]
    snapshot = bob.to_bytes()
    for message, _ in past:
        assert_rejected(RatchetSession.from_bytes(snapshot), message)


def test_post_compromise_security_after_a_full_round_trip() -> None:
    alice, bob = make_pair()
    bob.decrypt(alice.encrypt(b"hello", now=0.0), now=0.0)
    stolen = alice.to_bytes()  # the attacker copies Alice's whole state here
    attacker = RatchetSession.from_bytes(stolen)
    m1 = bob.encrypt(b"still readable", now=0.0)
    # Control: the stolen state reads what Bob sends before Alice has ratcheted.
    assert attacker.decrypt(m1, now=0.0) == b"still readable"
    alice.decrypt(m1, now=0.0)  # Alice ratchets with a fresh key...
    bob.decrypt(alice.encrypt(b"fresh", now=0.0), now=0.0)  # ...then Bob does
    m2 = bob.encrypt(b"healed", now=0.0)
    assert alice.decrypt(m2, now=0.0) == b"healed"
    assert_rejected(RatchetSession.from_bytes(stolen), m2)
    assert_rejected(attacker, m2)  # even after following the transcript


# -- header encryption and secrecy of the state's representation --------------------------------


def test_headers_hide_ratchet_keys_and_counters() -> None:
    alice, bob = make_pair()
    sender, receiver = alice, bob
    for turn in range(4):
        pn = 0 if turn < 2 else 3
        for n in range(3):
            message = sender.encrypt(b"m", now=0.0)
            assert message[0] == 1
            assert sender.ratchet_key.to_bytes() not in message
            assert pn.to_bytes(4, "big") + n.to_bytes(4, "big") not in message
            receiver.decrypt(message, now=0.0)
        sender, receiver = receiver, sender


def test_same_plaintext_encrypts_differently() -> None:
    alice, _ = make_pair()
    one, two = alice.encrypt(b"same", now=0.0), alice.encrypt(b"same", now=0.0)
    assert one[1:13] != two[1:13]  # random header nonces
    assert one[13:] != two[13:]


def test_reprs_show_no_key_bytes() -> None:
    secrets = make_secrets()
    bob_key = PrivateKey.generate()
    alice = RatchetSession.initiator(secrets, bob_key.public_key, associated_data=AD, now=0)
    shown = repr(alice) + str(alice) + repr(secrets) + str(secrets)
    secret_values = [
        secrets.root_key,
        secrets.initiator_header_key,
        secrets.responder_next_header_key,
        alice.ratchet_key.to_bytes(),
    ]
    state = alice.to_bytes()
    secret_values += [state[i : i + 32] for i in range(len(state) - 32)]
    for value in secret_values:
        assert value.hex() not in shown
        assert repr(value)[2:-1] not in shown
    assert "RatchetSession(" in repr(alice)


# -- rotation --------------------------------------------------------------------------------------


def test_rotation_after_messages_changes_both_dh_keys_once_answered() -> None:
    policy = RatchetPolicy(rotate_after_messages=3, rotate_after_seconds=None)
    alice, bob = make_pair(policy)
    alice_key = alice.ratchet_key
    for _ in range(3):
        assert not alice.rotation_due(now=0.0)
        bob.decrypt(alice.encrypt(b"x", now=0.0), now=0.0)
        assert not bob.reply_needed
    bob_key = bob.ratchet_key
    assert alice.rotation_due(now=0.0)
    bob.decrypt(alice.encrypt(b"4th", now=0.0), now=0.0)
    assert bob.reply_needed
    assert alice.decrypt(bob.encrypt(b"", now=0.0), now=0.0) == b""
    assert not bob.reply_needed
    assert alice.ratchet_key != alice_key
    assert not alice.rotation_due(now=0.0)
    bob.decrypt(alice.encrypt(b"after", now=0.0), now=0.0)
    assert bob.remote_ratchet_key == alice.ratchet_key
    assert bob.ratchet_key != bob_key
    assert not bob.reply_needed


def test_rotation_without_replies_keeps_working() -> None:
    policy = RatchetPolicy(rotate_after_messages=3, rotate_after_seconds=None)
    alice, bob = make_pair(policy)
    alice_key = alice.ratchet_key
    for message, plaintext in send(alice, 50, "a"):
        assert bob.decrypt(message, now=0.0) == plaintext
    assert bob.reply_needed
    assert alice.rotation_due(now=0.0)
    assert alice.ratchet_key == alice_key  # no rotation was faked without a reply


def test_rotation_after_seconds() -> None:
    policy = RatchetPolicy(rotate_after_messages=None, rotate_after_seconds=10.0)
    alice, bob = make_pair(policy)
    bob.decrypt(alice.encrypt(b"early", now=9.5), now=9.5)
    assert not bob.reply_needed
    assert alice.rotation_due(now=10.0)
    bob.decrypt(alice.encrypt(b"late", now=10.0), now=10.0)
    assert bob.reply_needed
    alice.decrypt(bob.encrypt(b"", now=11.0), now=11.0)
    assert not alice.rotation_due(now=20.0)  # the new chain started at 11
    assert alice.rotation_due(now=21.0)


def test_no_rotation_policy_never_requests_a_reply() -> None:
    alice, bob = make_pair(NO_ROTATION)
    for message, _ in send(alice, 300, "a"):
        bob.decrypt(message, now=1e9)
        assert not bob.reply_needed


def test_request_on_an_old_chain_does_not_ask_again() -> None:
    policy = RatchetPolicy(rotate_after_messages=1, rotate_after_seconds=None)
    alice, bob = make_pair(policy)
    first = send(alice, 3, "a")  # messages 1 and 2 carry the request
    bob.decrypt(first[0][0], now=0.0)
    bob.decrypt(first[1][0], now=0.0)
    alice.decrypt(bob.encrypt(b"", now=0.0), now=0.0)
    bob.decrypt(alice.encrypt(b"new chain", now=0.0), now=0.0)
    assert not bob.reply_needed
    bob.decrypt(first[2][0], now=0.0)  # a late, flagged straggler of the old chain
    assert not bob.reply_needed


# -- argument validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_skip": -1},
        {"max_skip": True},
        {"max_stored_skipped": 10**6},
        {"rotate_after_messages": 0},
        {"rotate_after_seconds": 0.0},
        {"rotate_after_seconds": float("nan")},
    ],
)
def test_bad_policies_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(RatchetArgumentError) as excinfo:
        RatchetPolicy(**kwargs)  # type: ignore[arg-type]
    assert isinstance(excinfo.value, CallerError)
    assert isinstance(excinfo.value, ValueError)


def test_bad_secrets_are_rejected() -> None:
    key = os.urandom(32)
    with pytest.raises(InvalidKeyError):
        SessionSecrets(os.urandom(31), os.urandom(32), os.urandom(32))
    with pytest.raises(InvalidKeyError):
        SessionSecrets(os.urandom(32), key, key)
    secrets = make_secrets()
    copy = SessionSecrets(
        secrets.root_key, secrets.initiator_header_key, secrets.responder_next_header_key
    )
    assert secrets == copy
    assert secrets != make_secrets()


def test_non_finite_time_is_rejected() -> None:
    alice, bob = make_pair()
    with pytest.raises(RatchetArgumentError):
        alice.encrypt(b"x", now=float("inf"))
    with pytest.raises(RatchetArgumentError):
        bob.decrypt(alice.encrypt(b"x", now=0.0), now=float("nan"))


def test_non_bytes_arguments_are_rejected() -> None:
    alice, bob = make_pair()
    with pytest.raises(RatchetArgumentError):
        alice.encrypt("text", now=0.0)  # type: ignore[arg-type]
    with pytest.raises(RatchetArgumentError):
        bob.decrypt(10**12, now=0.0)  # type: ignore[arg-type]
    message = alice.encrypt(bytearray(b"ok"), now=0.0)
    assert bob.decrypt(memoryview(message), now=0.0) == b"ok"


def test_decryption_error_is_a_peer_error() -> None:
    _, bob = make_pair()
    with pytest.raises(PeerError):
        bob.decrypt(b"\x01" + bytes(100), now=0.0)
