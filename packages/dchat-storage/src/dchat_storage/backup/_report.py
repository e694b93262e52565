"""What the repository operations return: plain, frozen records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._manifest import Manifest

__all__ = ("CreateResult", "Problem", "Progress", "PruneResult", "Snapshot", "VerifyReport")

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` (bytes) while an operation runs."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot as listed.

    Attributes:
        id: 32 hex characters; any unique prefix names it on the command line.
        time: When it was taken, seconds since the epoch.
        source: The data directory it was taken of.
        files: Number of regular files.
        size: Total size of those files, in bytes.
    """

    id: str
    time: float
    source: str
    files: int
    size: int

    @property
    def short_id(self) -> str:
        """The first 8 hex characters of the id."""
        return self.id[:8]

    @classmethod
    def of(cls, manifest: Manifest) -> Snapshot:
        """Summarize a manifest."""
        files = [entry for entry in manifest.entries if entry.kind == "file"]
        return cls(
            id=manifest.snapshot_id.hex(),
            time=manifest.time_ns / 1e9,
            source=manifest.source,
            files=len(files),
            size=sum(entry.size for entry in files),
        )


@dataclass(frozen=True, slots=True)
class CreateResult:
    """The outcome of :meth:`Repository.create`.

    Attributes:
        snapshot: The new snapshot.
        chunks: Chunks referenced by the snapshot (with repeats).
        new_chunks: Chunks that were not yet stored, hence written.
        bytes_read: Bytes read from the data directory.
        bytes_written: Bytes written to the destination (new chunks and manifest).
    """

    snapshot: Snapshot
    chunks: int
    new_chunks: int
    bytes_read: int
    bytes_written: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect found by :meth:`Repository.verify`.

    Attributes:
        blob: The blob name (``data/..``, ``snapshots/..``).
        reason: ``"damaged"`` (fails authentication or malformed), ``"missing"``
            or ``"wrong size"``.
        snapshot: The affected snapshot id, if the defect reaches one.
        path: The affected file inside that snapshot, if any.
    """

    blob: str
    reason: str
    snapshot: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = "" if self.snapshot is None else f" (snapshot {self.snapshot[:8]}"
        if self.snapshot is not None:
            where += "" if self.path is None else f", file {self.path}"
            where += ")"
        return f"{self.blob}: {self.reason}{where}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :meth:`Repository.verify`.

    Attributes:
        snapshots: Snapshot manifests read.
        chunks: Chunk blobs read and authenticated.
        bytes_read: Bytes of blobs read.
        problems: Every defect found; empty when the repository is sound.
    """

    snapshots: int
    chunks: int
    bytes_read: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def damaged_snapshots(self) -> frozenset[str]:
        """Ids of the snapshots that cannot be fully restored."""
        return frozenset(p.snapshot for p in self.problems if p.snapshot is not None)


@dataclass(frozen=True, slots=True)
class PruneResult:
    """The outcome of :meth:`Repository.prune`.

    Attributes:
        removed_snapshots: Ids of the snapshots forgotten.
        kept_snapshots: Ids of the snapshots kept.
        removed_chunks: Chunk blobs deleted (no kept snapshot referenced them).
    """

    removed_snapshots: tuple[str, ...]
    kept_snapshots: tuple[str, ...]
    removed_chunks: int
