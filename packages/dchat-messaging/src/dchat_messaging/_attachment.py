"""The attachment descriptor: what a ratcheted message says about an attached file.

A message with an attachment carries, inside the ratchet (so only the
recipient's devices read it), the body (protocol §24, "Attachment body")::

    {"t": "att", "v": 1, "kind": str, ["text": caption],
     file kinds (image, video, audio, voice, document):
       "blob": blob id(32), "key": file key(32), "size": content bytes,
       "sealed": sealed bytes, "type": media type, "relay": the relay holding the blob,
       ["name": file name], ["thumb": JPEG], ["w": px, "h": px], ["dur": ms], ["wave": bytes]
     location:
       "lat": microdegrees, "lon": microdegrees, ["label": str]}

The blob is the file sealed under ``key`` (:mod:`dchat_crypto.hazmat`'s file
cipher); ``blob`` is its BLAKE2b-256 id, ``sealed`` its length, ``size`` the
content's. A location has no blob (no map tile is ever fetched for it).
The recipient's node keeps each descriptor with the message it came with
(:class:`AttachmentBook`, in the engine's state store, so sealed at rest,
written in the transaction that stores the message) and its fate: pending,
stored after re-validation, or refused with a code. Decoding checks shapes
and bounds only: whether the kind takes the declared
type, and whether the bytes are what was declared, is checked against the
storage upload rules by :mod:`dchat_messaging.attachments` (before sealing on
the sender, after opening on the recipient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

if TYPE_CHECKING:
    from ._store import StateStore

__all__ = (
    "ATTACHMENT_KEY",
    "ATTACHMENT_KINDS",
    "MAX_CAPTION",
    "MAX_THUMBNAIL",
    "Attachment",
    "AttachmentBook",
    "AttachmentEntry",
)

FILE_KINDS: Final = ("audio", "document", "image", "video", "voice")
ATTACHMENT_KINDS: Final = (*FILE_KINDS, "location")
MAX_CAPTION: Final = 4000
MAX_THUMBNAIL: Final = 32 * 1024
MAX_WAVEFORM: Final = 128
MAX_NAME: Final = 255
MAX_DURATION_MS: Final = 24 * 3600 * 1000
_MAX_SIZE: Final = 2**40
_DEGREE: Final = 1_000_000
_FIELDS: Final = frozenset(
    {"t", "v", "kind", "text", "blob", "key", "size", "sealed", "type", "relay", "name"}
    | {"thumb", "w", "h", "dur", "wave", "lat", "lon", "label"}
)
_LOCATION: Final = frozenset({"t", "v", "kind", "text", "lat", "lon", "label"})


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment as the message describes it.

    Attributes:
        kind: ``image``, ``video``, ``audio``, ``voice``, ``document`` or ``location``.
        caption: Text shown with it (may be empty).
        blob_id: The sealed file's id (file kinds; empty for a location).
        key: The file key (32 bytes; empty for a location).
        size: The content's length in bytes.
        sealed_size: The sealed file's length (what the relay holds).
        media_type: The declared media type.
        relay: The relay that holds the blob (``[NODEID@]HOST:PORT``).
        name: The file name (may be empty).
        thumbnail: A JPEG thumbnail (images; may be empty).
        width: Pixels, for images (0: not given).
        height: Pixels, for images (0: not given).
        duration_ms: For voice notes, audio and video (0: not given).
        waveform: For voice notes: up to 128 loudness samples, 0-255 each.
        latitude_e6: A location's latitude in microdegrees.
        longitude_e6: A location's longitude in microdegrees.
        label: A location's label (may be empty).
    """

    kind: str
    caption: str = ""
    blob_id: bytes = b""
    key: bytes = b""
    size: int = 0
    sealed_size: int = 0
    media_type: str = ""
    relay: str = ""
    name: str = ""
    thumbnail: bytes = b""
    width: int = 0
    height: int = 0
    duration_ms: int = 0
    waveform: bytes = b""
    latitude_e6: int = 0
    longitude_e6: int = 0
    label: str = ""

    @classmethod
    def location(cls, latitude: float, longitude: float, label: str = "") -> Attachment:
        """A location (degrees); checked like a received one.

        Raises:
            ValueError: latitude outside -90..90, longitude outside -180..180,
                or a label over 200 characters.
        """
        att = cls(
            "location",
            latitude_e6=round(latitude * _DEGREE),
            longitude_e6=round(longitude * _DEGREE),
            label=label,
        )
        return cls.from_map(att.to_map())

    @property
    def is_location(self) -> bool:
        """Whether this is a location (no blob)."""
        return self.kind == "location"

    def summary(self) -> str:
        """A one-line description, the message's text when there is no caption."""
        if self.is_location:
            where = f"{self.latitude_e6 / _DEGREE:.6f},{self.longitude_e6 / _DEGREE:.6f}"
            return f"[location {where}{' ' + self.label if self.label else ''}]"
        name = f" {self.name}" if self.name else ""
        return f"[{self.kind}{name} {self.media_type} {self.size} bytes]"

    def to_map(self) -> dict[str, object]:
        """The body map (without caption defaults: absent fields are left out)."""
        value: dict[str, object] = {"t": "att", "v": 1, "kind": self.kind}
        if self.caption:
            value["text"] = self.caption
        if self.is_location:
            value["lat"], value["lon"] = self.latitude_e6, self.longitude_e6
            if self.label:
                value["label"] = self.label
            return value
        value |= {
            "blob": self.blob_id,
            "key": self.key,
            "size": self.size,
            "sealed": self.sealed_size,
            "type": self.media_type,
            "relay": self.relay,
        }
        optional = {
            "name": self.name,
            "thumb": self.thumbnail,
            "dur": self.duration_ms,
            "wave": self.waveform,
        }
        value |= {k: v for k, v in optional.items() if v}
        if self.width and self.height:
            value["w"], value["h"] = self.width, self.height
        return value

    @classmethod
    def from_map(cls, raw: object) -> Attachment:
        """Parse a body map.

        Raises:
            DecodeError: any field missing, unknown, of the wrong type or out of bounds.
        """
        f = Fields(raw, "attachment", _FIELDS)
        if f.get_int("v", lo=1, hi=1) != 1 or f.get_str("t", max_len=8) != "att":
            raise ValueError("attachment version")
        kind = f.get_str("kind", max_len=16)
        caption = f.get_str("text", max_len=MAX_CAPTION) if f.has("text") else ""
        if kind == "location":
            f = Fields(raw, "location", _LOCATION)
            return cls(
                kind,
                caption,
                latitude_e6=f.get_int("lat", lo=-90 * _DEGREE, hi=90 * _DEGREE),
                longitude_e6=f.get_int("lon", lo=-180 * _DEGREE, hi=180 * _DEGREE),
                label=f.get_str("label", max_len=200) if f.has("label") else "",
            )
        if kind not in FILE_KINDS:
            raise ValueError("attachment kind")
        width = f.get_int("w", lo=1, hi=1 << 20) if f.has("w") else 0
        height = f.get_int("h", lo=1, hi=1 << 20) if f.has("h") else 0
        if bool(width) != bool(height):
            raise ValueError("width without height")
        return cls(
            kind,
            caption,
            blob_id=f.get_bytes("blob", size=32),
            key=f.get_bytes("key", size=32),
            size=f.get_int("size", hi=_MAX_SIZE),
            sealed_size=f.get_int("sealed", lo=1, hi=_MAX_SIZE),
            media_type=f.get_str("type", max_len=127),
            relay=f.get_str("relay", max_len=300),
            name=f.get_str("name", max_len=MAX_NAME) if f.has("name") else "",
            thumbnail=f.get_bytes("thumb", max_size=MAX_THUMBNAIL) if f.has("thumb") else b"",
            width=width,
            height=height,
            duration_ms=f.get_int("dur", lo=1, hi=MAX_DURATION_MS) if f.has("dur") else 0,
            waveform=f.get_bytes("wave", max_size=MAX_WAVEFORM) if f.has("wave") else b"",
        )


