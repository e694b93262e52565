"""Hostile input to the engine: every refusal is a Rejected event and changes nothing.

Each case checks what a user would notice: no exception escapes ``receive``,
no stored byte changes (sessions, prekeys, messages, outbox), and the next
genuine message on the same session still opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dchat_core import IdentityId, canonical_decode, canonical_encode
from dchat_crypto import seal
from dchat_messaging import (
    BundleRejectedError,
    Content,
    MessageReceived,
    Rejected,
    SealedEnvelope,
)
from dchat_messaging._bundle_wrap import unwrap_bundle, wrap_bundle
from dchat_messaging._wire import SessionEnvelope, open_session_envelope, seal_session_envelope
from dchat_messaging.lowlevel import Duplicate, SeenEnvelopes

if TYPE_CHECKING:
    from dchat_testing import EngineDevice as Device
    from dchat_testing import EngineNet as Net

T0 = 1000.0
OPAQUE = "EnvelopeRejectedError"
CONTEXT = b"dchat-envelope-v2\x00"

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


# -- helpers -----------------------------------------------------------------------------------


def _established(net: Net) -> tuple[Device, Device]:
    """Alice and Bob with a session both sides have used."""
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "hello", now=T0)
    bob.fetch(now=T0)
    bob.send([alice.address], "hi", now=T0)
    alice.fetch(now=T0)
    return alice, bob


def _envelope(net: Net, sender: Device, to: Device, text: str, now: float = T0) -> bytes:
    """Send ``text`` and take its envelope off the relay before ``to`` fetches it."""
    sender.send([to.address], text, now=now)
    return net.relay.mail[bytes(to.address.mailbox)].pop()


def _open(device: Device, raw: bytes) -> SessionEnvelope:
    return open_session_envelope(SealedEnvelope.from_bytes(raw), device.keys.exchange_key)


def _reseal(device: Device, inner: SessionEnvelope) -> bytes:
    envelope = seal_session_envelope(
        inner, mailbox=device.address.mailbox, device_key=device.address.exchange_key
    )
    return envelope.to_bytes()


def _seal_map(device: Device, value: dict[str, Any]) -> bytes:
    """Seal any inner map to ``device`` exactly as a sender would."""
    mailbox = device.address.mailbox
    sealed = seal(
        device.address.exchange_key, canonical_encode(value), context=CONTEXT + bytes(mailbox)
    )
    return SealedEnvelope(mailbox, sealed).to_bytes()


def _snapshot(device: Device) -> tuple[dict[str, bytes], dict[bytes, Any], dict[bytes, Any]]:
    store = device.store
    return dict(store.state), dict(store.messages), dict(store.outbox)


def _refused(device: Device, raw: bytes, *, now: float = T0) -> set[str]:
    """Receive ``raw``: only Rejected events, nothing stored changes; the reasons."""
    before = _snapshot(device)
    events = device.engine.receive(raw, now=now)
    assert events
    assert all(isinstance(e, Rejected) for e in events), events
    assert _snapshot(device) == before
    return {e.reason for e in events if isinstance(e, Rejected)}


def _duplicate_then_forgotten(device: Device, *raws: bytes, now: float) -> None:
    """Each of ``raws`` is a copy received already; then the digests age out of the seen set.

    What remains is the session's own guard (a spent message key or prekey),
    which the caller checks next: a replay older than the seen set is refused.
    """
    before = _snapshot(device)
    for raw in raws:
        assert device.engine.receive(raw, now=now) == [Duplicate()]
    assert _snapshot(device) == before
    with device.store.transaction():
        for key in [k for k in device.store.state if k.startswith("msg.seen.")]:
            device.store.delete_state(key)
    device.engine.seen = SeenEnvelopes(device.store, "msg.seen")


def _texts(events: list[Any]) -> list[str]:
    return [e.text for e in events if isinstance(e, MessageReceived)]


def _still_works(net: Net, alice: Device, bob: Device, text: str = "still here") -> None:
    """A genuine message on the same session opens."""
    alice.send([bob.address], text, now=T0 + 1)
    events = bob.fetch(now=T0 + 1)
    assert _texts(events) == [text]
    assert not [e for e in events if not isinstance(e, MessageReceived)]


# -- garbage and corruption --------------------------------------------------------------------


def test_random_bytes_are_refused_and_change_nothing(net: Net) -> None:
    alice, bob = _established(net)

    @settings(max_examples=100, deadline=None)
    @given(data=st.binary(max_size=600))
    def check(data: bytes) -> None:
        assert _refused(bob, data) <= {"MalformedEnvelopeError", OPAQUE}

    check()
    _still_works(net, alice, bob)


def test_every_flipped_envelope_byte_is_refused(net: Net) -> None:
    alice, bob = _established(net)
    raw = _envelope(net, alice, bob, "short")
    for i in range(len(raw)):
        corrupt = bytearray(raw)
        corrupt[i] ^= 0x01
        assert _refused(bob, bytes(corrupt)) <= {"MalformedEnvelopeError", OPAQUE}
    assert _texts(bob.engine.receive(raw, now=T0)) == ["short"]  # the original opens
    _still_works(net, alice, bob)


def test_every_flipped_ratchet_byte_under_a_valid_seal_is_refused(net: Net) -> None:
    alice, bob = _established(net)
    raw = _envelope(net, alice, bob, "short")
    inner = _open(bob, raw)
    for i in range(len(inner.message)):
        message = bytearray(inner.message)
        message[i] ^= 0x80
        forged = SessionEnvelope(inner.sender, inner.sender_device, None, bytes(message))
        assert _refused(bob, _reseal(bob, forged)) == {OPAQUE}
    assert _texts(bob.engine.receive(raw, now=T0)) == ["short"]
    _still_works(net, alice, bob)


def test_truncated_envelopes_and_messages_are_refused(net: Net) -> None:
    alice, bob = _established(net)
    raw = _envelope(net, alice, bob, "whole")
    for n in range(len(raw)):
        assert _refused(bob, raw[:n]) <= {"MalformedEnvelopeError"}
    inner = _open(bob, raw)
    for n in range(0, len(inner.message), 7):
        cut = SessionEnvelope(inner.sender, inner.sender_device, None, inner.message[:n])
        assert _refused(bob, _reseal(bob, cut)) == {OPAQUE}
    assert _texts(bob.engine.receive(raw, now=T0)) == ["whole"]


def test_hypothesis_corruptions_of_a_first_message_do_not_burn_the_prekey(net: Net) -> None:
    """A corrupted first message leaves the one-time prekey for the genuine one."""
    alice, bob = net.person("alice"), net.person("bob")
    raw = _envelope(net, alice, bob, "first")
    inner = _open(bob, raw)
    assert inner.init is not None
    parts = {"init": inner.init.to_bytes(), "msg": inner.message}

    @settings(max_examples=60, deadline=None)
    @given(
        part=st.sampled_from(sorted(parts)),
        edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1),
    )
    def check(part: str, edits: list[tuple[int, int]]) -> None:
        data = bytearray(parts[part])
        for position, mask in edits:
            data[position % len(data)] ^= mask
        assume(data != parts[part])  # edits at one place may cancel out
        value = {
            "v": 2,
            "from": bytes(inner.sender),
            "dev": inner.sender_device.to_bytes(),
            "init": parts["init"],
            "msg": parts["msg"],
        } | {part: bytes(data)}
        assert _refused(bob, _seal_map(bob, value)) == {OPAQUE}

    check()
    assert _texts(bob.engine.receive(raw, now=T0)) == ["first"]
    _still_works(net, alice, bob)


def test_envelope_for_another_mailbox_is_refused(net: Net) -> None:
    alice, bob = _established(net)
    carol = net.person("carol")
    to_carol = _envelope(net, alice, carol, "for carol")
    assert _refused(bob, to_carol) == {OPAQUE}
    # Relabelled to Bob's mailbox it is still sealed to Carol's key.
    relabelled = SealedEnvelope(bob.address.mailbox, SealedEnvelope.from_bytes(to_carol).ciphertext)
    assert _refused(bob, relabelled.to_bytes()) == {OPAQUE}
    # And Bob's mail relabelled to Carol's mailbox opens for neither.
    to_bob = _envelope(net, alice, bob, "for bob")
    moved = SealedEnvelope(carol.address.mailbox, SealedEnvelope.from_bytes(to_bob).ciphertext)
    assert _refused(bob, moved.to_bytes()) == {OPAQUE}
    assert _refused(carol, moved.to_bytes()) == {OPAQUE}
    assert _texts(carol.engine.receive(to_carol, now=T0)) == ["for carol"]
    assert _texts(bob.engine.receive(to_bob, now=T0)) == ["for bob"]


# -- forged senders ----------------------------------------------------------------------------


def test_forged_from_of_a_known_contact_is_refused(net: Net) -> None:
    """Alice claims Carol's identity and device: Carol's session refuses the message."""
    alice, bob = _established(net)
    carol = net.person("carol")
    carol.send([bob.address], "carol here", now=T0)
    bob.fetch(now=T0)  # Bob holds a session with Carol's device
    raw = _envelope(net, alice, bob, "it is me, carol")
    inner = _open(bob, raw)
    carol_device = carol.keys.device_key.public_key
    forged = SessionEnvelope(carol.card.identity_id, carol_device, None, inner.message)
    assert _refused(bob, _reseal(bob, forged)) == {OPAQUE}
    assert _texts(bob.engine.receive(raw, now=T0)) == ["it is me, carol"]
    assert bob.texts() == ["hello", "carol here", "it is me, carol"]


def test_forged_from_with_the_real_device_is_refused(net: Net) -> None:
    """Alice's device key under Carol's identity: not a device of Carol's."""
    alice, bob = _established(net)
    carol = net.person("carol")
    inner = _open(bob, _envelope(net, alice, bob, "from carol, honest"))
    forged = SessionEnvelope(carol.card.identity_id, inner.sender_device, None, inner.message)
    assert _refused(bob, _reseal(bob, forged)) == {"UnknownDeviceError"}
    unknown = SessionEnvelope(IdentityId(bytes(32)), inner.sender_device, None, inner.message)
    assert _refused(bob, _reseal(bob, unknown)) == {"UnknownDeviceError"}
    _still_works(net, alice, bob)


