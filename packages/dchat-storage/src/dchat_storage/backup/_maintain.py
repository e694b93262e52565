"""Checking and pruning a repository.

``verify`` reads every snapshot manifest and every chunk blob, referenced or
not, and authenticates each one (AEAD tag, blob id bound as associated data,
keyed hash of the plaintext equal to the chunk id, size as recorded). A defect
is reported with the snapshots and files it reaches, so the user knows which
restores would fail.

``prune`` forgets all but the newest snapshots and then deletes the chunks that
no remaining snapshot references. It reads every kept manifest *before*
deleting anything and stops if one is unreadable: a chunk is only deleted when
the set of references is known in full. Running it twice changes nothing more.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from ._errors import BackupIntegrityError, BackupUsageError
from ._report import Problem, PruneResult, VerifyReport
from ._store import chunk_name, snapshot_name

if TYPE_CHECKING:
    from ._manifest import Manifest
    from ._report import Progress
    from ._store import BlobStore

__all__ = ("prune", "verify")

_Ref = tuple[str, str]  # (snapshot id, path)


def verify(store: BlobStore, *, progress: Progress | None = None) -> VerifyReport:
    """Authenticate every blob; see :meth:`Repository.verify`."""
    problems: list[Problem] = []
    manifests = _readable_manifests(store, problems)
    refs: dict[bytes, list[_Ref]] = defaultdict(list)
    sizes: dict[bytes, int] = {}
    for manifest in manifests:
        for entry in manifest.entries:
            for ref in entry.chunks:
                refs[ref.id].append((manifest.snapshot_id.hex(), entry.path))
                sizes[ref.id] = ref.size
    stored = store.chunk_ids()
    for chunk_id in sorted(refs.keys() - stored):
        problems += _affected(chunk_name(chunk_id), "missing", refs[chunk_id])
    bytes_read = 0
    for done, chunk_id in enumerate(sorted(stored), 1):
        reason = None
        try:
            data = store.chunk(chunk_id)
            bytes_read += len(data)
            if chunk_id in sizes and len(data) != sizes[chunk_id]:
                reason = "wrong size"
        except BackupIntegrityError:
            reason = "damaged"
        if reason is not None:
            problems += _affected(chunk_name(chunk_id), reason, refs.get(chunk_id, []))
        if progress is not None:
            progress(done, len(stored))
    return VerifyReport(len(manifests), len(stored), bytes_read, tuple(problems))


def _readable_manifests(store: BlobStore, problems: list[Problem]) -> list[Manifest]:
    manifests = []
    for snapshot_id in store.snapshot_ids():
        try:
            manifests.append(store.manifest(snapshot_id))
        except BackupIntegrityError:
            problems.append(Problem(snapshot_name(snapshot_id), "damaged", snapshot_id.hex()))
    return manifests


def _affected(blob: str, reason: str, refs: list[_Ref]) -> list[Problem]:
    if not refs:
        return [Problem(blob, reason)]
    return [Problem(blob, reason, snapshot, path) for snapshot, path in dict.fromkeys(refs)]


def prune(store: BlobStore, keep_last: int) -> PruneResult:
    """Forget old snapshots and delete unreferenced chunks; see :meth:`Repository.prune`."""
    if keep_last < 1:
        raise BackupUsageError("keep_last must be at least 1")
    manifests = []
    for snapshot_id in store.snapshot_ids():
        try:
            manifests.append(store.manifest(snapshot_id))
        except BackupIntegrityError as exc:
            raise BackupIntegrityError(
                f"snapshot {snapshot_id.hex()[:8]} is damaged ({exc}); nothing was pruned"
            ) from exc
    manifests.sort(key=lambda m: (m.time_ns, m.snapshot_id), reverse=True)
    kept, dropped = manifests[:keep_last], manifests[keep_last:]
    referenced = {ref.id for m in kept for entry in m.entries for ref in entry.chunks}
    for manifest in dropped:
        store.delete_manifest(manifest.snapshot_id)
    unreferenced = store.chunk_ids() - referenced
    for chunk_id in sorted(unreferenced):
        store.delete_chunk(chunk_id)
    return PruneResult(
        removed_snapshots=tuple(m.snapshot_id.hex() for m in dropped),
        kept_snapshots=tuple(m.snapshot_id.hex() for m in kept),
        removed_chunks=len(unreferenced),
    )
