"""A contact card's optional stealth meta-address: round trips, old form, hostile values."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_decode, canonical_encode
from dchat_crypto.hazmat import ed25519_base_mul, ed25519_point_ok, ed25519_scalar_from_hash
from dchat_identity import ContactCard, Identity, InvalidCardError

RELAY = "relay.example.org:8471"
SIGN_DOMAIN = b"dchat-card-v1\x00"


@functools.cache
def _alice() -> Identity:
    return Identity.generate()


def _point(seed: bytes) -> bytes:
    return ed25519_base_mul(ed25519_scalar_from_hash(seed))


def _meta(seed: bytes) -> bytes:
    return _point(b"scan" + seed) + _point(b"spend" + seed)


def _resigned(card: ContactCard, **changes: Any) -> bytes:
    """The card's fields with ``changes``, signed by its owner (a well-signed hostile card)."""
    fields = canonical_decode(card.to_bytes())
    del fields["sig"]
    fields.update(changes)
    signature = _alice().signing_key.sign(SIGN_DOMAIN + canonical_encode(fields))
    return canonical_encode({**fields, "sig": signature})


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=1, max_size=32), relays=st.integers(1, 3))
def test_a_card_carrying_a_meta_address_round_trips(seed: bytes, relays: int) -> None:
    listed = [f"relay{i}.example:8471" for i in range(relays)]
    card = ContactCard.issue(_alice(), name="Alice", relays=listed, stealth=_meta(seed))
    assert ContactCard.from_bytes(card.to_bytes()) == card
    again = ContactCard.from_text(card.to_text())
    assert again.stealth == _meta(seed)


def test_a_card_without_one_is_encoded_as_before() -> None:
    card = ContactCard.issue(_alice(), name="Alice", relay=RELAY)
    assert card.stealth is None
    assert "stealth" not in canonical_decode(card.to_bytes())
    assert ContactCard.from_bytes(card.to_bytes()).stealth is None


def test_the_meta_address_is_signed() -> None:
    card = ContactCard.issue(_alice(), name="Alice", relay=RELAY, stealth=_meta(b"a"))
    fields = canonical_decode(card.to_bytes())
    fields["stealth"] = _meta(b"mallory")
    with pytest.raises(InvalidCardError, match="signature"):
        ContactCard.from_bytes(canonical_encode(fields))


@pytest.mark.parametrize(
    "value",
    [b"", bytes(64), _meta(b"a")[:63], _meta(b"a") + b"\x00", bytes(32) + _point(b"x"), 7],
)
def test_a_malformed_meta_address_is_refused_when_issued_and_decoded(value: Any) -> None:
    card = ContactCard.issue(_alice(), name="Alice", relay=RELAY)
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(_resigned(card, stealth=value))
    if isinstance(value, bytes):
        with pytest.raises(InvalidCardError):
            ContactCard.issue(_alice(), name="Alice", relay=RELAY, stealth=value)


@settings(max_examples=50, deadline=None)
@given(value=st.binary(min_size=0, max_size=80))
def test_arbitrary_bytes_are_a_meta_address_only_if_two_valid_points(value: bytes) -> None:
    card = ContactCard.issue(_alice(), name="Alice", relay=RELAY)
    data = _resigned(card, stealth=value)
    valid = len(value) == 64 and ed25519_point_ok(value[:32]) and ed25519_point_ok(value[32:])
    if valid:
        assert ContactCard.from_bytes(data).stealth == value
    else:
        with pytest.raises(InvalidCardError):
            ContactCard.from_bytes(data)


# -- re-issuing an old card with a meta-address (its owner, on the next export) ---------------


@settings(max_examples=10, deadline=None)
@given(expires=st.one_of(st.none(), st.integers(2_000_000_000, 3_000_000_000)))
def test_an_old_card_is_reissued_with_its_fields_and_a_meta_address(expires: int | None) -> None:
    old = ContactCard.issue(_alice(), name="alice", relays=[RELAY, "b.example:1"], expires=expires)
    new = old.with_stealth(_alice(), _meta(b"a"))
    assert ContactCard.from_bytes(new.to_bytes()) == new  # signed by the owner
    assert (new.name, new.relays, new.expires_ms) == (old.name, old.relays, old.expires_ms)
    assert new.stealth == _meta(b"a")
    assert new.with_stealth(_alice(), _meta(b"a")) is new  # nothing to re-issue


def test_only_the_owner_reissues_and_only_with_a_meta_address() -> None:
    old = ContactCard.issue(_alice(), name="alice", relay=RELAY)
    with pytest.raises(InvalidCardError, match="owner"):
        old.with_stealth(Identity.generate(), _meta(b"a"))
    with pytest.raises(InvalidCardError):
        old.with_stealth(_alice(), b"\x00" * 64)
