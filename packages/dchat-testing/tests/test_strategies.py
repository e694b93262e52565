"""The wire strategies produce valid messages that round-trip, and parsers survive junk."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings

from dchat_crypto import SigningKey
from dchat_identity import ContactCard
from dchat_messaging import MessageReceived, MessagingEngine, SealedEnvelope
from dchat_network import LinkProtocolError, RelayMessage, RelayProtocolError, RelayServer
from dchat_network.lowlevel import (
    LinkConnection,
    RelayPrekeyPut,
    RelayPrekeysHeld,
    decode_relay_message,
    encode_relay_message,
)
from dchat_testing import (
    MemoryMailboxStore,
    MemoryPrekeyStore,
    contact_cards,
    envelope_bytes,
    hostile_bytes,
    link_frames,
    relay_messages,
    sealed_envelopes,
)


@given(relay_messages())
def test_relay_messages_round_trip(message: RelayMessage) -> None:
    assert decode_relay_message(encode_relay_message(message)) == message


@settings(max_examples=300)
@given(relay_messages(max_envelope=64))
def test_drawn_prekey_puts_are_accepted_by_a_relay(put: RelayMessage) -> None:
    if not isinstance(put, RelayPrekeyPut):
        return  # a filter would discard too much; one draw in twelve is a put
    prekeys = MemoryPrekeyStore()
    server = RelayServer(MemoryMailboxStore(), lambda _: None, prekeys=prekeys)
    reply = server.handle(put.mailbox, encode_relay_message(put), 1.0)
    assert reply.message == RelayPrekeysHeld(put.rid, len(put.one_time))
    assert prekeys.take_prekey(put.mailbox) == min(put.one_time, default=(0, put.last))[1]


@given(contact_cards())
def test_cards_round_trip_and_verify(card: ContactCard) -> None:
    assert ContactCard.from_bytes(card.to_bytes()) == card
    assert ContactCard.from_text(card.to_text()) == card


@given(envelope_bytes())
def test_outer_envelopes_parse(data: bytes) -> None:
    assert SealedEnvelope.from_bytes(data).to_bytes() == data


@settings(max_examples=25, deadline=None)
@given(sealed_envelopes())
def test_sealed_envelopes_open_for_their_recipient(
    drawn: tuple[MessagingEngine, ContactCard, str, SealedEnvelope, float],
) -> None:
    recipient, sender_card, text, envelope, now = drawn
    [event] = recipient.receive(envelope.to_bytes(), now=now)
    assert isinstance(event, MessageReceived)
    assert event.text == text
    assert event.sender == sender_card.identity_id


@settings(max_examples=50, deadline=None)
@given(link_frames())
def test_a_responder_rejects_junk_frames_cleanly(data: bytes) -> None:
    link = LinkConnection(initiator=False, node_key=SigningKey.from_bytes(bytes(32)))
    try:
        link.receive_data(data)
    except LinkProtocolError:
        return
    assert link.next_event() is None  # nothing authenticated came out of junk


@given(hostile_bytes())
def test_the_relay_decoder_is_total(data: bytes) -> None:
    with contextlib.suppress(RelayProtocolError):
        decode_relay_message(data)
