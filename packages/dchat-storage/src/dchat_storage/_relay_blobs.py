"""A relay's blob store: sealed attachment files beside the mailboxes, as plain files.

Theory of operation. A blob is a sealed file (protocol §24) that a user node
uploads to its own relay; the relay cannot read it and stores it under its
*blob id*, BLAKE2b-256 of its bytes (:func:`blob_hasher`). Each blob is two
files in one directory: ``<id>.json`` (owner mailbox, declared size, times;
written atomically first) and the data, ``<id>.part`` while the upload is
under way, renamed to ``<id>.blob`` once complete and verified. So:

* an upload is *resumable*: :meth:`RelayBlobStore.begin` answers how many
  bytes are held, and :meth:`RelayBlobStore.write` takes bytes only at exactly
  that offset (a piece lost in transit is simply sent again);
* an upload is *verified*: its bytes are hashed as they arrive (after a
  restart, the held prefix is re-read once), and when the last one arrives
  the hash must be the id; a mismatch deletes it (nothing half-true is ever
  served);
* nothing is held in memory beyond one piece (at most :data:`MAX_PIECE`);
* quotas are counted at :meth:`begin`, from the declared size: a mailbox's
  blobs, complete or partial, stay under ``mailbox_quota`` and all of them
  under ``disk_budget``; a blob over ``max_size`` is refused outright;
* blobs live ``ttl`` seconds from completion and an unfinished upload
  ``partial_ttl`` seconds from its last piece; :meth:`sweep` deletes them (and
  :meth:`begin` sweeps at most once a minute, so no timer is needed).

The index (id -> owner, size, state, times) is kept in memory and rebuilt
from the ``.json`` files when the store opens; data files without metadata
(a crash between the two writes) are removed then. Time is always passed in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._errors import (
    BlobHashMismatchError,
    BlobOffsetError,
    InvalidArgumentError,
    NotFoundError,
    QuotaExceededError,
    StorageFullError,
    UploadTooLargeError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("BLOB_ID_SIZE", "MAX_PIECE", "BlobLimits", "BlobState", "RelayBlobStore", "blob_hasher")

BLOB_ID_SIZE: Final = 32
MAX_PIECE: Final = 512 * 1024
"""The most bytes one write or read moves (it fits one link message with room to spare)."""
MiB: Final = 1024 * 1024
_SWEEP_EVERY: Final = 60.0
_READ: Final = 1024 * 1024


def blob_hasher() -> Any:
    """A fresh BLAKE2b-256 hasher personalized for blob ids (``dchat-blob``)."""
    return hashlib.blake2b(digest_size=BLOB_ID_SIZE, person=b"dchat-blob")


@dataclass(frozen=True, slots=True)
class BlobLimits:
    """What a relay keeps of blobs.

    Attributes:
        max_size: The largest blob, bytes (232 MiB: a 200 MiB video sealed and padded).
        mailbox_quota: All blobs one mailbox's link uploaded, bytes (1 GiB).
        disk_budget: All blobs together, bytes (16 GiB).
        ttl: Seconds a complete blob is kept (14 days).
        partial_ttl: Seconds an unfinished upload is kept after its last piece (one day).
    """

    max_size: int = 232 * MiB
    mailbox_quota: int = 1024 * MiB
    disk_budget: int = 16 * 1024 * MiB
    ttl: float = 14 * 24 * 3600.0
    partial_ttl: float = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class BlobState:
    """One blob as the index knows it.

    Attributes:
        owner: The mailbox whose link uploaded it (whose quota it counts against).
        size: Its declared (complete: actual) size.
        held: Bytes stored so far (``size`` once complete).
        done: Complete and verified.
        touched: When it completed, or its last piece arrived.
    """

    owner: bytes
    size: int
    held: int
    done: bool
    touched: float


class RelayBlobStore:
    """Blobs as files in ``directory`` (created 0700 if missing).

    Args:
        directory: Where the blobs live (nothing else should).
        limits: Size limit, quotas and lifetimes.
    """

    def __init__(self, directory: str | os.PathLike[str], limits: BlobLimits | None = None) -> None:
        self.limits = limits or BlobLimits()
        self._dir = Path(directory)
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._index: dict[bytes, BlobState] = {}
        self._hashers: dict[bytes, Any] = {}  # running hashes of uploads under way
        self._swept = float("-inf")
        self._load()

    # -- queries -----------------------------------------------------------------

    def state(self, blob_id: bytes) -> BlobState | None:
        """The blob's state, or None."""
        return self._index.get(blob_id)

    def usage(self, owner: bytes) -> int:
        """Bytes reserved by ``owner``'s blobs (declared sizes, complete or not)."""
        return sum(s.size for s in self._index.values() if s.owner == owner)

    def total(self) -> int:
        """Bytes reserved by all blobs."""
        return sum(s.size for s in self._index.values())

    # -- upload ------------------------------------------------------------------

    def begin(self, owner: bytes, blob_id: bytes, size: int, now: float) -> int:
        """Start or resume an upload; returns the bytes already held (``size``: complete).

        Raises:
            InvalidArgumentError: a malformed id, a size out of range, or a blob
                with this id but another size.
            UploadTooLargeError: ``size`` is over ``max_size``.
            QuotaExceededError: ``owner``'s blobs would pass ``mailbox_quota``.
            StorageFullError: all blobs would pass ``disk_budget``.
        """
        _check_id(blob_id)
        if now - self._swept >= _SWEEP_EVERY or now < self._swept:
            self.sweep(now)
        known = self._index.get(blob_id)
        if known is not None:
            if known.size != size:
                raise InvalidArgumentError("a blob with this id has another size")
            return known.held
        if not 0 < size <= self.limits.max_size:
            if size > self.limits.max_size:
                raise UploadTooLargeError(f"a blob may be at most {self.limits.max_size} bytes")
            raise InvalidArgumentError("a blob has at least one byte")
        if self.usage(owner) + size > self.limits.mailbox_quota:
            raise QuotaExceededError(f"over the quota of {self.limits.mailbox_quota} blob bytes")
        if self.total() + size > self.limits.disk_budget:
            raise StorageFullError("the relay's blob space is full")
        state = BlobState(owner, size, 0, False, now)
        self._write_meta(blob_id, state)
        self._path(blob_id, ".part").touch(mode=0o600)
        self._index[blob_id] = state
        return 0

    def write(self, owner: bytes, blob_id: bytes, offset: int, data: bytes, now: float) -> int:
        """Append ``data`` at ``offset`` (the bytes held); returns the bytes now held.

        The piece that completes the blob has it verified and published.

        Raises:
            NotFoundError: no upload of this id by ``owner`` under way.
            BlobOffsetError: ``offset`` is not the bytes held (``.held`` says them).
            InvalidArgumentError: the piece is empty, over :data:`MAX_PIECE`, or
                runs past the declared size.
            BlobHashMismatchError: the complete data does not hash to the id
                (the upload is deleted).
        """
        state = self._index.get(blob_id)
        if state is None or state.done or state.owner != owner:
            raise NotFoundError("no such upload under way")
        if offset != state.held:
            raise BlobOffsetError(state.held)
        if not 0 < len(data) <= MAX_PIECE or offset + len(data) > state.size:
            raise InvalidArgumentError("a piece is 1 to 512 KiB, within the declared size")
        path = self._path(blob_id, ".part")
        hasher = self._hashers.pop(blob_id, None)
        if hasher is None:  # first piece, or the relay restarted: hash what is held
            hasher = blob_hasher()
            for chunk in self._chunks(path, 0, offset):
                hasher.update(chunk)
        with path.open("r+b") as file:
            file.seek(offset)
            file.write(data)
            file.truncate()
            if offset + len(data) == state.size:
                file.flush()
                os.fsync(file.fileno())
        hasher.update(data)
        state = replace(state, held=offset + len(data), touched=now)
        self._index[blob_id] = state
        if state.held == state.size:
            self._complete(blob_id, state, hasher.digest(), now)
        else:
            self._hashers[blob_id] = hasher
        return state.held

    def _complete(self, blob_id: bytes, state: BlobState, digest: bytes, now: float) -> None:
        if digest != blob_id:
            self._remove(blob_id)
            raise BlobHashMismatchError("the blob's bytes do not hash to its id")
        done = replace(state, done=True, touched=now)
        self._write_meta(blob_id, done)
        os.replace(self._path(blob_id, ".part"), self._path(blob_id, ".blob"))
        self._index[blob_id] = done

    # -- download ----------------------------------------------------------------

    def read(self, blob_id: bytes, offset: int, length: int) -> tuple[bytes, int]:
        """Up to ``length`` (at most :data:`MAX_PIECE`) bytes from ``offset``, and the size.

        Raises:
            NotFoundError: no complete blob of this id.
            InvalidArgumentError: ``offset`` past the end or ``length`` out of range.
        """
        state = self._index.get(blob_id)
        if state is None or not state.done:
            raise NotFoundError("no such blob")
        if not 0 <= offset <= state.size or not 0 < length <= MAX_PIECE:
            raise InvalidArgumentError("a read is 1 to 512 KiB from within the blob")
        with self._path(blob_id, ".blob").open("rb") as file:
            file.seek(offset)
            return file.read(min(length, state.size - offset)), state.size

    # -- lifetime ----------------------------------------------------------------

    def sweep(self, now: float) -> int:
        """Delete expired blobs and abandoned uploads; returns how many went."""
        self._swept = now
        gone = [
            blob_id
            for blob_id, s in self._index.items()
            if now - s.touched > (self.limits.ttl if s.done else self.limits.partial_ttl)
        ]
        for blob_id in gone:
            self._remove(blob_id)
        return len(gone)

    def delete(self, owner: bytes, blob_id: bytes) -> bool:
        """Delete ``owner``'s blob (complete or not); whether there was one."""
        state = self._index.get(blob_id)
        if state is None or state.owner != owner:
            return False
        self._remove(blob_id)
        return True

    # -- files -------------------------------------------------------------------

    def _path(self, blob_id: bytes, suffix: str) -> Path:
        return self._dir / (blob_id.hex() + suffix)

    def _write_meta(self, blob_id: bytes, state: BlobState) -> None:
        meta = {
            "owner": state.owner.hex(),
            "size": state.size,
            "done": state.done,
            "touched": state.touched,
        }
        tmp = self._path(blob_id, ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(meta, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self._path(blob_id, ".json"))

    def _remove(self, blob_id: bytes) -> None:
        self._index.pop(blob_id, None)
        self._hashers.pop(blob_id, None)
        for suffix in (".part", ".blob", ".json"):
            with contextlib.suppress(FileNotFoundError):
                self._path(blob_id, suffix).unlink()

    def _load(self) -> None:
        for path in self._dir.iterdir():
            stem, suffix = path.stem, path.suffix
            if suffix == ".json":
                self._load_one(path)
            elif suffix == ".tmp" or not (self._dir / (stem + ".json")).exists():
                path.unlink()

    def _load_one(self, path: Path) -> None:
        try:
            blob_id = bytes.fromhex(path.stem)
            meta = json.loads(path.read_text())
            owner, size = bytes.fromhex(meta["owner"]), int(meta["size"])
            done, touched = bool(meta["done"]), float(meta["touched"])
            _check_id(blob_id)
        except (ValueError, KeyError, TypeError, OSError, InvalidArgumentError):
            path.unlink()
            return
        data = self._path(blob_id, ".blob" if done else ".part")
        if not data.exists():
            self._remove(blob_id)
            return
        held = min(data.stat().st_size, size)
        self._index[blob_id] = BlobState(owner, size, held, done, touched)

    @staticmethod
    def _chunks(path: Path, offset: int, length: int) -> Iterator[bytes]:
        with path.open("rb") as file:
            file.seek(offset)
            while length > 0 and (chunk := file.read(min(_READ, length))):
                length -= len(chunk)
                yield chunk


def _check_id(blob_id: bytes) -> None:
    if not isinstance(blob_id, bytes) or len(blob_id) != BLOB_ID_SIZE:
        raise InvalidArgumentError(f"a blob id is {BLOB_ID_SIZE} bytes")
