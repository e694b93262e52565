"""Contact cards: signed, self-certifying, and strict about what they accept."""

from __future__ import annotations

import base64
import dataclasses
import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import NodeId, canonical_encode
from dchat_identity import ContactCard, Identity, InvalidCardError
from dchat_testing import hostile_bytes

RELAY = "relay.example.org:8471"
PREFIX = "dchat-card:"
SIGN_DOMAIN = b"dchat-card-v1\x00"  # from the wire format in _card.py's docstring


@functools.cache
def _alice() -> Identity:
    return Identity.generate()


@functools.cache
def _mallory() -> Identity:
    return Identity.generate()


@functools.cache
def _card(with_node: bool = True) -> ContactCard:
    node = NodeId.derive(b"relay node key") if with_node else None
    return ContactCard.issue(_alice(), name="Alice", relay=RELAY, relay_node=node)


def _fields(card: ContactCard) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "v": 1,
        "name": card.name,
        "identity": card.identity_key.to_bytes(),
        "encryption": card.encryption_key.to_bytes(),
        "mailbox": bytes(card.mailbox),
        "relay": card.relay,
    }
    if card.relay_node is not None:
        fields["relay_node"] = bytes(card.relay_node)
    return fields


def _signed(fields: dict[str, Any], signer: Identity) -> bytes:
    """Card bytes whose signature verifies under ``signer`` (whatever the fields say)."""
    signature = signer.signing_key.sign(SIGN_DOMAIN + canonical_encode(fields))
    return canonical_encode({**fields, "sig": signature})


# -- issuing and round trips -------------------------------------------------


@pytest.mark.parametrize("with_node", [True, False])
def test_bytes_round_trip(with_node: bool) -> None:
    card = _card(with_node)
    assert ContactCard.from_bytes(card.to_bytes()) == card


@pytest.mark.parametrize("with_node", [True, False])
def test_text_round_trip(with_node: bool) -> None:
    card = _card(with_node)
    text = card.to_text()
    assert text.startswith(PREFIX)
    assert "=" not in text
    assert ContactCard.from_text(text) == card


def test_text_survives_surrounding_whitespace_after_the_prefix() -> None:
    card = _card()
    assert ContactCard.from_text(card.to_text() + "\n") == card


def test_card_describes_the_issuer() -> None:
    card = _card()
    alice = _alice()
    assert card.identity_id == alice.identity_id
    assert card.identity_key == alice.signing_key.public_key
    assert card.encryption_key == alice.encryption_key.public_key
    assert card.mailbox == alice.mailbox_id
    assert card.relay == RELAY


def test_issued_card_signs_exactly_the_documented_message() -> None:
    card = _card()
    card.identity_key.verify(card.signature, SIGN_DOMAIN + canonical_encode(_fields(card)))


# -- forgery -----------------------------------------------------------------


_TAMPERS = {
    "name": lambda c: dataclasses.replace(c, name="Mallory"),
    "relay": lambda c: dataclasses.replace(c, relays=(f"{c.relay_node}@evil.example:8471",)),
    "relay_added": lambda c: dataclasses.replace(c, relays=(*c.relays, "evil.example:8471")),
    "encryption_key": lambda c: dataclasses.replace(
        c, encryption_key=_mallory().encryption_key.public_key
    ),
    "mailbox": lambda c: dataclasses.replace(c, mailbox=_mallory().mailbox_id),
    "relay_node_changed": lambda c: dataclasses.replace(
        c, relays=(f"{NodeId.derive(b'evil')}@{c.relay}",)
    ),
    "relay_node_removed": lambda c: dataclasses.replace(c, relays=(c.relay,)),
}


@pytest.mark.parametrize("tamper", sorted(_TAMPERS))
def test_tampered_field_breaks_the_signature(tamper: str) -> None:
    forged = _TAMPERS[tamper](_card())
    assert forged != _card()
    with pytest.raises(InvalidCardError, match="signature"):
        ContactCard.from_bytes(forged.to_bytes())
    with pytest.raises(InvalidCardError, match="signature"):
        ContactCard.from_text(forged.to_text())