def test_forged_init_for_an_established_session_is_refused(net: Net) -> None:
    """Carol's genuine first message, relabelled as Alice's: her session cannot be hijacked."""
    alice, bob = _established(net)
    carol = net.person("carol")
    carol_inner = _open(bob, _envelope(net, carol, bob, "hijack"))
    assert carol_inner.init is not None
    alice_device = alice.keys.device_key.public_key
    forged = SessionEnvelope(
        alice.card.identity_id, alice_device, carol_inner.init, carol_inner.message
    )
    assert _refused(bob, _reseal(bob, forged)) == {OPAQUE}
    _still_works(net, alice, bob)


def test_the_opaque_reason_is_the_same_whatever_failed(net: Net) -> None:
    alice, bob = _established(net)
    carol = net.person("carol")
    carol.send([bob.address], "carol here", now=T0)
    bob.fetch(now=T0)
    raw = _envelope(net, alice, bob, "real")
    inner = _open(bob, raw)
    wrong_key = SealedEnvelope(
        bob.address.mailbox,
        seal_session_envelope(
            inner, mailbox=bob.address.mailbox, device_key=carol.address.exchange_key
        ).ciphertext,
    ).to_bytes()
    corrupted = bytearray(raw)
    corrupted[-5] ^= 1
    message = bytearray(inner.message)
    message[-1] ^= 1
    corrupted_inner = SessionEnvelope(inner.sender, inner.sender_device, None, bytes(message))
    forged_from = SessionEnvelope(
        carol.card.identity_id, carol.keys.device_key.public_key, None, inner.message
    )
    bad_inner = _seal_map(bob, {"v": 3, "from": bytes(32), "dev": bytes(32), "msg": b""})
    reasons = [
        _refused(bob, wrong_key),
        _refused(bob, bytes(corrupted)),
        _refused(bob, _reseal(bob, corrupted_inner)),
        _refused(bob, _reseal(bob, forged_from)),
        _refused(bob, bad_inner),
    ]
    assert reasons == [{OPAQUE}] * 5


