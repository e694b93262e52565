"""Message content and the outer envelope: round-trips, sizes, and hostile bytes."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from dchat_core import IdentityId, MailboxId, MessageId, canonical_decode, canonical_encode
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    MAX_TEXT,
    Content,
    ContentError,
    EnvelopeRejectedError,
    MalformedEnvelopeError,
    MessageReceived,
    SealedEnvelope,
)
from dchat_messaging.lowlevel import MAX_CONTROL, MAX_ENVELOPE
from dchat_privacy import DEFAULT_BUCKETS, pad, unpad

if TYPE_CHECKING:
    from dchat_testing import EngineNet as Net

T0 = 1000.0
NOW_MS = 1_700_000_000_000
EMOJI = "\U0001f600"  # four bytes of UTF-8 per character: the largest text per character

kinds = st.from_regex(re.compile(r"[a-z][a-z0-9_.-]{0,31}"), fullmatch=True).filter(
    lambda k: k != "text"
)
# Every value the canonical encoding can carry, small.
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


def _big_card() -> ContactCard:
    """The largest card a person can issue: longest name in 4-byte characters, long relay."""
    relay = "r" * 200 + ".example:7400"
    return ContactCard.issue(Identity.generate(), name=EMOJI * 64, relay=relay)


# -- content: round-trips and sizes ------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(text=st.text(min_size=1, max_size=MAX_TEXT), ts=st.integers(0, 2**53))
@example(text=EMOJI * MAX_TEXT, ts=2**53)
@example(text="\x00", ts=0)
def test_text_round_trips_into_a_padding_bucket(text: str, ts: int) -> None:
    content = Content.text_message(text, now_ms=ts)
    padded = content.to_padded()
    assert len(padded) in DEFAULT_BUCKETS
    assert Content.from_padded(padded) == content


@settings(max_examples=100, deadline=None)
@given(kind=kinds, data=st.binary(max_size=MAX_CONTROL))
@example(kind="a", data=b"")
@example(kind="z" * 32, data=b"\xff" * MAX_CONTROL)
def test_control_round_trips_into_a_padding_bucket(kind: str, data: bytes) -> None:
    content = Content.control(kind, data, now_ms=NOW_MS)
    padded = content.to_padded()
    assert len(padded) in DEFAULT_BUCKETS
    assert Content.from_padded(padded) == content


def test_card_and_sent_copy_peer_round_trip() -> None:
    card = _big_card()
    content = replace(
        Content.text_message("hi", now_ms=NOW_MS), card=card, peer=IdentityId(b"\x07" * 32)
    )
    back = Content.from_padded(content.to_padded())
    assert back == content
    assert back.card == card


def test_longest_text_with_the_largest_card_still_fits() -> None:
    """The limits leave room: a maximal text carries the sender's card in a first message."""
    content = replace(Content.text_message(EMOJI * MAX_TEXT, now_ms=2**53), card=_big_card())
    padded = content.to_padded()
    assert len(padded) == DEFAULT_BUCKETS[-1]
    assert Content.from_padded(padded) == content


def test_content_too_large_for_the_largest_bucket_is_a_content_error() -> None:
    # Built past the constructor's checks: to_padded is the last line of defence.
    oversized = Content(MessageId.random(), NOW_MS, "text", EMOJI * (MAX_TEXT + 500))
    with pytest.raises(ContentError):
        oversized.to_padded()
    too_much_data = Content(MessageId.random(), NOW_MS, "doc.push", "", b"\0" * 65_536)
    with pytest.raises(ContentError):
        too_much_data.to_padded()


def _payload_size(content: Content) -> int:
    return len(unpad(content.to_padded()))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, MAX_TEXT))
def test_text_and_control_of_similar_size_pad_alike(n: int) -> None:
    text = Content.text_message("a" * n, now_ms=NOW_MS)
    control = Content.control("doc.push", b"a" * n, now_ms=NOW_MS)
    sizes = (_payload_size(text), _payload_size(control))
    assert abs(sizes[0] - sizes[1]) <= 16  # the framing differs by a few bytes only
    # Away from a bucket's edge, a relay (or anyone who sees sizes) cannot tell them apart.
    assume(all(abs(size + 4 - bucket) > 16 for size in sizes for bucket in DEFAULT_BUCKETS))
    assert len(text.to_padded()) == len(control.to_padded())


