"""Control payloads: typed node-to-node content that travels exactly like text."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_crypto import seal
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    MAX_CONTROL,
    ContentError,
    EnvelopeRejectedError,
    SealedEnvelope,
    open_envelope,
    seal_control,
    seal_message,
)
from dchat_privacy import DEFAULT_BUCKETS, pad

NOW_MS = 1_767_225_600_000
SEAL_CONTEXT = b"dchat-envelope-v1\x00"
SIG_DOMAIN = b"dchat-msg-v1\x00"
SEAL_OVERHEAD = 1 + 32 + 16  # version, ephemeral key, tag


@functools.cache
def _pair() -> tuple[Identity, Identity, ContactCard]:
    sender, recipient = Identity.generate(), Identity.generate()
    return sender, recipient, ContactCard.issue(recipient, name="bob", relay="relay.example:1")


def test_control_round_trip() -> None:
    sender, recipient, card = _pair()
    mid, envelope = seal_control(sender, card, "guardian.share", b"\x00\x01share", now_ms=NOW_MS)
    opened = open_envelope(recipient, SealedEnvelope.from_bytes(envelope.to_bytes()))
    assert opened.message_id == mid
    assert (opened.kind, opened.data, opened.text) == ("guardian.share", b"\x00\x01share", "")
    assert opened.sender == ContactCard.issue(sender, name="a", relay="r:1").identity_id


def test_text_messages_report_kind_text() -> None:
    sender, recipient, card = _pair()
    _, envelope = seal_message(sender, card, "hello", now_ms=NOW_MS)
    opened = open_envelope(recipient, envelope)
    assert (opened.kind, opened.data, opened.text) == ("text", b"", "hello")


def test_control_and_text_of_similar_size_look_alike_to_a_relay() -> None:
    sender, _, card = _pair()
    _, text = seal_message(sender, card, "x" * 500, now_ms=NOW_MS)
    _, ctl = seal_control(sender, card, "sync.op", b"x" * 480, now_ms=NOW_MS)
    assert len(text.to_bytes()) == len(ctl.to_bytes())
    assert len(ctl.ciphertext) - SEAL_OVERHEAD in DEFAULT_BUCKETS


@pytest.mark.parametrize("kind", ["", "text", "Upper", "9lives", "a" * 33, "sp ace", "é"])
def test_bad_kinds_are_refused(kind: str) -> None:
    sender, _, card = _pair()
    with pytest.raises(ContentError):
        seal_control(sender, card, kind, b"", now_ms=NOW_MS)


def test_oversized_payload_is_refused() -> None:
    sender, _, card = _pair()
    with pytest.raises(ContentError):
        seal_control(sender, card, "big", b"\x00" * (MAX_CONTROL + 1), now_ms=NOW_MS)
    seal_control(sender, card, "big", b"\x00" * MAX_CONTROL, now_ms=NOW_MS)


def _forge(body: object) -> SealedEnvelope:
    """A correctly signed and sealed message whose body is ``body``."""
    sender, _, card = _pair()
    inner: dict[str, object] = {
        "v": 1,
        "from": sender.signing_key.public_key.to_bytes(),
        "to": bytes(card.identity_id),
        "mid": b"\x01" * 16,
        "ts": NOW_MS,
        "body": body,
    }
    inner["sig"] = sender.signing_key.sign(SIG_DOMAIN + canonical_encode(inner))
    sealed = seal(
        card.encryption_key,
        pad(canonical_encode(inner)),
        context=SEAL_CONTEXT + bytes(card.mailbox),
    )
    return SealedEnvelope(card.mailbox, sealed)


@pytest.mark.parametrize(
    "body",
    [
        {"t": "ctl", "kind": "text", "data": b""},
        {"t": "ctl", "kind": "BAD", "data": b""},
        {"t": "ctl", "kind": "ok", "data": "not bytes"},
        {"t": "ctl", "kind": "ok"},
        {"t": "ctl", "kind": "ok", "data": b"", "text": "both"},
        {"t": "text", "text": "hi", "data": b""},
        {"t": "video", "text": "hi"},
    ],
)
def test_signed_but_malformed_bodies_are_rejected_opaquely(body: object) -> None:
    _, recipient, _ = _pair()
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(recipient, _forge(body))


def test_the_signature_covers_the_kind() -> None:
    sender, recipient, card = _pair()
    envelope = _forge({"t": "ctl", "kind": "approve", "data": b"x"})
    # Sign an approval, then swap the kind to a veto without re-signing.
    inner: dict[str, object] = {
        "v": 1,
        "from": sender.signing_key.public_key.to_bytes(),
        "to": bytes(card.identity_id),
        "mid": b"\x01" * 16,
        "ts": NOW_MS,
        "body": {"t": "ctl", "kind": "approve", "data": b"x"},
    }
    inner["sig"] = sender.signing_key.sign(SIG_DOMAIN + canonical_encode(inner))
    inner["body"] = {"t": "ctl", "kind": "veto", "data": b"x"}
    tampered = seal(
        card.encryption_key,
        pad(canonical_encode(inner)),
        context=SEAL_CONTEXT + bytes(card.mailbox),
    )
    assert open_envelope(recipient, envelope).kind == "approve"
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(recipient, SealedEnvelope(card.mailbox, tampered))


@settings(max_examples=50, deadline=None)
@given(kind=st.from_regex(r"[a-z][a-z0-9_.-]{0,31}", fullmatch=True), data=st.binary(max_size=512))
def test_any_valid_control_round_trips(kind: str, data: bytes) -> None:
    if kind == "text":
        return
    sender, recipient, card = _pair()
    _, envelope = seal_control(sender, card, kind, data, now_ms=NOW_MS)
    opened = open_envelope(recipient, envelope)
    assert (opened.kind, opened.data) == (kind, data)
