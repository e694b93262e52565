"""The wallet's channel book and channel texts, without a chain: rules and bad input."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest

from dchat_core import canonical_encode
from dchat_crypto import KdfParams, SigningKey
from dchat_node import ChannelError, ConfigError
from dchat_node._channel_book import ChannelBook
from dchat_node._channel_messages import Consent, Offer, Update, decode_text, encode_text
from dchat_node._validator_keys import write_wallet

SECRET = b"channel book passphrase"


def _book(tmp_path: Path, name: str) -> ChannelBook:
    key = SigningKey.generate()
    wallet = tmp_path / f"{name}.wallet"
    write_wallet(wallet, key, SECRET, kdf=KdfParams.TESTING)
    return ChannelBook.load(tmp_path / f"{name}.channels", key, SECRET, wallet)


def _opened(tmp_path: Path) -> tuple[ChannelBook, ChannelBook, bytes]:
    alice, bob = _book(tmp_path, "alice"), _book(tmp_path, "bob")
    offer = alice.offer("chain", bob.me, 100, 50, 7)
    consent = bob.consent(decode_text(encode_text(offer)))  # type: ignore[arg-type]
    alice.take_consent(consent)
    for book in (alice, bob):
        book.get(offer.chan).status = "open"
    return alice, bob, offer.chan


def test_payments_round_trip_and_persist_encrypted(tmp_path: Path) -> None:
    alice, bob, chan = _opened(tmp_path)
    update = alice.pay(chan, 30)
    signed = bob.accept(decode_text(encode_text(update)))  # type: ignore[arg-type]
    assert signed.complete
    alice.accept(signed)
    assert alice.get(chan).full == bob.get(chan).full
    assert bob.get(chan).balances() == (70, 80)
    bob.save()
    blob = bob.path.read_bytes()
    assert chan not in blob
    assert bob.me not in blob
    key = bob._key
    again = ChannelBook.load(bob.path, key, SECRET, tmp_path / "bob.wallet")
    assert again.get(chan).full == signed
    with pytest.raises(ConfigError, match="passphrase"):
        ChannelBook.load(bob.path, key, b"wrong", tmp_path / "bob.wallet")
    with pytest.raises(ConfigError, match="another wallet"):
        ChannelBook.load(bob.path, alice._key, SECRET, tmp_path / "alice.wallet")


def test_accept_refuses_replays_forgeries_and_thefts(tmp_path: Path) -> None:
    alice, bob, chan = _opened(tmp_path)
    first = alice.pay(chan, 10)
    bob.accept(first)
    with pytest.raises(ChannelError, match="replay"):
        bob.accept(first)
    # A state alice signed that moves funds from bob to alice: bob never countersigns.
    theft = replace(first.state, seq=5, balance_a=110, balance_b=40)
    with pytest.raises(ChannelError, match="takes funds"):
        bob.accept(Update(theft, theft.sign(alice._key), None))
    wrong_total = replace(first.state, seq=6, balance_b=1000)
    with pytest.raises(ChannelError, match="add up"):
        bob.accept(Update(wrong_total, wrong_total.sign(alice._key), None))
    stranger = SigningKey.generate()
    newer = replace(first.state, seq=7)
    with pytest.raises(ChannelError, match="does not verify"):
        bob.accept(Update(newer, newer.sign(stranger), None))
    with pytest.raises(ChannelError, match="lacks"):
        bob.accept(Update(newer, None, None))
    with pytest.raises(ChannelError, match="does not hold"):
        bob.pay(chan, 10_000)
    with pytest.raises(ChannelError, match="not addressed"):
        alice.consent(Offer("chain", bob.me, SigningKey.generate().public_key.to_bytes(), 1, 0, 0))
    with pytest.raises(ChannelError, match="no open offer"):
        alice.take_consent(Consent(chan, bytes(64)))  # opened already
    second = alice.offer("chain", bob.me, 5, 0, 9)
    with pytest.raises(ChannelError, match="does not verify"):
        alice.take_consent(Consent(second.chan, alice._key.sign(second.terms())))


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
        decode_text(text)