# -- garbage inside the seal -------------------------------------------------------------------

_INNER_OK = {
    "v": lambda v: v == 2 and not isinstance(v, bool),
    "from": lambda v: False,  # any other 32 bytes is another identity: refused all the same
    "dev": lambda v: False,
    "init": lambda v: False,
    "msg": lambda v: False,
}


def test_garbage_in_every_inner_field_is_refused(net: Net) -> None:
    alice, bob = _established(net)
    inner = _open(bob, _envelope(net, alice, bob, "template"))
    base: dict[str, Any] = {
        "v": 2,
        "from": bytes(inner.sender),
        "dev": inner.sender_device.to_bytes(),
        "msg": inner.message,
    }

    @settings(max_examples=100, deadline=None)
    @given(
        field=st.sampled_from([*_INNER_OK, "unknown", "missing"]),
        value=values | st.binary(min_size=31, max_size=33) | st.integers(0, 5),
        missing=st.sampled_from(sorted(base)),
    )
    def check(field: str, value: Any, missing: str) -> None:
        if field == "missing":
            bad = {k: v for k, v in base.items() if k != missing}
        elif field == "unknown":
            bad = base | {"x": value}
        else:
            if _INNER_OK[field](value):
                return
            bad = base | {field: value}
        assert _refused(bob, _seal_map(bob, bad)) <= {OPAQUE, "UnknownDeviceError"}

    check()
    # The template itself was never spent: it still opens.
    assert _texts(bob.engine.receive(_seal_map(bob, base), now=T0)) == ["template"]
    _still_works(net, alice, bob)


