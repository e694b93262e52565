"""A wallet's channel book and the channel texts, without a chain: rules and hostile input."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain.lowlevel import (
    ChannelBook,
    ChannelConsent,
    ChannelError,
    ChannelOffer,
    ChannelState,
    ChannelUpdate,
    decode_channel_text,
    encode_channel_text,
)
from dchat_core import DecodeError, canonical_encode
from dchat_crypto import SigningKey
from dchat_testing import hostile_bytes

ALICE, BOB = SigningKey(b"\x31" * 32), SigningKey(b"\x32" * 32)


def _opened() -> tuple[ChannelBook, ChannelBook, bytes]:
    alice, bob = ChannelBook(ALICE), ChannelBook(BOB)
    offer = alice.offer("chain", bob.me, 100, 50, 7)
    consent = bob.consent(decode_channel_text(encode_channel_text(offer)))  # type: ignore[arg-type]
    alice.take_consent(consent)
    for book in (alice, bob):
        book.get(offer.chan).status = "open"
    return alice, bob, offer.chan


def test_payments_round_trip_and_the_book_persists() -> None:
    alice, bob, chan = _opened()
    update = alice.pay(chan, 30)
    signed = bob.accept(decode_channel_text(encode_channel_text(update)))  # type: ignore[arg-type]
    assert signed.complete
    alice.accept(signed)
    assert alice.get(chan).full == bob.get(chan).full == signed
    assert bob.get(chan).balances() == (70, 80)
    assert bob.get(chan).seq() == 1
    again = ChannelBook.from_bytes(bob.to_bytes(), BOB)
    assert again.get(chan).full == signed
    assert again.to_bytes() == bob.to_bytes()
    with pytest.raises(ChannelError, match="another wallet"):
        ChannelBook.from_bytes(bob.to_bytes(), ALICE)


def test_a_final_state_closes_the_channel_to_payments() -> None:
    alice, bob, chan = _opened()
    final = bob.pay(chan, 0, final=True)
    alice.accept(final)
    with pytest.raises(ChannelError, match="final state"):
        bob.pay(chan, 1)
    after = replace(final.state, seq=final.state.seq + 1, final=False)
    with pytest.raises(ChannelError, match="final state was signed already"):
        alice.accept(ChannelUpdate(after, None, after.sign(BOB)))
    assert alice.get(chan).full is not None
    assert alice.get(chan).full.state.final


def test_accept_refuses_replays_forgeries_and_thefts() -> None:
    alice, bob, chan = _opened()
    first = alice.pay(chan, 10)
    bob.accept(first)
    with pytest.raises(ChannelError, match="replay"):
        bob.accept(first)
    # A state alice signed that moves funds from bob to alice: bob never countersigns.
    theft = replace(first.state, seq=5, balance_a=110, balance_b=40)
    with pytest.raises(ChannelError, match="takes funds"):
        bob.accept(ChannelUpdate(theft, theft.sign(ALICE), None))
    overspent = replace(first.state, seq=6, balance_b=1000)
    with pytest.raises(ChannelError, match="add up"):
        bob.accept(ChannelUpdate(overspent, overspent.sign(ALICE), None))
    stranger = SigningKey.generate()
    newer = replace(first.state, seq=7)
    with pytest.raises(ChannelError, match="does not verify"):
        bob.accept(ChannelUpdate(newer, newer.sign(stranger), None))
    with pytest.raises(ChannelError, match="lacks"):
        bob.accept(ChannelUpdate(newer, None, None))
    with pytest.raises(ChannelError, match="does not verify"):  # "signed here before": forged
        bob.accept(ChannelUpdate(newer, newer.sign(ALICE), newer.sign(stranger)))
    with pytest.raises(ChannelError, match="no such channel"):
        bob.accept(replace(first, state=replace(first.state, channel=bytes(32))))
    assert bob.get(chan).seq() == 1  # no refusal changed the book


def test_payments_beyond_the_balance_or_out_of_turn_are_refused() -> None:
    alice, bob, chan = _opened()
    with pytest.raises(ChannelError, match="does not hold"):
        bob.pay(chan, 51)
    with pytest.raises(ChannelError, match="negative"):
        bob.pay(chan, -1)
    pending = ChannelBook(ALICE)
    offer = pending.offer("chain", bob.me, 5, 5, 1)
    with pytest.raises(ChannelError, match="not open"):
        pending.pay(offer.chan, 1)
    with pytest.raises(ChannelError, match="is offered"):
        pending.accept(ChannelUpdate(ChannelState(offer.chan, 1, 5, 5), None, None))
    with pytest.raises(ChannelError, match="no such channel"):
        alice.pay(bytes(32), 1)


def test_offers_and_consents_are_checked() -> None:
    alice, bob, chan = _opened()
    with pytest.raises(ChannelError, match="another party"):
        alice.offer("chain", alice.me, 1, 0, 0)
    with pytest.raises(ChannelError, match="deposit"):
        alice.offer("chain", bob.me, 0, 0, 0)
    someone = SigningKey.generate().public_key.to_bytes()
    with pytest.raises(ChannelError, match="not addressed"):
        alice.consent(ChannelOffer("chain", bob.me, someone, 1, 0, 0))
    with pytest.raises(ChannelError, match="no open offer"):
        alice.take_consent(ChannelConsent(chan, bytes(64)))  # opened already
    second = alice.offer("chain", bob.me, 5, 0, 9)
    with pytest.raises(ChannelError, match="does not verify"):
        alice.take_consent(ChannelConsent(second.chan, ALICE.sign(second.terms())))


def test_a_replayed_offer_does_not_reset_a_running_channel() -> None:
    alice, bob, chan = _opened()
    bob.accept(alice.pay(chan, 10))
    with pytest.raises(ChannelError, match="open already"):
        bob.consent(alice.get(chan).offer)
    assert bob.get(chan).seq() == 1
    again = alice.offer("chain", bob.me, 5, 0, 11)
    assert alice.offer("chain", bob.me, 5, 0, 11) == again  # the same terms: idempotent
    consent = bob.consent(again)
    assert bob.consent(again) == consent


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("hello", "not a channel message"),
        ("dchat-chan:" + "A" * 3000, "longer than"),
        ("dchat-chan:!!!", "base64url"),
        ("dchat-chan:" + base64.urlsafe_b64encode(b"\xff").decode(), "malformed"),
        (
            "dchat-chan:" + base64.urlsafe_b64encode(canonical_encode({"t": "x"})).decode(),
            "unknown",
        ),
        (
            "dchat-chan:"
            + base64.urlsafe_b64encode(canonical_encode({"t": "consent", "chan": b"x"})).decode(),
            "malformed",
        ),
    ],
)
def test_bad_texts_are_typed_errors(text: str, match: str) -> None:
    with pytest.raises(ChannelError, match=match):
        decode_channel_text(text)


def _text(obj: object) -> str:
    return "dchat-chan:" + base64.urlsafe_b64encode(canonical_encode(obj)).decode().rstrip("=")


KEYS = st.binary(min_size=32, max_size=32)
SIGS = st.none() | st.binary(min_size=64, max_size=64)
AMOUNTS = st.integers(0, 2**63 - 1)
OFFERS = st.builds(
    ChannelOffer, st.text(max_size=64), KEYS, KEYS, AMOUNTS, AMOUNTS, AMOUNTS
).filter(lambda o: o.a != o.b and o.da + o.db > 0)
STATES = st.builds(ChannelState, KEYS, AMOUNTS, AMOUNTS, AMOUNTS, st.booleans())
MESSAGES = (
    OFFERS
    | st.builds(ChannelConsent, KEYS, st.binary(min_size=64, max_size=64))
    | st.builds(ChannelUpdate, STATES, SIGS, SIGS)
)


@settings(max_examples=200, deadline=None)
@given(MESSAGES)
def test_every_message_round_trips(message: object) -> None:
    assert decode_channel_text(encode_channel_text(message)) == message  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=200).map(lambda b: _text(b)))
def test_the_text_decoder_is_total(text: str) -> None:
    with contextlib.suppress(ChannelError):
        decode_channel_text("dchat-chan:" + text if not text.startswith("dchat") else text)


FIELD = st.none() | st.booleans() | st.integers(-5, 2**64 - 1) | st.binary(max_size=70) | st.text()


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["offer", "consent", "update", "other"]),
    st.dictionaries(
        st.sampled_from(["chain", "a", "b", "da", "db", "n", "chan", "sig", "seq", "ba", "bb"])
        | st.sampled_from(["final", "sig_a", "sig_b", "extra"]),
        FIELD,
    ),
)
def test_decoded_maps_are_typed_errors_or_valid_messages(kind: str, fields: dict) -> None:
    try:
        message = decode_channel_text(_text({"t": kind, **fields}))
    except ChannelError:
        return
    assert decode_channel_text(encode_channel_text(message)) == message


@settings(max_examples=100, deadline=None)
@given(hostile_bytes(max_size=300))
def test_the_book_decoder_is_total(data: bytes) -> None:
    with contextlib.suppress(ChannelError):
        ChannelBook.from_bytes(data, ALICE)


def test_a_book_holding_the_wrong_message_types_is_refused() -> None:
    alice, _, _ = _opened()
    content = {
        "v": 1,
        "kind": "channels",
        "owner": alice.me,
        "channels": [
            {
                "offer": ChannelConsent(bytes(32), bytes(64)).to_obj(),
                "status": "open",
                "consent": None,
                "latest": None,
                "full": None,
            }
        ],
    }
    with pytest.raises(ChannelError, match="wrong message types"):
        ChannelBook.from_bytes(canonical_encode(content), ALICE)
    with pytest.raises((ChannelError, DecodeError)):
        ChannelBook.from_bytes(canonical_encode({**content, "kind": "wallet"}), ALICE)
