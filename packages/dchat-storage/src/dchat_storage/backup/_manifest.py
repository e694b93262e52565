"""Snapshot manifests and the repository config: records and their encoding.

Both are canonical CBOR (``dchat_core.canonical_encode``) inside sealed blobs.
Decoding is strict and total: anything that is not a well-formed record raises
:class:`BackupIntegrityError`, and paths are checked so that a manifest can never
name a file outside the restore target.

A manifest entry's ``chunks`` field is one byte string of 36-byte records
(32-byte chunk id, 4-byte big-endian plaintext size), which keeps the CBOR item
count independent of the file size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Final, Literal

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode

from ._chunker import ChunkerParams
from ._errors import BackupIntegrityError, BackupUsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("ChunkRef", "Entry", "Manifest", "RepoConfig")

CHUNK_ID_SIZE: Final = 32
_REF = struct.Struct(">32sI")
_VERSION = 1
_LIMITS = DecodeLimits(max_size=256 << 20, max_depth=8, max_items=1 << 24)
EntryKind = Literal["file", "dir"]


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One chunk of a file: its id and plaintext size."""

    id: bytes
    size: int


@dataclass(frozen=True, slots=True)
class Entry:
    """A file or directory in a snapshot.

    Attributes:
        path: Relative POSIX path inside the data directory (``""`` for its root).
        kind: ``"file"`` or ``"dir"``.
        mode: Permission bits (``st_mode & 0o7777``).
        mtime_ns: Modification time, nanoseconds since the epoch.
        size: File size in bytes (0 for directories).
        digest: BLAKE2b-256 of the whole file (empty for directories).
        chunks: The file's chunks, in order.
    """

    path: str
    kind: EntryKind
    mode: int
    mtime_ns: int
    size: int = 0
    digest: bytes = b""
    chunks: tuple[ChunkRef, ...] = ()

    def encode(self) -> dict[str, Any]:
        """The CBOR map of this entry."""
        refs = b"".join(_REF.pack(ref.id, ref.size) for ref in self.chunks)
        return {
            "path": self.path,
            "kind": self.kind,
            "mode": self.mode,
            "mtime_ns": self.mtime_ns,
            "size": self.size,
            "digest": self.digest,
            "chunks": refs,
        }

    @classmethod
    def decode(cls, raw: Any) -> Entry:
        """Parse and validate one entry map."""
        path, kind = _field(raw, "path", str), _field(raw, "kind", str)
        refs = _field(raw, "chunks", bytes)
        if kind not in ("file", "dir") or len(refs) % _REF.size:
            raise BackupIntegrityError("malformed snapshot entry")
        chunks = tuple(ChunkRef(i, n) for i, n in _REF.iter_unpack(refs))
        entry = cls(
            path=_check_path(path),
            kind="file" if kind == "file" else "dir",
            mode=_field(raw, "mode", int) & 0o7777,
            mtime_ns=_field(raw, "mtime_ns", int),
            size=_field(raw, "size", int),
            digest=_field(raw, "digest", bytes),
            chunks=chunks,
        )
        if entry.size != sum(ref.size for ref in chunks):
            raise BackupIntegrityError("snapshot entry size does not match its chunks")
        return entry


@dataclass(frozen=True, slots=True)
class Manifest:
    """A snapshot: when it was taken, of what, and every entry."""

    snapshot_id: bytes
    time_ns: int
    source: str
    entries: tuple[Entry, ...]

    def encode(self) -> bytes:
        """Canonical CBOR of the manifest (the id is the blob's name, not inside)."""
        return canonical_encode(
            {
                "v": _VERSION,
                "time_ns": self.time_ns,
                "source": self.source,
                "entries": [entry.encode() for entry in self.entries],
            }
        )

    @classmethod
    def decode(cls, snapshot_id: bytes, data: bytes) -> Manifest:
        """Parse a decrypted manifest; :class:`BackupIntegrityError` if malformed."""
        raw = _decode(data)
        if _field(raw, "v", int) != _VERSION:
            raise BackupIntegrityError("unsupported snapshot version")
        entries = _field(raw, "entries", list)
        return cls(
            snapshot_id=snapshot_id,
            time_ns=_field(raw, "time_ns", int),
            source=_field(raw, "source", str),
            entries=tuple(Entry.decode(item) for item in entries),
        )


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """What a repository fixes once, at ``init``: its id and chunker sizes."""

    repo_id: bytes
    chunker: ChunkerParams

    def encode(self) -> bytes:
        """Canonical CBOR of the config."""
        c = self.chunker
        return canonical_encode(
            {"v": _VERSION, "id": self.repo_id, "chunker": [c.min_size, c.avg_size, c.max_size]}
        )

    @classmethod
    def decode(cls, data: bytes) -> RepoConfig:
        """Parse a decrypted config; :class:`BackupIntegrityError` if malformed."""
        raw = _decode(data)
        sizes: Sequence[Any] = _field(raw, "chunker", list)
        if _field(raw, "v", int) != _VERSION or len(sizes) != 3:
            raise BackupIntegrityError("unsupported repository config")
        if not all(isinstance(size, int) for size in sizes):
            raise BackupIntegrityError("malformed repository config")
        try:
            chunker = ChunkerParams(*sizes)
        except BackupUsageError as exc:
            raise BackupIntegrityError(f"malformed repository config: {exc}") from None
        return cls(repo_id=_field(raw, "id", bytes), chunker=chunker)


def _decode(data: bytes) -> Any:
    try:
        raw = canonical_decode(data, _LIMITS)
    except DecodeError as exc:
        raise BackupIntegrityError(f"malformed record: {exc}") from None
    if not isinstance(raw, dict):
        raise BackupIntegrityError("malformed record")
    return raw


def _field(raw: Any, key: str, kind: type[Any]) -> Any:
    value = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BackupIntegrityError(f"malformed record: field {key!r}")
    return value


def _check_path(path: str) -> str:
    """Accept only normalized relative paths: no root, no ``..``, no empty parts.

    ``""`` names the snapshot's root; ``"."`` (no parts at all) is refused, so
    the root has one name only.
    """
    if path == "":
        return path
    parts = PurePosixPath(path).parts
    normal = PurePosixPath(*parts).as_posix() == path
    if not parts or not normal or path.startswith("/") or "\x00" in path or ".." in parts:
        raise BackupIntegrityError("unsafe path in snapshot")
    return path
