"""One fuzz target per wire decoder: each input either decodes or raises the owner's typed error.

Theory of operation. A target is a function of one ``bytes`` input (what a
hostile peer controls) that calls one decoder and checks the one contract every
decoder of dchat promises (docs/protocol.md, "Decoding untrusted bytes"):

* the input decodes to a value, and where the package has an encoder the value
  encodes back to exactly the input (canonical encodings have one form), or
* the decoder raises the typed error its package documents for malformed input,
  which is always a :class:`dchat_core.PeerError` of that package.

``canonical_values`` checks the other direction, decode(encode(x)) == x, for
values x of the canonical data model built from the fuzzer's bytes.

Anything else (``KeyError``, ``IndexError``, ``RecursionError``, a foreign
library's exception, a ``PeerError`` of another package leaking through, an
assertion) propagates: under atheris that is a crash, saved by ``run.py`` into
``regressions/<target>/``; under pytest (``test_fuzz_regressions.py`` replays
every seed and regression input) it fails the test.

``SEEDS`` builds the starting corpus of each target from the real encoders (and
for the link layer from the Noise vectors in ``../shared/vectors``), so the
fuzzer starts from inputs that reach deep into each decoder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import cbor2

from dchat_chain import Block, BlockHeader, CommitCertificate, DchatChainError, Transaction
from dchat_chain.lowlevel import decode_inbound, decode_message
from dchat_core import (
    DchatCoreError,
    DecodeError,
    DecodeLimitError,
    DecodeLimits,
    MailboxId,
    PeerError,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, DchatIdentityError, Identity, IdentityDocument
from dchat_identity.lowlevel import (
    ApprovalMessage,
    InfoMessage,
    LookupMessage,
    Rekey,
    RequestMessage,
    ShareMessage,
    VetoMessage,
    decode_pair_item,
    decode_starter,
    decode_sync_item,
)
from dchat_messaging import DchatMessagingError, SealedEnvelope
from dchat_network import DchatNetworkError, RelayProtocolError
from dchat_network.lowlevel import (
    LinkConnection,
    MessageReceived,
    RelayFetch,
    RelayPut,
    TokenBuy,
    TokenIssued,
    TokenOfferAsk,
    auth_paid,
    decode_relay_message,
    encode_relay_message,
)
from dchat_privacy import (
    ContactContext,
    ContactRing,
    ContactSecret,
    DchatPrivacyError,
    prove_contact,
)
from dchat_privacy.lowlevel import ContactProof

if TYPE_CHECKING:
    from pathlib import Path

Target = Callable[[bytes], None]
T = TypeVar("T", bytes, str)

_NOW = 1_800_000_000.0


Roots = type[Exception] | tuple[type[Exception], ...]


def _typed(exc: Exception, root: Roots) -> bool:
    return isinstance(exc, root) and isinstance(exc, PeerError)


def _expect(root: Roots, decode: Callable[[T], Any], data: T) -> Any:
    """``decode(data)``, or None when it raised ``root``'s typed peer error; else re-raise."""
    try:
        return decode(data)
    except Exception as exc:
        if _typed(exc, root):
            return None
        raise


# -- dchat_core: canonical CBOR ------------------------------------------------------------


def canonical_cbor(data: bytes) -> None:
    value = _expect(DchatCoreError, canonical_decode, data)
    if value is not None or data == b"\xf6":
        assert canonical_encode(value) == data, "a decoded value must re-encode to its input"


def _allowed(value: object, depth: int = 0) -> bool:
    """Whether ``value`` is in the canonical data model (and shallow enough to decode)."""
    if depth > DecodeLimits().max_depth:
        return False
    if value is None or isinstance(value, bool | bytes | str):
        return True
    if isinstance(value, int):
        return -(2**64) <= value < 2**64
    if isinstance(value, list):
        return all(_allowed(v, depth + 1) for v in value)
    if isinstance(value, dict):
        keys_ok = all(isinstance(k, str) or type(k) is int for k in value)
        return keys_ok and all(_allowed(v, depth + 1) for v in value.values())
    return False


