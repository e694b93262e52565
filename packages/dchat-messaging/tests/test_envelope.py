"""Sealed envelopes: what a relay sees, and what a recipient accepts."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import MailboxId, MessageId, NodeId, canonical_decode, canonical_encode
from dchat_crypto import seal
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    MAX_ENVELOPE,
    MAX_TEXT,
    ContentError,
    EnvelopeRejectedError,
    MalformedEnvelopeError,
    SealedEnvelope,
    open_envelope,
    seal_message,
)
from dchat_privacy import DEFAULT_BUCKETS, pad

NOW_MS = 1_767_225_600_000
SEAL_OVERHEAD = 1 + 32 + 16  # version, ephemeral key, tag (see dchat_crypto.seal)
# Wire constants from the module docstring of dchat_messaging._envelope.
SEAL_CONTEXT = b"dchat-envelope-v1\x00"
SIG_DOMAIN = b"dchat-msg-v1\x00"


@dataclass(frozen=True)
class Person:
    identity: Identity
    card: ContactCard


@functools.cache
def _person(name: str) -> Person:
    identity = Identity.generate()
    return Person(identity, ContactCard.issue(identity, name=name, relay="relay.example:8471"))


def alice() -> Person:
    return _person("alice")


def bob() -> Person:
    return _person("bob")


def carol() -> Person:
    return _person("carol")


@functools.cache
def _sealed_hello() -> SealedEnvelope:
    return seal_message(alice().identity, bob().card, "hello bob", now_ms=NOW_MS)[1]


def _inner(
    *,
    signer: Identity,
    sender: Identity | None = None,
    to: Person | None = None,
    text: str = "hi",
    card: bytes | None = None,
) -> dict[str, Any]:
    """A signed inner message, built by hand from the documented wire format."""
    inner: dict[str, Any] = {
        "v": 1,
        "from": (sender or signer).signing_key.public_key.to_bytes(),
        "to": bytes((to or bob()).identity.identity_id),
        "mid": bytes(MessageId.random()),
        "ts": NOW_MS,
        "body": {"t": "text", "text": text},
    }
    if card is not None:
        inner["card"] = card
    inner["sig"] = signer.signing_key.sign(SIG_DOMAIN + canonical_encode(inner))
    return inner


def _seal_inner(inner: dict[str, Any], to: Person | None = None) -> SealedEnvelope:
    card = (to or bob()).card
    sealed = seal(
        card.encryption_key,
        pad(canonical_encode(inner)),
        context=SEAL_CONTEXT + bytes(card.mailbox),
    )
    return SealedEnvelope(card.mailbox, sealed)


# -- round trip --------------------------------------------------------------


@pytest.mark.parametrize("with_card", [False, True])
def test_seal_and_open_round_trip(with_card: bool) -> None:
    sender_card = alice().card if with_card else None
    mid, envelope = seal_message(
        alice().identity, bob().card, "hello bob 👋", now_ms=NOW_MS, sender_card=sender_card
    )
    opened = open_envelope(bob().identity, SealedEnvelope.from_bytes(envelope.to_bytes()))
    assert opened.text == "hello bob 👋"
    assert opened.message_id == mid
    assert opened.sender == alice().identity.identity_id
    assert opened.recipient == bob().identity.identity_id
    assert opened.sent_at_ms == NOW_MS
    assert opened.sender_card == sender_card


def test_caller_chosen_message_id_is_kept() -> None:
    chosen = MessageId.random()
    mid, envelope = seal_message(
        alice().identity, bob().card, "x", now_ms=NOW_MS, message_id=chosen
    )
    assert mid == chosen
    assert open_envelope(bob().identity, envelope).message_id == chosen


def test_longest_text_round_trips() -> None:
    text = "\U0001d11e" * MAX_TEXT  # 4 UTF-8 bytes each: the largest legal body
    _, envelope = seal_message(
        alice().identity, bob().card, text, now_ms=NOW_MS, sender_card=alice().card
    )
    wire = envelope.to_bytes()
    assert len(wire) <= MAX_ENVELOPE
    assert open_envelope(bob().identity, SealedEnvelope.from_bytes(wire)).text == text


def test_hand_built_envelope_is_accepted() -> None:
    # The control for the forgery tests below: the helpers build valid envelopes.
    envelope = _seal_inner(_inner(signer=alice().identity, card=alice().card.to_bytes()))
    opened = open_envelope(bob().identity, envelope)
    assert opened.sender == alice().identity.identity_id
    assert opened.sender_card == alice().card


# -- what the relay sees -----------------------------------------------------


def test_outer_envelope_shows_only_the_mailbox_and_ciphertext() -> None:
    _, envelope = seal_message(alice().identity, bob().card, "x", now_ms=NOW_MS)
    outer = canonical_decode(envelope.to_bytes())
    assert set(outer) == {"v", "mb", "ct"}
    assert outer["v"] == 1
    assert outer["mb"] == bytes(bob().identity.mailbox_id)


def test_outer_bytes_leak_neither_text_nor_sender() -> None:
    text = "the eagle lands at midnight"
    _, envelope = seal_message(
        alice().identity, bob().card, text, now_ms=NOW_MS, sender_card=alice().card
    )
    wire = envelope.to_bytes()
    a = alice()
    secrets = {
        "text": text.encode(),
        "identity key": a.identity.signing_key.public_key.to_bytes(),
        "identity id": bytes(a.identity.identity_id),
        "encryption key": a.identity.encryption_key.public_key.to_bytes(),
        "mailbox": bytes(a.identity.mailbox_id),
        "card": a.card.to_bytes(),
        "card name+relay": b"alice",
        "recipient id": bytes(bob().identity.identity_id),
        "timestamp": NOW_MS.to_bytes(8, "big"),
    }
    for what, secret in secrets.items():
        assert secret not in wire, what


def test_two_seals_of_the_same_message_differ() -> None:
    mid = MessageId.random()
    first = seal_message(alice().identity, bob().card, "same", now_ms=NOW_MS, message_id=mid)
    second = seal_message(alice().identity, bob().card, "same", now_ms=NOW_MS, message_id=mid)
    assert first[1].ciphertext != second[1].ciphertext
    assert first[1].ciphertext[1:33] != second[1].ciphertext[1:33]  # fresh ephemeral keys


def _body_size(text: str, *, with_card: bool) -> int:
    card = alice().card if with_card else None
    _, envelope = seal_message(alice().identity, bob().card, text, now_ms=NOW_MS, sender_card=card)
    return len(envelope.ciphertext) - SEAL_OVERHEAD


@pytest.mark.parametrize("length", [1, 10, 40, 100, 200, 700, 3000, 15_000])
@pytest.mark.parametrize("with_card", [False, True])
def test_sealed_sizes_are_padding_buckets(length: int, with_card: bool) -> None:
    assert _body_size("x" * length, with_card=with_card) in DEFAULT_BUCKETS


@pytest.mark.parametrize(
    ("short", "long", "with_card"),
    [(1, 200, True), (1, 40, False), (200, 700, False), (1000, 3000, False)],
)
def test_texts_of_different_lengths_share_a_bucket(short: int, long: int, with_card: bool) -> None:
    assert _body_size("x" * short, with_card=with_card) == _body_size(
        "y" * long, with_card=with_card
    )


# -- what the recipient refuses ----------------------------------------------


def test_wrong_recipient_cannot_open() -> None:
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(carol().identity, _sealed_hello())
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(alice().identity, _sealed_hello())


def test_retargeted_mailbox_is_rejected() -> None:
    envelope = _sealed_hello()
    assert open_envelope(bob().identity, envelope).text == "hello bob"
    for mailbox in (carol().identity.mailbox_id, MailboxId(bytes(32))):
        moved = SealedEnvelope(mailbox, envelope.ciphertext)
        with pytest.raises(EnvelopeRejectedError):
            open_envelope(bob().identity, moved)
    # The same through the wire form: edit "mb" and re-encode.
    outer = canonical_decode(envelope.to_bytes())
    outer["mb"] = bytes(carol().identity.mailbox_id)
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, SealedEnvelope.from_bytes(canonical_encode(outer)))


def test_every_flipped_ciphertext_byte_is_rejected() -> None:
    envelope = _sealed_hello()
    for position in range(len(envelope.ciphertext)):
        tampered = bytearray(envelope.ciphertext)
        tampered[position] ^= 0x01
        with pytest.raises(EnvelopeRejectedError):
            open_envelope(bob().identity, SealedEnvelope(envelope.mailbox, bytes(tampered)))


@settings(max_examples=200)
@given(st.data())
def test_any_ciphertext_corruption_is_rejected(data: st.DataObject) -> None:
    ct = _sealed_hello().ciphertext
    position = data.draw(st.integers(0, len(ct) - 1))
    mask = data.draw(st.integers(1, 255))
    tampered = ct[:position] + bytes([ct[position] ^ mask]) + ct[position + 1 :]
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, SealedEnvelope(_sealed_hello().mailbox, tampered))


@pytest.mark.parametrize("cut", [0, 1, 33, 48, 49, 100, -1])
def test_truncated_ciphertext_is_rejected(cut: int) -> None:
    envelope = _sealed_hello()
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, SealedEnvelope(envelope.mailbox, envelope.ciphertext[:cut]))


def test_message_signed_by_someone_else_claiming_alice_is_rejected() -> None:
    forged = _inner(signer=carol().identity, sender=alice().identity)
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, _seal_inner(forged))


def test_message_addressed_to_someone_else_is_rejected() -> None:
    # Alice really wrote to Carol; Carol (or anyone) re-seals it to Bob.
    to_carol = _inner(signer=alice().identity, to=carol())
    assert open_envelope(carol().identity, _seal_inner(to_carol, to=carol())).text == "hi"
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, _seal_inner(to_carol, to=bob()))


def test_sender_card_of_another_identity_is_rejected() -> None:
    inner = _inner(signer=alice().identity, card=carol().card.to_bytes())
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, _seal_inner(inner))
    # The same mistake made through the public API is rejected too.
    _, envelope = seal_message(
        alice().identity, bob().card, "hi", now_ms=NOW_MS, sender_card=carol().card
    )
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, envelope)


def test_forged_sender_card_is_rejected() -> None:
    raw = bytearray(alice().card.to_bytes())
    raw[-1] ^= 0x01  # breaks the card's own signature
    inner = _inner(signer=alice().identity, card=bytes(raw))
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, _seal_inner(inner))


def test_altered_signed_field_is_rejected() -> None:
    inner = _inner(signer=alice().identity)
    inner["ts"] = NOW_MS + 1
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, _seal_inner(inner))


def test_unsigned_inner_fields_are_rejected() -> None:
    inner = _inner(signer=alice().identity)
    inner.pop("sig")
    inner["sig"] = alice().identity.signing_key.sign(SIG_DOMAIN + canonical_encode(inner))
    inner["extra"] = 1  # not covered by the signature and not a known field
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, _seal_inner(inner))


@pytest.mark.parametrize("context", [b"", b"dchat-envelope-v1\x00", b"other"])
def test_box_sealed_under_another_context_is_rejected(context: bytes) -> None:
    inner = _inner(signer=alice().identity)
    sealed = seal(bob().card.encryption_key, pad(canonical_encode(inner)), context=context)
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, SealedEnvelope(bob().card.mailbox, sealed))


def test_unpadded_plaintext_is_rejected() -> None:
    inner = _inner(signer=alice().identity)
    card = bob().card
    sealed = seal(
        card.encryption_key, canonical_encode(inner), context=SEAL_CONTEXT + bytes(card.mailbox)
    )
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, SealedEnvelope(card.mailbox, sealed))


def test_rejections_all_look_the_same() -> None:
    forged = _seal_inner(_inner(signer=carol().identity, sender=alice().identity))
    wrong_to = _seal_inner(_inner(signer=alice().identity, to=carol()))
    messages = set()
    for envelope, who in [(_sealed_hello(), carol()), (forged, bob()), (wrong_to, bob())]:
        with pytest.raises(EnvelopeRejectedError) as info:
            open_envelope(who.identity, envelope)
        messages.add(str(info.value))
    assert messages == {"envelope rejected"}


# -- content limits ----------------------------------------------------------


@pytest.mark.parametrize("text", ["", "x" * (MAX_TEXT + 1)])
def test_empty_or_too_long_text_is_a_content_error(text: str) -> None:
    with pytest.raises(ContentError):
        seal_message(alice().identity, bob().card, text, now_ms=NOW_MS)


def test_max_text_is_accepted() -> None:
    _, envelope = seal_message(alice().identity, bob().card, "x" * MAX_TEXT, now_ms=NOW_MS)
    assert len(open_envelope(bob().identity, envelope).text) == MAX_TEXT


def test_longest_text_with_the_largest_card_is_a_content_error() -> None:
    # Within MAX_TEXT characters, but 4-byte characters plus a maximal sender card
    # overflow the largest padding bucket: the caller must get a ContentError.
    big_card = ContactCard.issue(
        alice().identity,
        name="\U0001d11e" * 64,
        relay="\U0001d11e" * 255,
        relay_node=NodeId.derive(b"n"),
    )
    with pytest.raises(ContentError):
        seal_message(
            alice().identity,
            bob().card,
            "\U0001d11e" * MAX_TEXT,
            now_ms=NOW_MS,
            sender_card=big_card,
        )


# -- parsing untrusted outer bytes -------------------------------------------


def test_outer_round_trip() -> None:
    envelope = _sealed_hello()
    assert SealedEnvelope.from_bytes(envelope.to_bytes()) == envelope


_GOOD = {"v": 1, "mb": bytes(32), "ct": b"ciphertext"}


@pytest.mark.parametrize(
    "bad",
    [
        {**_GOOD, "v": 2},
        {**_GOOD, "v": 0},
        {**_GOOD, "mb": bytes(31)},
        {**_GOOD, "mb": bytes(33)},
        {**_GOOD, "mb": "mailbox"},
        {**_GOOD, "ct": "ciphertext"},
        {**_GOOD, "extra": 1},
        {"v": 1, "mb": bytes(32)},
        {"v": 1, "ct": b""},
        [1, bytes(32), b""],
        b"",
    ],
)
def test_malformed_outer_is_rejected(bad: object) -> None:
    with pytest.raises(MalformedEnvelopeError):
        SealedEnvelope.from_bytes(canonical_encode(bad))


def test_trailing_and_oversized_outer_is_rejected() -> None:
    good = canonical_encode(_GOOD)
    assert SealedEnvelope.from_bytes(good).ciphertext == b"ciphertext"
    with pytest.raises(MalformedEnvelopeError):
        SealedEnvelope.from_bytes(good + b"\x00")
    with pytest.raises(MalformedEnvelopeError):
        SealedEnvelope.from_bytes(canonical_encode({**_GOOD, "ct": bytes(MAX_ENVELOPE)}))
    with pytest.raises(MalformedEnvelopeError):
        SealedEnvelope.from_bytes(b"")


@settings(max_examples=500)
@given(st.binary(max_size=500))
def test_random_bytes_only_raise_malformed_envelope_error(data: bytes) -> None:
    try:
        envelope = SealedEnvelope.from_bytes(data)
    except MalformedEnvelopeError:
        return
    assert envelope.to_bytes() == data  # accepted only if it is canonical


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    st.binary(max_size=40),
    st.text(max_size=10),
    st.lists(st.integers(0, 3), max_size=3),
)


@settings(max_examples=500)
@given(st.dictionaries(st.sampled_from(["v", "mb", "ct", "x"]), _VALUES))
def test_structured_garbage_only_raises_malformed_envelope_error(fields: dict[str, Any]) -> None:
    data = canonical_encode(fields)
    try:
        envelope = SealedEnvelope.from_bytes(data)
    except MalformedEnvelopeError:
        return
    assert envelope.to_bytes() == data
    assert fields["v"] == 1
    assert len(fields["mb"]) == 32


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_random_ciphertext_only_raises_envelope_rejected_error(ct: bytes) -> None:
    with pytest.raises(EnvelopeRejectedError):
        open_envelope(bob().identity, SealedEnvelope(bob().identity.mailbox_id, ct))