@pytest.mark.parametrize("value", [b"", b"\x00", "text", [], {}, None])
def test_an_inner_value_that_is_not_a_map_is_refused(net: Net, value: Any) -> None:
    alice, bob = _established(net)
    mailbox = bob.address.mailbox
    sealed = seal(
        bob.address.exchange_key, canonical_encode(value), context=CONTEXT + bytes(mailbox)
    )
    assert _refused(bob, SealedEnvelope(mailbox, sealed).to_bytes()) == {OPAQUE}
    _still_works(net, alice, bob)


def test_a_seal_with_the_wrong_context_is_refused(net: Net) -> None:
    alice, bob = _established(net)
    inner = _open(bob, _envelope(net, alice, bob, "context"))
    value = {
        "v": 2,
        "from": bytes(inner.sender),
        "dev": inner.sender_device.to_bytes(),
        "msg": inner.message,
    }
    mailbox = bob.address.mailbox
    for context in (b"", CONTEXT, b"dchat-envelope-v1\x00" + bytes(mailbox)):
        sealed = seal(bob.address.exchange_key, canonical_encode(value), context=context)
        assert _refused(bob, SealedEnvelope(mailbox, sealed).to_bytes()) == {OPAQUE}
    assert _texts(bob.engine.receive(_seal_map(bob, value), now=T0)) == ["context"]


# -- replays and reordering --------------------------------------------------------------------


