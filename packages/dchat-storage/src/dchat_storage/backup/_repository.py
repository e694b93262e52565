"""The repository: unlocking it and the operations on it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from dchat_core import SystemClock
from dchat_crypto import KdfParams

from ._chunker import Chunker, ChunkerParams
from ._create import create_snapshot
from ._crypto import RepositoryKeys
from ._errors import BackupAuthenticationError, BackupUsageError, SnapshotNotFoundError
from ._maintain import prune, verify
from ._manifest import RepoConfig
from ._report import Snapshot
from ._restore import check_empty_target, restore_manifest
from ._store import CONFIG, KEYS, BlobStore

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dchat_core import Clock

    from ._destination import BackupDestination
    from ._manifest import Manifest
    from ._report import CreateResult, Progress, PruneResult, VerifyReport

__all__ = ("Repository",)

LATEST = "latest"


def _secret(passphrase: str | bytes) -> bytes:
    return passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)


class Repository:
    """An unlocked backup repository on a destination.

    Obtain one with :meth:`init` (a new repository) or :meth:`open`. Every
    method is synchronous and blocking; call them from a worker thread under trio.
    One writer at a time: do not run :meth:`prune` while another process runs
    :meth:`create` on the same repository.
    """

    def __init__(self, store: BlobStore, config: RepoConfig) -> None:
        """Wrap an unlocked store; use :meth:`init` or :meth:`open`."""
        self._store = store
        self.config = config
        self._chunker = Chunker(config.chunker, store.keys.chunker_key)

    @classmethod
    def init(
        cls,
        destination: BackupDestination,
        passphrase: str | bytes,
        *,
        chunker: ChunkerParams = ChunkerParams.DEFAULT,
        kdf: KdfParams = KdfParams.DEFAULT,
    ) -> Repository:
        """Create a repository with a fresh random master key.

        Args:
            destination: Where to store it; must not hold a repository yet.
            passphrase: Wraps the master key (Argon2id); needed for every later open.
            chunker: Chunk size bounds, fixed for the repository's lifetime.
            kdf: Argon2id cost; keep the default outside tests.

        Raises:
            BackupUsageError: The destination holds a repository already.
            BackupIOError: The destination cannot be written.
        """
        if destination.exists(CONFIG) or destination.list(KEYS):
            raise BackupUsageError("a backup repository exists there already")
        keys = RepositoryKeys.generate()
        store = BlobStore(destination, keys)
        config = RepoConfig(repo_id=os.urandom(16), chunker=chunker)
        store.put_config(config)
        key_name = f"{KEYS}/{secrets.token_hex(8)}"
        destination.put(key_name, keys.wrap(_secret(passphrase), kdf))
        return cls(store, config)

    @classmethod
    def open(cls, destination: BackupDestination, passphrase: str | bytes) -> Repository:
        """Unlock an existing repository.

        Raises:
            BackupUsageError: There is no repository at ``destination``.
            BackupAuthenticationError: No key file opens with ``passphrase`` (a
                wrong passphrase and a tampered key file look the same).
            BackupIntegrityError: The repository config is missing or damaged.
        """
        names = destination.list(KEYS)
        if not names:
            raise BackupUsageError("no backup repository there (run init first)")
        secret = _secret(passphrase)
        for name in names:
            try:
                keys = RepositoryKeys.unwrap(destination.get(name), secret)
            except BackupAuthenticationError:
                continue
            store = BlobStore(destination, keys)
            return cls(store, store.config())
        raise BackupAuthenticationError

    def create(
        self,
        data_dir: str | os.PathLike[str],
        *,
        exclude: Iterable[str | os.PathLike[str]] = (),
        clock: Clock | None = None,
        progress: Progress | None = None,
    ) -> CreateResult:
        """Take a snapshot of a node's data directory.

        SQLite databases are copied consistently with the online backup API, so
        this is safe while the node runs (see ``_source``).

        Args:
            data_dir: The directory to back up.
            exclude: Paths inside it to leave out (e.g. a repository kept there).
            clock: Source of the snapshot's timestamp (the system clock by default).
            progress: Called with ``(bytes done, bytes total)``.

        Raises:
            BackupUsageError: ``data_dir`` is not a directory.
            BackupIOError: A file cannot be read or the destination cannot be written.
        """
        source = Path(data_dir).resolve()
        time_ns = int((clock or SystemClock()).now() * 1e9)
        return create_snapshot(
            self._store,
            self._chunker,
            source,
            time_ns=time_ns,
            exclude=frozenset(Path(path).resolve() for path in exclude),
            progress=progress,
        )

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first.

        Raises:
            BackupIntegrityError: A manifest is damaged (``verify`` says which).
        """
        return [Snapshot.of(m) for m in self._manifests()]

    def _manifests(self) -> list[Manifest]:
        manifests = [self._store.manifest(i) for i in self._store.snapshot_ids()]
        return sorted(manifests, key=lambda m: (m.time_ns, m.snapshot_id))

    def _find(self, snapshot: str) -> Manifest:
        ids = self._store.snapshot_ids()
        if snapshot == LATEST:
            manifests = self._manifests()
            if not manifests:
                raise SnapshotNotFoundError("the repository has no snapshot")
            return manifests[-1]
        prefix = snapshot.lower()
        matches = [i for i in ids if i.hex().startswith(prefix)] if prefix else []
        if len(matches) != 1:
            detail = "no" if not matches else "more than one"
            raise SnapshotNotFoundError(f"{detail} snapshot matches {snapshot!r}")
        return self._store.manifest(matches[0])

    def restore(
        self,
        snapshot: str,
        target: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
    ) -> Snapshot:
        """Restore a snapshot into ``target``, a missing path or an empty directory.

        Every chunk is authenticated and every file's whole-file hash checked
        before the file gets its final name; modes and times are restored.

        Args:
            snapshot: A snapshot id, a unique prefix of one, or ``"latest"``.
            target: Where to restore.
            progress: Called with ``(bytes done, bytes total)``.

        Returns:
            The restored snapshot.

        Raises:
            BackupUsageError: ``target`` exists and is not an empty directory.
            SnapshotNotFoundError: No (unique) snapshot matches ``snapshot``.
            BackupIntegrityError: A blob needed is missing or damaged.
            BackupIOError: ``target`` cannot be written.
        """
        path = Path(target)
        check_empty_target(path)
        manifest = self._find(snapshot)
        restore_manifest(self._store, manifest, path, progress=progress)
        return Snapshot.of(manifest)

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """Read and authenticate every blob in the repository.

        Args:
            progress: Called with ``(chunks done, chunks total)``.

        Returns:
            A report; :attr:`VerifyReport.ok` is False if anything is missing,
            damaged or truncated, and each problem names what it affects.
        """
        return verify(self._store, progress=progress)

    def prune(self, *, keep_last: int) -> PruneResult:
        """Keep the ``keep_last`` newest snapshots; delete the rest and unused chunks.

        Idempotent; a chunk that a kept snapshot references is never deleted.

        Raises:
            BackupUsageError: ``keep_last`` is less than 1.
            BackupIntegrityError: A manifest is unreadable; nothing was deleted.
        """
        return prune(self._store, keep_last)

    def __repr__(self) -> str:
        return f"<Repository {self._store.destination!r}>"