def test_added_relay_node_breaks_the_signature() -> None:
    card = _card(with_node=False)
    forged = dataclasses.replace(card, relays=(f"{NodeId.derive(b'evil')}@{card.relay}",))
    with pytest.raises(InvalidCardError, match="signature"):
        ContactCard.from_bytes(forged.to_bytes())


def test_swapped_identity_key_is_rejected() -> None:
    forged = dataclasses.replace(_card(), identity_key=_mallory().signing_key.public_key)
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(forged.to_bytes())


def test_card_claiming_someone_elses_key_but_signed_by_mallory_is_rejected() -> None:
    # Mallory cannot speak for Alice's id: the id comes from the key, the key must sign.
    fields = _fields(_card())
    fields["encryption"] = _mallory().encryption_key.public_key.to_bytes()
    with pytest.raises(InvalidCardError, match="signature"):
        ContactCard.from_bytes(_signed(fields, _mallory()))


def test_every_flipped_byte_is_rejected() -> None:
    raw = _card().to_bytes()
    for position in range(len(raw)):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        with pytest.raises(InvalidCardError):
            ContactCard.from_bytes(bytes(tampered))


def test_signature_from_another_domain_is_rejected() -> None:
    fields = _fields(_card())
    signature = _alice().signing_key.sign(canonical_encode(fields))  # no domain tag
    with pytest.raises(InvalidCardError, match="signature"):
        ContactCard.from_bytes(canonical_encode({**fields, "sig": signature}))


# -- strict decoding ---------------------------------------------------------


def test_validly_signed_card_with_unknown_field_is_rejected() -> None:
    fields = {**_fields(_card()), "extra": 1}
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(_signed(fields, _alice()))


def test_validly_signed_card_of_another_version_is_rejected() -> None:
    fields = {**_fields(_card()), "v": 2}
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(_signed(fields, _alice()))


def test_oversized_bytes_are_rejected() -> None:
    fields = {**_fields(_card()), "relay": "r" * 255}
    raw = _signed(fields, _alice())
    assert len(ContactCard.from_bytes(raw).relay) == 255  # the biggest legal card...
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(raw + bytes(3000))  # ...and far beyond it
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(b"\x59\x10\x00" + bytes(4096))  # a 4 KiB byte string


def test_oversized_text_is_rejected() -> None:
    body = base64.urlsafe_b64encode(bytes(3000)).decode().rstrip("=")
    with pytest.raises(InvalidCardError):
        ContactCard.from_text(PREFIX + body)
    with pytest.raises(InvalidCardError):
        ContactCard.from_text(_card().to_text() + " " * 5000)


@pytest.mark.parametrize(
    "text", ["", "dchat-card", "dchat-card:", "dchat-card:!!!!", "DCHAT-CARD:abc", "dchat-card:é"]
)
def test_malformed_text_is_rejected(text: str) -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.from_text(text)


def test_non_string_text_is_rejected() -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.from_text(_card().to_bytes())  # type: ignore[arg-type]


# -- names and relays --------------------------------------------------------


BAD_NAMES = ["", "x" * 65, "a\nb", "a\x00b", "tab\there", "bell\x07", "zero\u200bwidth", "\x7f"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_issue_refuses_bad_names(name: str) -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.issue(_alice(), name=name, relay=RELAY)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_decoding_refuses_bad_names_even_when_signed(name: str) -> None:
    fields = {**_fields(_card()), "name": name}
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(_signed(fields, _alice()))


@pytest.mark.parametrize("relay", ["", "r" * 256, "relay\n.example", "relay\x00"])
def test_bad_relays_are_refused(relay: str) -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.issue(_alice(), name="Alice", relay=relay)
    fields = {**_fields(_card()), "relay": relay}
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(_signed(fields, _alice()))


def test_longest_and_non_ascii_names_are_fine() -> None:
    for name in ["x" * 64, "Zoë 🦊", "名前"]:
        card = ContactCard.issue(_alice(), name=name, relay=RELAY)
        assert ContactCard.from_text(card.to_text()).name == name


# -- properties --------------------------------------------------------------


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_name_issues_a_round_tripping_card_or_is_refused(name: str) -> None:
    try:
        card = ContactCard.issue(_alice(), name=name, relay=RELAY)
    except InvalidCardError:
        return
    assert ContactCard.from_text(card.to_text()) == card


@settings(max_examples=300)
@given(hostile_bytes(max_size=3000))
def test_random_bytes_only_raise_invalid_card_error(data: bytes) -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(data)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=600), st.text(max_size=600).map(PREFIX.__add__)))
def test_random_text_only_raises_invalid_card_error(text: str) -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.from_text(text)