@pytest.mark.parametrize("text", ["", "x" * (MAX_TEXT + 1), EMOJI * (MAX_TEXT + 1)])
def test_empty_or_too_long_text_is_refused(text: str) -> None:
    with pytest.raises(ContentError):
        Content.text_message(text, now_ms=NOW_MS)


@pytest.mark.parametrize(
    "kind", ["", "text", "Doc", "1doc", "_doc", "doc push", "dé", "a" * 33, "doc/push", "doc\n"]
)
def test_bad_control_kinds_are_refused(kind: str) -> None:
    with pytest.raises(ContentError):
        Content.control(kind, b"", now_ms=NOW_MS)


def test_too_large_control_payload_is_refused() -> None:
    with pytest.raises(ContentError):
        Content.control("doc.push", b"\0" * (MAX_CONTROL + 1), now_ms=NOW_MS)


# -- content: garbage from a peer --------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2048))
@example(data=b"")
@example(data=bytes(256))
@example(data=bytes(65_536))
def test_garbage_content_bytes_are_rejected_opaquely(data: bytes) -> None:
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(data)


@settings(max_examples=200, deadline=None)
@given(value=values)
def test_padded_garbage_values_are_rejected_opaquely(value: Any) -> None:
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(pad(canonical_encode(value)))


def _valid_map(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"t": "text", "text": "hello"}
        if kind == "text"
        else {"t": "ctl", "kind": "doc.push", "data": b"payload"}
    )
    return {"v": 1, "mid": bytes(16), "ts": NOW_MS, "body": body, "peer": bytes(32)}


# What each field must be; a value outside this is garbage.
_TOP = {
    "v": lambda v: v == 1 and not isinstance(v, bool),
    "mid": lambda v: isinstance(v, bytes) and len(v) == 16,
    "ts": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53,
    "body": lambda v: isinstance(v, dict) and v.get("t") in ("text", "ctl"),
    "card": lambda v: False,  # no garbage is a signed card
    "peer": lambda v: isinstance(v, bytes) and len(v) == 32,
}
_BODY = {
    "t": lambda v: v in ("text", "ctl"),
    "text": lambda v: isinstance(v, str) and 0 < len(v) <= MAX_TEXT,
    "kind": lambda v: (
        isinstance(v, str)
        and re.fullmatch(r"[a-z][a-z0-9_.-]{0,31}", v) is not None
        and v != "text"
    ),
    "data": lambda v: isinstance(v, bytes),
}


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["text", "ctl"]),
    field=st.sampled_from(sorted(_TOP)),
    value=values | st.binary(min_size=15, max_size=33),
)
def test_garbage_in_any_content_field_is_rejected_opaquely(
    kind: str, field: str, value: Any
) -> None:
    assume(not _TOP[field](value))
    bad = _valid_map(kind) | {field: value}
    assert Content.from_padded(pad(canonical_encode(_valid_map(kind)))).kind  # the base opens
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(pad(canonical_encode(bad)))


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["text", "ctl"]),
    field=st.sampled_from(sorted(_BODY)),
    value=values | st.sampled_from(["Text", "text", "", "ctl", "a" * 33, "doc push"]),
)
def test_garbage_in_any_body_field_is_rejected_opaquely(kind: str, field: str, value: Any) -> None:
    base = _valid_map(kind)
    body = dict(base["body"])
    assume(field in body and not _BODY[field](value))
    body[field] = value
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(pad(canonical_encode(base | {"body": body})))


@pytest.mark.parametrize("kind", ["text", "ctl"])
@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"extra": 1},
        {"body": {"t": "text", "text": "hi", "kind": "doc.push"}},
        {"body": {"t": "ctl", "kind": "doc.push"}},
        {"body": {"t": "text"}},
        {"body": {"t": "ctl", "kind": "text", "data": b""}},
        {"card": b"not a card"},
    ],
)
def test_unknown_missing_or_mixed_fields_are_rejected(kind: str, change: dict[str, Any]) -> None:
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(pad(canonical_encode(_valid_map(kind) | change)))


@pytest.mark.parametrize("field", ["v", "mid", "ts", "body"])
def test_missing_required_field_is_rejected(field: str) -> None:
    value = _valid_map("text")
    del value[field]
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(pad(canonical_encode(value)))


def test_content_with_a_bad_padding_tail_is_rejected() -> None:
    padded = bytearray(Content.text_message("hi", now_ms=NOW_MS).to_padded())
    padded[-1] ^= 1
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(bytes(padded))


