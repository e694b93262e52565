"""Hypothesis strategies for every message dchat puts on the wire.

Structured values (relay messages, cards, envelopes) are valid by construction,
for round-trip properties; :func:`link_frames` and :func:`hostile_bytes` are for
feeding parsers input they must reject cleanly.

Real sealing (:func:`sealed_envelopes`, through the messaging engine) draws
ephemeral keys and nonces from the operating system, so the envelope bytes
differ between runs of one example; everything else is a pure function of
hypothesis's draws.
"""

from __future__ import annotations

from hypothesis import strategies as st

from dchat_core import MailboxId, MessageId, NodeId
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    Content,
    DeviceAddress,
    DeviceKeys,
    MessagingEngine,
    PrekeyPolicy,
    SealedEnvelope,
)
from dchat_messaging.testing import MemoryMessageStore
from dchat_network import RelayError, RelayMessage
from dchat_network.lowlevel import (
    MAX_BATCH,
    MAX_PREKEY_BUNDLE,
    MAX_PREKEY_PUT,
    MAX_PREKEYS_HELD,
    RelayAck,
    RelayAcked,
    RelayBatch,
    RelayFetch,
    RelayPrekeyBundle,
    RelayPrekeyCount,
    RelayPrekeyGet,
    RelayPrekeyPut,
    RelayPrekeysHeld,
    RelayPut,
    RelayStored,
)

__all__ = (
    "contact_cards",
    "envelope_bytes",
    "hostile_bytes",
    "identities",
    "link_frames",
    "relay_messages",
    "sealed_envelopes",
)

_RID = st.integers(min_value=0, max_value=2**63 - 1)
_ID32 = st.binary(min_size=32, max_size=32)
_PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp"))


def _printable(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_PRINTABLE, min_size=1, max_size=max_size).filter(str.isprintable)


def relay_messages(max_envelope: int = 2048, max_items: int = 8) -> st.SearchStrategy[RelayMessage]:
    """Any valid relay message (all twelve types), with small envelopes by default.

    Prekey bundles are opaque bytes of up to ``max_envelope`` bytes here (the
    relay never parses them), and ``pk_put`` one-time prekey ids are distinct
    and in ``0..2**32-1``, so every drawn put is one a relay accepts (quota
    permitting).
    """
    envelope = st.binary(max_size=max_envelope)
    items = st.lists(st.tuples(_ID32, envelope), max_size=min(max_items, MAX_BATCH))
    ids = st.lists(_ID32, max_size=min(max_items, MAX_BATCH)).map(tuple)
    bundle = st.binary(max_size=min(max_envelope, MAX_PREKEY_BUNDLE))
    blob = st.binary(min_size=1, max_size=min(max_envelope, MAX_PREKEY_BUNDLE))
    one_time = st.lists(
        st.tuples(st.integers(0, 2**32 - 1), blob),
        max_size=min(max_items, MAX_PREKEY_PUT),
        unique_by=lambda item: item[0],
    ).map(tuple)
    return st.one_of(
        st.builds(RelayPut, _RID, _ID32, envelope),
        st.builds(RelayStored, _RID, _ID32),
        st.builds(RelayFetch, _RID, _ID32, st.integers(1, MAX_BATCH)),
        st.builds(RelayBatch, _RID, items.map(tuple)),
        st.builds(RelayAck, _RID, _ID32, ids),
        st.builds(RelayAcked, _RID, st.integers(0, MAX_BATCH)),
        st.builds(RelayError, _RID, st.text(max_size=64), st.text(max_size=512)),
        st.builds(RelayPrekeyPut, _RID, _ID32, blob, one_time, st.booleans()),
        st.builds(RelayPrekeyCount, _RID, _ID32),
        st.builds(RelayPrekeyGet, _RID, _ID32),
        st.builds(RelayPrekeysHeld, _RID, st.integers(0, MAX_PREKEYS_HELD)),
        st.builds(RelayPrekeyBundle, _RID, bundle),
    )


def identities() -> st.SearchStrategy[Identity]:
    """Identities whose three keys come from drawn seeds."""
    return st.builds(
        Identity,
        _ID32.map(SigningKey.from_bytes),
        _ID32.map(PrivateKey.from_bytes),
        _ID32.map(SigningKey.from_bytes),
    )


@st.composite
def contact_cards(draw: st.DrawFn) -> ContactCard:
    """Signed cards with any valid name, relay address and optional relay node."""
    identity = draw(identities())
    relay_node = draw(st.none() | _ID32.map(NodeId))
    return ContactCard.issue(
        identity, name=draw(_printable(64)), relay=draw(_printable(255)), relay_node=relay_node
    )


def envelope_bytes(max_ciphertext: int = 4096) -> st.SearchStrategy[bytes]:
    """Well-formed outer envelopes (mailbox + opaque ciphertext), as relays see them."""
    return st.builds(SealedEnvelope, _ID32.map(MailboxId), st.binary(max_size=max_ciphertext)).map(
        SealedEnvelope.to_bytes
    )


def _engine(identity: Identity, card: ContactCard, store: MemoryMessageStore) -> MessagingEngine:
    keys = DeviceKeys(
        card.identity_id, identity.signing_key, identity.encryption_key, identity.mailbox_id, card
    )
    # One one-time prekey is enough for one session, and keeps examples fast.
    return MessagingEngine(keys, store, prekey_policy=PrekeyPolicy(1, 1))


@st.composite
def sealed_envelopes(
    draw: st.DrawFn,
) -> tuple[MessagingEngine, ContactCard, str, SealedEnvelope, float]:
    """A session's first envelope: ``(recipient's engine, sender card, text, envelope, now)``.

    The recipient's engine (over a fresh in-memory store) holds the prekeys
    the envelope's session setup used, so ``engine.receive(..., now=now)``
    opens it; ``now`` is when it was sealed (seconds).
    """
    sender, recipient = draw(identities()), draw(identities())
    text = draw(st.text(min_size=1, max_size=200))
    sender_card = ContactCard.issue(sender, name="sender", relay="relay.example:7400")
    card = ContactCard.issue(recipient, name="recipient", relay="relay.example:7400")
    now_ms = draw(st.integers(0, 2**48))
    now = now_ms / 1000
    mid = MessageId(draw(st.binary(min_size=16, max_size=16)))
    outbox = MemoryMessageStore()
    receiving = _engine(recipient, card, MemoryMessageStore())
    sending = _engine(sender, sender_card, outbox)
    upload = receiving.prekey_upload(held=None, now=now)
    assert upload is not None
    device = DeviceAddress.primary(card)
    content = Content.text_message(text, now_ms=now_ms, message_id=mid)
    sending.send(content, [device], now=now)
    sending.bundle_received(device, upload.one_time[0][1], now=now)
    [entry] = outbox.outbox.values()
    return receiving, sender_card, text, SealedEnvelope.from_bytes(entry.envelope), now


def link_frames(max_payload: int = 512, max_frames: int = 4) -> st.SearchStrategy[bytes]:
    """Correctly framed (2-byte length) Noise messages with arbitrary contents."""
    frame = st.binary(max_size=max_payload).map(lambda m: len(m).to_bytes(2, "big") + m)
    return st.lists(frame, min_size=1, max_size=max_frames).map(b"".join)


def hostile_bytes(max_size: int = 1024) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, biased towards things parsers trip on (lengths, CBOR heads)."""
    heads = st.sampled_from([b"\xff\xff", b"\x00\x00", b"\xa4", b"\x5b" + b"\xff" * 8, b"\x9f"])
    return st.one_of(st.binary(max_size=max_size), st.tuples(heads, st.binary()).map(b"".join))