@settings(max_examples=300)
@given(hostile_bytes(max_size=2500))
def test_random_base64_payload_only_raises_invalid_card_error(data: bytes) -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.from_text(PREFIX + base64.urlsafe_b64encode(data).decode().rstrip("="))


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    st.binary(max_size=70),
    st.text(max_size=70),
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(
            ["v", "name", "identity", "encryption", "mailbox", "relay", "relay_node", "sig", "x"]
        ),
        _VALUES,
    )
)
def test_structured_garbage_only_raises_invalid_card_error(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(canonical_encode(fields))


@settings(max_examples=200)
@given(st.data())
def test_any_single_field_substitution_is_rejected(data: st.DataObject) -> None:
    fields = _fields(_card())
    signature = _card().signature
    key = data.draw(st.sampled_from(sorted(fields)))
    value = data.draw(_VALUES.filter(lambda v: v != fields[key]))
    fields[key] = value
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(canonical_encode({**fields, "sig": signature}))


# -- several home relays (version 2) ------------------------------------------

NODE_B = NodeId.derive(b"second relay")
TWO = (RELAY, f"{NODE_B}@relay-b.example.org:7400")


def test_a_card_lists_every_home_relay_and_round_trips() -> None:
    card = ContactCard.issue(_alice(), name="Alice", relays=TWO)
    again = ContactCard.from_text(card.to_text())
    assert again.relays == TWO
    assert (again.relay, again.relay_node) == (RELAY, None)  # the first one, as before


def test_one_relay_keeps_the_version_1_bytes() -> None:
    node = NodeId.derive(b"relay node key")
    listed = ContactCard.issue(_alice(), name="Alice", relays=(f"{node}@{RELAY}",))
    assert listed.relays == _card().relays
    assert ContactCard.from_bytes(listed.to_bytes()).relays == _card().relays
    assert _fields(_card())["v"] == 1
    assert b"relays" not in _card().to_bytes()


def _v2(relays: list[object]) -> dict[str, Any]:
    fields = _fields(_card(with_node=False))
    del fields["relay"]
    return {**fields, "v": 2, "relays": relays}


@pytest.mark.parametrize(
    "relays",
    [
        [RELAY],  # one relay has the version 1 form only
        [RELAY, RELAY],
        [RELAY, "no-port"],
        [RELAY, 7400],
        [f"relay-{i}.example:7400" for i in range(9)],
    ],
)
def test_bad_relay_lists_are_refused(relays: list[object]) -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(_signed(_v2(relays), _alice()))


def test_version_2_with_a_single_relay_field_is_refused() -> None:
    fields = {**_v2(list(TWO)), "relay": RELAY}
    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(_signed(fields, _alice()))
    assert ContactCard.from_bytes(_signed(_v2(list(TWO)), _alice())).relays == TWO


def test_issue_wants_exactly_one_form_of_relays() -> None:
    with pytest.raises(InvalidCardError):
        ContactCard.issue(_alice(), name="Alice")
    with pytest.raises(InvalidCardError):
        ContactCard.issue(_alice(), name="Alice", relay=RELAY, relays=TWO)


def test_a_card_too_big_for_a_first_message_is_refused_at_issue() -> None:
    relays = [f"relay-{i}-{'x' * 230}.example:7400" for i in range(8)]
    with pytest.raises(InvalidCardError, match="at most"):
        ContactCard.issue(_alice(), name="Alice", relays=relays)