# -- the outer envelope ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512))
@example(data=b"")
@example(data=b"\xa0")  # an empty map
def test_random_bytes_are_a_malformed_envelope(data: bytes) -> None:
    with pytest.raises(MalformedEnvelopeError):
        SealedEnvelope.from_bytes(data)


@settings(max_examples=300, deadline=None)
@given(
    v=values | st.just(1),
    mb=values | st.binary(min_size=31, max_size=33),
    ct=values,
    extra=st.dictionaries(st.sampled_from(["x", "mailbox", "V"]), values, max_size=1),
)
def test_structured_garbage_envelopes_parse_only_when_well_formed(
    v: Any, mb: Any, ct: Any, extra: dict[str, Any]
) -> None:
    data = canonical_encode({"v": v, "mb": mb, "ct": ct} | extra)
    well_formed = (
        v == 1
        and not isinstance(v, bool)
        and isinstance(mb, bytes)
        and len(mb) == 32
        and isinstance(ct, bytes)
        and not extra
    )
    if well_formed:
        assert SealedEnvelope.from_bytes(data) == SealedEnvelope(MailboxId(mb), ct)
    else:
        with pytest.raises(MalformedEnvelopeError):
            SealedEnvelope.from_bytes(data)


def test_oversized_envelope_is_malformed() -> None:
    data = SealedEnvelope(MailboxId(bytes(32)), bytes(MAX_ENVELOPE)).to_bytes()
    with pytest.raises(MalformedEnvelopeError):
        SealedEnvelope.from_bytes(data)


def test_outer_bytes_leak_neither_text_nor_sender_nor_card(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    laptop = net.linked(alice)
    secret = "meet me at the old mill at nine"
    alice.send([bob.address], secret, now=T0, copies=[laptop.address])  # first: init + card
    bob.fetch(now=T0)
    bob.send([alice.address], "ok", now=T0)
    alice.fetch(now=T0)
    alice.send([bob.address], secret, now=T0 + 1)  # later: ratchet only
    assert len(net.relay.recorded) == 4
    card = alice.card.to_bytes()
    needles = {
        "text": secret.encode(),
        "identity id": bytes(alice.card.identity_id),
        "device key": alice.keys.device_id,
        "exchange key": alice.address.exchange_key.to_bytes(),
        "linked device key": laptop.keys.device_id,
        "card name": b"alice",
        "card": card,
        "card signature": alice.card.signature,
    }
    for raw in net.relay.recorded:
        mailbox = bytes(SealedEnvelope.from_bytes(raw).mailbox)
        assert mailbox in raw  # the search finds what is there
        for what, needle in needles.items():
            assert needle not in raw, what
        # Also not in the part a relay can parse.
        assert canonical_decode(raw).keys() == {"v", "mb", "ct"}


def test_longest_first_message_with_card_goes_through(net: Net) -> None:
    alice, bob = net.person("a" * 64), net.person("bob")
    alice.send([bob.address], EMOJI * MAX_TEXT, now=T0)
    (raw,) = net.relay.recorded
    assert len(raw) <= MAX_ENVELOPE
    (event,) = bob.fetch(now=T0)
    assert isinstance(event, MessageReceived)
    assert event.text == EMOJI * MAX_TEXT
    assert event.sender_card == alice.card


@given(st.binary(max_size=200))
@example(SealedEnvelope(MailboxId(b"m" * 32), b"sealed").to_bytes())
def test_mailbox_of_names_the_mailbox_of_well_formed_bytes_and_none_else(data: bytes) -> None:
    try:
        expected: bytes | None = bytes(SealedEnvelope.from_bytes(data).mailbox)
    except MalformedEnvelopeError:
        expected = None
    assert SealedEnvelope.mailbox_of(data) == expected
    if data == SealedEnvelope(MailboxId(b"m" * 32), b"sealed").to_bytes():
        assert expected == b"m" * 32


@given(data=st.binary(max_size=200), box=st.binary(min_size=32, max_size=32))
def test_mailbox_of_names_the_mailbox_or_none_for_anything_malformed(
    data: bytes, box: bytes
) -> None:
    envelope = SealedEnvelope(MailboxId(box), data).to_bytes()
    assert SealedEnvelope.mailbox_of(envelope) == box
    assert SealedEnvelope.mailbox_of(envelope[:-1]) is None  # truncated: malformed, no raise
    found = SealedEnvelope.mailbox_of(data)  # arbitrary bytes: a mailbox or None, never a raise
    assert found is None or len(found) == 32
