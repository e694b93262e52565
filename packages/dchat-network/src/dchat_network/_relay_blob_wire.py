"""Relay protocol messages for attachment blobs (protocol §24, "Relay blob store").

::

    blob_open {"t": "blob_open", "rid": n, "id": blob id(32), "size": n}
              -> {"t": "blob_at", "rid": n, "id": blob id(32), "held": n, "size": n}
    blob_put  {"t": "blob_put", "rid": n, "id": blob id(32), "off": n, "data": bytes}
              -> {"t": "blob_at", ...}
    blob_get  {"t": "blob_get", "rid": n, "id": blob id(32), "off": n, "max": n}
              -> {"t": "blob_data", "rid": n, "off": n, "size": n, "data": bytes}
    blob_del  {"t": "blob_del", "rid": n, "id": blob id(32)}
              -> {"t": "blob_gone", "rid": n, "n": 0 | 1}

A blob is a sealed file, opaque to the relay, stored under its blob id
(BLAKE2b-256 of its bytes). ``blob_open`` starts or resumes an upload charged
to the link's mailbox and answers how many bytes the relay holds (``held`` =
``size``: complete); ``blob_put`` appends a piece of 1 to :data:`MAX_BLOB_PIECE`
bytes at exactly ``held``. The piece that completes the blob has the relay
hash it; a mismatch deletes the upload (``bad_blob``). ``blob_get`` reads up
to ``max`` bytes at ``off`` of a complete blob, for anyone who knows its id.
``blob_del`` deletes a blob (complete or not) that the link's mailbox
uploaded; ``n`` says whether there was one (a disappearing message can take
its file with it).
The messages are plain dataclasses with a ``fields()`` method (their map
without ``rid``); :mod:`._relay` encodes and decodes them with the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, Fields

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "BLOB_DECODERS",
    "MAX_BLOB_PIECE",
    "MAX_BLOB_SIZE",
    "BlobAt",
    "BlobData",
    "BlobDelete",
    "BlobGone",
    "BlobGet",
    "BlobOpen",
    "BlobPut",
)

MAX_BLOB_PIECE: Final = 512 * 1024
#: The largest blob size the protocol can name (a relay's own limit is lower).
MAX_BLOB_SIZE: Final = 2**40
_MAX_RID: Final = 2**63 - 1
_ID: Final = 32


@dataclass(frozen=True, slots=True)
class BlobOpen:
    """Start or resume uploading blob ``blob_id`` of ``size`` bytes (the link's mailbox pays)."""

    rid: int
    blob_id: bytes
    size: int

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "blob_open", "id": self.blob_id, "size": self.size}


@dataclass(frozen=True, slots=True)
class BlobPut:
    """Append ``data`` to blob ``blob_id`` at ``offset`` (the bytes the relay holds)."""

    rid: int
    blob_id: bytes
    offset: int
    data: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "blob_put", "id": self.blob_id, "off": self.offset, "data": self.data}


@dataclass(frozen=True, slots=True)
class BlobAt:
    """The relay holds ``held`` of the ``size`` bytes of blob ``blob_id``."""

    rid: int
    blob_id: bytes
    held: int
    size: int

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "blob_at", "id": self.blob_id, "held": self.held, "size": self.size}


@dataclass(frozen=True, slots=True)
class BlobGet:
    """Read up to ``limit`` bytes of complete blob ``blob_id`` from ``offset``."""

    rid: int
    blob_id: bytes
    offset: int
    limit: int

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "blob_get", "id": self.blob_id, "off": self.offset, "max": self.limit}


@dataclass(frozen=True, slots=True)
class BlobData:
    """``data``: the blob's bytes from ``offset``; the blob has ``size`` bytes in all."""

    rid: int
    offset: int
    size: int
    data: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "blob_data", "off": self.offset, "size": self.size, "data": self.data}


@dataclass(frozen=True, slots=True)
class BlobDelete:
    """Delete blob ``blob_id``, which the link's mailbox uploaded."""

    rid: int
    blob_id: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "blob_del", "id": self.blob_id}


@dataclass(frozen=True, slots=True)
class BlobGone:
    """``deleted`` (0 or 1) blobs were deleted."""

    rid: int
    deleted: int

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "blob_gone", "n": self.deleted}


def _fields(value: object, *names: str) -> tuple[Fields, int]:
    fields = Fields(value, "relay message", frozenset({"t", "rid", *names}))
    return fields, fields.get_int("rid", hi=_MAX_RID)


def _open(value: object) -> BlobOpen:
    f, rid = _fields(value, "id", "size")
    return BlobOpen(rid, f.get_bytes("id", size=_ID), f.get_int("size", lo=1, hi=MAX_BLOB_SIZE))


def _put(value: object) -> BlobPut:
    f, rid = _fields(value, "id", "off", "data")
    data = f.get_bytes("data", max_size=MAX_BLOB_PIECE)
    if not data:
        raise DecodeError("a blob piece has at least one byte")
    return BlobPut(rid, f.get_bytes("id", size=_ID), f.get_int("off", hi=MAX_BLOB_SIZE), data)


def _at(value: object) -> BlobAt:
    f, rid = _fields(value, "id", "held", "size")
    size = f.get_int("size", lo=1, hi=MAX_BLOB_SIZE)
    return BlobAt(rid, f.get_bytes("id", size=_ID), f.get_int("held", hi=size), size)


def _get(value: object) -> BlobGet:
    f, rid = _fields(value, "id", "off", "max")
    offset, limit = f.get_int("off", hi=MAX_BLOB_SIZE), f.get_int("max", lo=1, hi=MAX_BLOB_PIECE)
    return BlobGet(rid, f.get_bytes("id", size=_ID), offset, limit)


def _data(value: object) -> BlobData:
    f, rid = _fields(value, "off", "size", "data")
    size = f.get_int("size", lo=1, hi=MAX_BLOB_SIZE)
    offset, data = f.get_int("off", hi=size), f.get_bytes("data", max_size=MAX_BLOB_PIECE)
    if offset + len(data) > size:
        raise DecodeError("blob data runs past the blob's size")
    return BlobData(rid, offset, size, data)


def _del(value: object) -> BlobDelete:
    f, rid = _fields(value, "id")
    return BlobDelete(rid, f.get_bytes("id", size=_ID))


def _gone(value: object) -> BlobGone:
    f, rid = _fields(value, "n")
    return BlobGone(rid, f.get_int("n", hi=1))


BLOB_DECODERS: Final[dict[str, Callable[[object], object]]] = {
    "blob_open": _open,
    "blob_put": _put,
    "blob_at": _at,
    "blob_get": _get,
    "blob_data": _data,
    "blob_del": _del,
    "blob_gone": _gone,
}