def test_replayed_first_message_after_the_session_was_deleted_is_refused(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    first = _envelope(net, alice, bob, "first")
    assert _texts(bob.engine.receive(first, now=T0)) == ["first"]
    bob.engine.forget_device(alice.keys.device_id)
    assert not bob.engine.has_session(alice.keys.device_id)
    _duplicate_then_forgotten(bob, first, now=T0 + 5)
    assert _refused(bob, first, now=T0 + 5) == {OPAQUE}  # its one-time prekey is spent
    assert bob.texts() == ["first"]


def test_replayed_last_resort_first_message_is_refused(net: Net) -> None:
    """Without a one-time prekey, the replay guard still refuses the same init twice."""
    alice, bob = net.person("alice"), net.person("bob")
    net.relay.one_time[bytes(bob.address.mailbox)] = []  # only the last-resort bundle left
    first = _envelope(net, alice, bob, "first")
    inner = _open(bob, first)
    assert inner.init is not None
    assert inner.init.one_time_prekey_id is None
    assert _texts(bob.engine.receive(first, now=T0)) == ["first"]
    bob.engine.forget_device(alice.keys.device_id)
    _duplicate_then_forgotten(bob, first, now=T0 + 5)
    assert _refused(bob, first, now=T0 + 5) == {OPAQUE}
    assert bob.texts() == ["first"]


def test_reordered_messages_open_and_replays_are_refused(net: Net) -> None:
    alice, bob = _established(net)
    raws = [_envelope(net, alice, bob, f"m{i}", now=T0 + i) for i in range(6)]
    order = [5, 0, 3, 1, 4, 2]
    opened = []
    for i in order:
        opened += _texts(bob.engine.receive(raws[i], now=T0 + 10))
    assert opened == [f"m{i}" for i in order]
    _duplicate_then_forgotten(bob, *raws, now=T0 + 11)
    for raw in raws:
        assert _refused(bob, raw, now=T0 + 11) == {OPAQUE}
    assert bob.texts() == ["hello", *(f"m{i}" for i in order)]
    _still_works(net, alice, bob)


def test_a_message_beyond_the_skip_window_is_refused_and_the_session_survives(
    net: Net,
) -> None:
    alice, bob = _established(net)
    for i in range(1001):  # the next one is more than RatchetPolicy.max_skip (1000) ahead
        alice.engine.send(Content.text_message(f"late {i}", now_ms=1), [bob.address], now=T0)
    far = _envelope(net, alice, bob, "too far ahead")
    late = net.relay.mail.pop(bytes(bob.address.mailbox))
    assert _refused(bob, far) == {OPAQUE}
    assert _texts(bob.engine.receive(late[0], now=T0)) == ["late 0"]
    assert _texts(bob.engine.receive(far, now=T0)) == ["too far ahead"]  # now within reach


# -- the directory -----------------------------------------------------------------------------


def test_a_revoked_device_is_refused_even_with_a_session(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    laptop = net.linked(alice)
    laptop.send([bob.address], "while certified", now=T0)
    assert _texts(bob.fetch(now=T0)) == ["while certified"]
    net.directory.remove(laptop.address)  # revoked
    raw = _envelope(net, laptop, bob, "after revocation")
    assert _refused(bob, raw) == {"UnknownDeviceError"}
    assert bob.texts() == ["while certified"]
    _still_works(net, alice, bob)


# -- sessions we do not hold -------------------------------------------------------------------


def test_a_forged_message_from_a_device_without_a_session_asks_to_renew_once(net: Net) -> None:
    """Nothing authenticates such a message, so it costs at most one renewal per device.

    The engine answers a session message from a device it holds no session
    with by setting up a new one (it may have lost its state). A forger can
    trigger that, but not repeat it: a second forgery is refused outright. It
    shows the user nothing (no reset notice), since nothing authenticates it.
    """
    alice, bob = _established(net)
    carol = net.person("carol")
    inner = _open(bob, _envelope(net, alice, bob, "pretending"))
    forged = SessionEnvelope(
        carol.card.identity_id, carol.keys.device_key.public_key, None, inner.message
    )
    events = bob.engine.receive(_reseal(bob, forged), now=T0)
    assert [type(e) for e in events] == [Rejected]  # no unauthenticated "reset" notice
    assert bob.engine.needs_bundles() == [carol.address]
    assert _refused(bob, _reseal(bob, forged)) == {"NoSessionError"}
    assert bob.texts() == ["hello"]


# -- prekey bundles ----------------------------------------------------------------------------


def _waiting(net: Net) -> tuple[Device, Device, bytes]:
    """Alice has a message for Bob waiting for his bundle; the genuine bundle (unwrapped)."""
    alice, bob = net.person("alice"), net.person("bob")
    content = Content.text_message("waiting", now_ms=int(T0 * 1000))
    assert alice.engine.send(content, [bob.address], now=T0) == [bob.address]
    served = net.relay.take_bundle(bytes(bob.address.mailbox))
    return alice, bob, unwrap_bundle(served, **_place(bob))


def _place(device: Device) -> dict[str, bytes]:
    return {"device_key": device.keys.device_id, "mailbox": bytes(device.address.mailbox)}


def _wrapped(device: Device, plain: bytes) -> bytes:
    """``plain`` as the relay would serve it for ``device`` (anyone with its card can make it)."""
    return wrap_bundle(plain, **_place(device))


def _bundle_refused(alice: Device, device: Any, bundle: bytes, *, now: float = T0) -> None:
    before, needs = _snapshot(alice), alice.engine.needs_bundles()
    with pytest.raises(BundleRejectedError):
        alice.engine.bundle_received(device, bundle, now=now)
    assert _snapshot(alice) == before
    assert alice.engine.needs_bundles() == needs


def _good_bundle_delivers(net: Net, alice: Device, bob: Device, bundle: bytes) -> None:
    assert alice.engine.bundle_received(bob.address, bundle, now=T0) == 1
    assert alice.engine.needs_bundles() == []
    alice.flush()
    assert _texts(bob.fetch(now=T0)) == ["waiting"]


@pytest.mark.parametrize("field", ["sig", "spk", "pq", "opk", "ek", "exp"])
def test_a_bundle_with_a_bad_signature_is_refused(net: Net, field: str) -> None:
    alice, bob, bundle = _waiting(net)
    value = canonical_decode(bundle)
    if field == "exp":
        value["exp"] += 1
    else:
        raw = bytearray(value[field])
        raw[len(raw) // 2] ^= 0x01
        value[field] = bytes(raw)
    _bundle_refused(alice, bob.address, _wrapped(bob, canonical_encode(value)))
    _good_bundle_delivers(net, alice, bob, _wrapped(bob, bundle))


def test_an_expired_bundle_is_refused(net: Net) -> None:
    alice, bob, bundle = _waiting(net)
    expires = canonical_decode(bundle)["exp"]
    _bundle_refused(alice, bob.address, _wrapped(bob, bundle), now=expires)
    _bundle_refused(alice, bob.address, _wrapped(bob, bundle), now=expires + 86_400)
    _good_bundle_delivers(net, alice, bob, _wrapped(bob, bundle))


def test_a_bundle_of_another_device_or_identity_is_refused(net: Net) -> None:
    alice, bob, bundle = _waiting(net)
    carol = net.person("carol")
    phone = net.linked(bob)
    for other in (carol, phone):
        served = net.relay.take_bundle(bytes(other.address.mailbox))
        _bundle_refused(alice, bob.address, served)  # does not even open under bob's key
        # Rewrapped for bob (as a relay that knew bob's card could): the keys are not bob's.
        _bundle_refused(alice, bob.address, _wrapped(bob, unwrap_bundle(served, **_place(other))))
    _good_bundle_delivers(net, alice, bob, _wrapped(bob, bundle))


def test_a_bundle_altered_by_the_relay_does_not_open(net: Net) -> None:
    alice, bob, bundle = _waiting(net)
    served = bytearray(_wrapped(bob, bundle))
    for index in (0, 12, len(served) // 2, len(served) - 1):
        altered = bytearray(served)
        altered[index] ^= 0x01
        _bundle_refused(alice, bob.address, bytes(altered))
    _bundle_refused(alice, bob.address, bytes(served[:20]))
    _good_bundle_delivers(net, alice, bob, bytes(served))


def test_the_relay_cannot_read_whose_bundle_it_holds(net: Net) -> None:
    bob = net.person("bob")
    mailbox = bytes(bob.address.mailbox)
    for blob in [net.relay.last[mailbox], *net.relay.one_time[mailbox]]:
        assert bob.keys.device_id not in blob
        assert bytes(bob.card.identity_id) not in blob
        assert bob.address.exchange_key.to_bytes() not in blob


def test_garbage_bundles_are_refused(net: Net) -> None:
    alice, bob, bundle = _waiting(net)
    good = canonical_decode(bundle)

    @settings(max_examples=100, deadline=None)
    @given(
        data=st.binary(max_size=1500)
        | st.builds(
            lambda k, v: canonical_encode(good | {k: v}),
            st.sampled_from([*sorted(good), "extra"]),
            values | st.binary(min_size=31, max_size=33),
        )
    )
    def check(data: bytes) -> None:
        if data == bundle:
            return
        _bundle_refused(alice, bob.address, _wrapped(bob, data))
        _bundle_refused(alice, bob.address, data)

    check()
    _good_bundle_delivers(net, alice, bob, _wrapped(bob, bundle))