def _same(a: object, b: object) -> bool:
    """Equality that tells ``True`` from ``1`` (Python's ``==`` does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _reversed_maps(value: Any) -> Any:
    if isinstance(value, list):
        return [_reversed_maps(v) for v in value]
    if isinstance(value, dict):
        return {k: _reversed_maps(value[k]) for k in reversed(list(value))}
    return value


def canonical_values(data: bytes) -> None:
    """decode(encode(x)) == x for values x of the data model, whatever their map order.

    The fuzzer's bytes become a value through cbor2's lenient decoder (any CBOR,
    canonical or not); values outside the model are skipped. Encoding must not
    depend on the insertion order of map keys (the encoder remembers key orders).
    """
    try:
        value = cbor2.loads(data)
    except Exception:
        return
    if not _allowed(value):
        return
    encoded = canonical_encode(value)
    assert canonical_encode(_reversed_maps(value)) == encoded, "map order changed the encoding"
    try:
        decoded = canonical_decode(encoded)
    except DecodeLimitError:  # more items or bytes than a decoder accepts: refused, typed
        return
    assert _same(decoded, value), "decode(encode(x)) != x"


# -- dchat_network: link frames and relay requests -----------------------------------------

_NODE_KEY = SigningKey.from_bytes(bytes(range(32)))
_PEER_KEY = SigningKey.from_bytes(bytes(range(1, 33)))


def _open_pair() -> tuple[LinkConnection, LinkConnection]:
    """A dialer and a listener with a finished handshake (events drained)."""
    dialer = LinkConnection(initiator=True, node_key=_NODE_KEY, max_message=4096)
    listener = LinkConnection(initiator=False, node_key=_PEER_KEY, max_message=4096)
    listener.receive_data(dialer.data_to_send())  # -> e
    dialer.receive_data(listener.data_to_send())  # <- e, ee, s, es
    listener.receive_data(dialer.data_to_send())  # -> s, se
    for side in (dialer, listener):
        while side.next_event() is not None:
            pass
    return dialer, listener


def link_frames(data: bytes) -> None:
    """Byte 0 picks the layer: even, raw bytes into a listener's handshake;
    odd, plaintext stream bytes sent through an open link's encryption, so the
    fuzzer reaches the message framing inside the Noise transport."""
    if not data:
        return
    mode, rest = data[0], data[1:]
    if mode % 2 == 0:
        listener = LinkConnection(initiator=False, node_key=_PEER_KEY)
        _expect(DchatNetworkError, listener.receive_data, rest)
        while listener.next_event() is not None:
            pass
        return
    dialer, listener = _open_pair()
    transport = dialer._transport  # the fuzzer writes the plaintext stream itself
    assert transport is not None
    cut = rest[0] if rest else 0
    stream = b"".join(
        len(c).to_bytes(2, "big") + transport.encrypt(c)
        for c in (rest[1 : 1 + cut], rest[1 + cut :])
    )
    _expect(DchatNetworkError, listener.receive_data, stream)
    while (event := listener.next_event()) is not None:
        assert isinstance(event, MessageReceived)
        assert len(event.data) <= listener.max_message


def link_roundtrip(data: bytes) -> None:
    """Any message up to the limit sent over an open link arrives unchanged, alone."""
    dialer, listener = _open_pair()
    dialer.send_message(data[: dialer.max_message])
    listener.receive_data(dialer.data_to_send())
    assert listener.next_event() == MessageReceived(data[: dialer.max_message])
    assert listener.next_event() is None


def relay_requests(data: bytes) -> None:
    message = _expect(RelayProtocolError, decode_relay_message, data)
    if message is not None:
        assert encode_relay_message(message) == data, "a relay message must re-encode to its input"


# -- dchat_messaging: envelopes ------------------------------------------------------------


def envelopes(data: bytes) -> None:
    envelope = _expect(DchatMessagingError, SealedEnvelope.from_bytes, data)
    if envelope is not None:
        assert envelope.to_bytes() == data


# -- dchat_identity: identity documents and contact cards ----------------------------------


def identity_documents(data: bytes) -> None:
    document = _expect(DchatIdentityError, IdentityDocument.from_bytes, data)
    if document is not None:
        assert document.to_bytes() == data


def contact_cards(data: bytes) -> None:
    card = _expect(DchatIdentityError, ContactCard.from_bytes, data)
    if card is not None:
        assert card.to_bytes() == data
        assert ContactCard.from_text(card.to_text()) == card
    text = data.decode("utf-8", errors="replace")
    _expect(DchatIdentityError, ContactCard.from_text, text)


#: The identity agents' peer messages (pairing, sync, guardians), picked by byte 0.
#: The guardian messages (from index 4 on) document ``dchat_core.DecodeError`` or
#: an identity error (``_guardian_wire``); the device wire translates everything.
_IDENTITY_WIRE: tuple[Callable[[bytes], Any], ...] = (
    decode_pair_item,
    decode_starter,
    decode_sync_item,
    Rekey.from_bytes,
    ShareMessage.from_bytes,
    LookupMessage.from_bytes,
    InfoMessage.from_bytes,
    RequestMessage.from_bytes,
    ApprovalMessage.from_bytes,
    VetoMessage.from_bytes,
)


def identity_wire(data: bytes) -> None:
    if data:
        index = data[0] % len(_IDENTITY_WIRE)
        roots: Roots = DchatIdentityError if index < 4 else (DchatIdentityError, DecodeError)
        _expect(roots, _IDENTITY_WIRE[index], data[1:])


# -- dchat_chain: transactions, blocks, certificates, consensus messages -------------------


def transactions(data: bytes) -> None:
    tx = _expect(DchatChainError, Transaction.decode, data)
    if tx is not None:
        assert tx.raw == data


def blocks(data: bytes) -> None:
    block = _expect(DchatChainError, Block.from_bytes, data)
    if block is not None:
        assert block.to_bytes() == data


def certificates(data: bytes) -> None:
    certificate = _expect(DchatChainError, CommitCertificate.from_bytes, data)
    if certificate is not None:
        assert certificate.to_bytes() == data


def consensus_messages(data: bytes) -> None:
    _expect(DchatChainError, decode_message, data)


def validator_links(data: bytes) -> None:
    """What a peer validator sends on a link it dialled (consensus, gossip, sync request)."""
    inbound = _expect(DchatChainError, decode_inbound, data)
    if isinstance(inbound, bytes):
        _expect(DchatChainError, decode_message, inbound)


# -- dchat_privacy: contact proofs and rings -------------------------------------------------


def contact_proofs(data: bytes) -> None:
    """Byte 0 picks the decoder: even, a contact proof; odd, a contact ring."""
    decode = ContactRing.from_bytes if data[:1] and data[0] & 1 else ContactProof.from_bytes
    value = _expect(DchatPrivacyError, decode, data[1:])
    if value is not None:
        assert value.to_bytes() == data[1:]


TARGETS: dict[str, Target] = {
    "canonical_cbor": canonical_cbor,
    "canonical_values": canonical_values,
    "link_frames": link_frames,
    "link_roundtrip": link_roundtrip,
    "relay_requests": relay_requests,
    "envelopes": envelopes,
    "identity_documents": identity_documents,
    "contact_cards": contact_cards,
    "identity_wire": identity_wire,
    "transactions": transactions,
    "blocks": blocks,
    "certificates": certificates,
    "consensus_messages": consensus_messages,
    "validator_links": validator_links,
    "contact_proofs": contact_proofs,
}


#: Targets whose seeds must all decode (so the round-trip half of the target runs).
ROUND_TRIPS: dict[str, Callable[[bytes], Any]] = {
    "canonical_cbor": canonical_decode,
    "relay_requests": decode_relay_message,
    "envelopes": SealedEnvelope.from_bytes,
    "identity_documents": IdentityDocument.from_bytes,
    "transactions": Transaction.decode,
    "blocks": Block.from_bytes,
}


# -- seeds ---------------------------------------------------------------------------------


def _identity() -> Identity:
    return Identity.generate()


def _noise_messages(vectors: Path | None) -> Iterator[bytes]:
    """Framed handshake messages of the Noise XX vectors (the link's pattern)."""
    path = None if vectors is None else vectors / "noise" / "cacophony.txt"
    if path is None or not path.is_file():
        return
    for vector in json.loads(path.read_text())["vectors"][:400]:
        if vector.get("protocol_name", "").startswith("Noise_XX_25519_ChaChaPoly"):
            for message in vector["messages"][:3]:
                raw = bytes.fromhex(message["ciphertext"])
                yield b"\x00" + len(raw).to_bytes(2, "big") + raw


def _link_seeds(vectors: Path | None) -> list[bytes]:
    dialer = LinkConnection(initiator=True, node_key=_NODE_KEY)
    message = canonical_encode({"t": "fetch", "rid": 1})
    plain = len(message).to_bytes(4, "big") + message
    return [b"\x00" + dialer.data_to_send(), b"\x01\x04" + plain, *_noise_messages(vectors)]


def _relay_seeds() -> list[bytes]:
    put = RelayPut(7, bytes(32), SealedEnvelope(MailboxId(bytes(32)), b"x" * 40).to_bytes())
    paid = RelayPut(8, bytes(32), put.envelope, auth_paid(b"\xa5" + bytes(300)))
    return [
        encode_relay_message(put),
        encode_relay_message(RelayFetch(1, bytes(32), 10)),
        encode_relay_message(paid),
        encode_relay_message(TokenOfferAsk(2)),
        encode_relay_message(TokenBuy(3, b"request")),
        encode_relay_message(TokenIssued(4, b"issuance")),
    ]


def _card() -> ContactCard:
    return ContactCard.issue(_identity(), name="fuzz", relay="127.0.0.1:4000")


def _document() -> IdentityDocument:
    identity = _identity()
    public = PrivateKey.generate().public_key
    return IdentityDocument.genesis(identity.signing_key, public, now=_NOW)


def _transaction() -> bytes:
    key = SigningKey.generate()
    body = {"to": bytes(32), "amount": 5}
    return Transaction.create(key, chain_id="fuzz", nonce=0, fee=1, kind="transfer", body=body).raw


def _block(txs: tuple[bytes, ...]) -> bytes:
    header = BlockHeader(
        chain_id="fuzz",
        height=1,
        round=0,
        time_ms=int(_NOW * 1000),
        prev_block_hash=bytes(32),
        txs_root=bytes(32),
        app_hash=bytes(32),
        validators_hash=bytes(32),
        next_validators_hash=bytes(32),
        proposer_id=bytes(32),
        last_commit_hash=bytes(32),
    )
    return Block(header=header, txs=txs, last_commit=None).to_bytes()


def _contact_proof_seeds() -> list[bytes]:
    secret = ContactSecret.generate()
    ring = ContactRing.padded([secret.public_key])
    context = ContactContext(b"mailbox", 1, bytes(16))
    proofs = [prove_contact(secret, ring, context, linkable=m).to_bytes() for m in (False, True)]
    return [b"\x00" + proofs[0], b"\x00" + proofs[1], b"\x01" + ring.to_bytes()]


def seeds(name: str, vectors: Path | None = None) -> list[bytes]:
    """The starting inputs of target ``name`` (valid encodings from the real encoders)."""
    cbor = [canonical_encode({"a": [1, -2, b"x", "y", None, True]}), b"\xf6", b"\x80"]
    if name == "canonical_values":  # non-canonical on purpose: long heads, unsorted keys
        return [*cbor, bytes.fromhex("a2616201616100"), bytes.fromhex("9f1801ff"), b"\xa1\x01\xf5"]
    if name in ("canonical_cbor", "consensus_messages", "certificates"):
        return cbor
    if name in ("identity_wire", "validator_links"):
        return [bytes([i]) + c for i in range(len(_IDENTITY_WIRE)) for c in cbor[:1]]
    if name in ("link_frames", "link_roundtrip"):
        return _link_seeds(vectors) if name == "link_frames" else [b"hello", b""]
    if name == "relay_requests":
        return _relay_seeds()
    if name == "envelopes":
        return [SealedEnvelope(MailboxId(bytes(range(32))), b"ciphertext").to_bytes()]
    if name == "identity_documents":
        return [_document().to_bytes()]
    if name == "contact_cards":
        card = _card()
        return [card.to_bytes(), card.to_text().encode()]
    if name == "contact_proofs":
        return _contact_proof_seeds()
    tx = _transaction()
    return [tx] if name == "transactions" else [_block(()), _block((tx,))]