ATTACHMENT_KEY: Final = "user.att."
"""State key prefix of a message's attachment record (then the message id in hex)."""
_STATES: Final = frozenset({"pending", "stored", "refused"})
_RECORD: Final = frozenset({"att", "st", "code", "local"})
_RECORD_LIMITS: Final = DecodeLimits(max_size=96 * 1024, max_depth=3, max_items=64)


@dataclass(frozen=True, slots=True)
class AttachmentEntry:
    """A message's attachment as this node keeps it (sealed at rest, like all state).

    Attributes:
        attachment: The descriptor the message carried.
        state: ``pending`` (not fetched yet), ``stored`` (fetched, opened and
            re-validated: ``local`` names it in the node's attachment store) or
            ``refused`` (``code`` says why; the message and descriptor stay).
        code: Why it was refused (an error code), else empty.
        local: The node's attachment id once stored (sender: from the start).
    """

    attachment: Attachment
    state: str = "pending"
    code: str = ""
    local: bytes = b""

    def to_bytes(self) -> bytes:
        """The stored form."""
        value = {"att": self.attachment.to_map(), "st": self.state, "code": self.code}
        return canonical_encode(value | {"local": self.local})

    @classmethod
    def from_bytes(cls, data: bytes) -> AttachmentEntry:
        """Parse the stored form.

        Raises:
            DecodeError: malformed (stored state is trusted, so this is corruption).
        """
        f = Fields(canonical_decode(data, _RECORD_LIMITS), "attachment record", _RECORD)
        state = f.get_str("st", max_len=16)
        if state not in _STATES:
            raise DecodeError("attachment record: unknown state")
        attachment = Attachment.from_map(f.raw("att"))
        return cls(attachment, state, f.get_str("code", max_len=64), f.get_bytes("local"))


class AttachmentBook:
    """The attachments of this node's messages, in the messaging state store."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def put(self, message_id: bytes, entry: AttachmentEntry) -> None:
        """Keep (or replace) a message's attachment record."""
        self._store.put_state(ATTACHMENT_KEY + message_id.hex(), entry.to_bytes())

    def get(self, message_id: bytes) -> AttachmentEntry | None:
        """A message's attachment record, or None."""
        data = self._store.get_state(ATTACHMENT_KEY + message_id.hex())
        return None if data is None else AttachmentEntry.from_bytes(data)

    def delete(self, message_id: bytes) -> None:
        """Forget a message's attachment record (its key with it)."""
        self._store.delete_state(ATTACHMENT_KEY + message_id.hex())
