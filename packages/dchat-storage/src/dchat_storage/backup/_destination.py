"""Where a repository's blobs live: the destination interface and a local directory.

A destination stores named, immutable blobs. Names are ``/``-separated paths of
lower-case letters, digits, ``.``, ``_`` and ``-`` (``data/3f/3f9a...``); a
destination may map them to anything (files, object-store keys). It need not be
trusted: every blob is authenticated by the repository when read.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._errors import BackupIntegrityError, BackupIOError, BackupUsageError

__all__ = ("BackupDestination", "LocalDirectoryDestination", "check_name")

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*")
_TMP_SUFFIX = ".tmp"


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid blob name, else raise :class:`BackupUsageError`."""
    if not _NAME.fullmatch(name) or ".." in name or name.endswith(_TMP_SUFFIX):
        raise BackupUsageError(f"invalid blob name {name!r}")
    return name


@runtime_checkable
class BackupDestination(Protocol):
    """Storage for a repository's named blobs.

    Implementations raise :class:`BackupIOError` when the storage fails and
    :class:`BackupIntegrityError` from :meth:`get` when a blob is missing.
    """

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` atomically: readers see all of it or nothing."""
        ...

    def get(self, name: str) -> bytes:
        """Return the blob stored under ``name``."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Names of the blobs under the folder ``prefix`` (e.g. ``"data"``), sorted."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name``; removing a missing blob is not an error."""
        ...

    def exists(self, name: str) -> bool:
        """Whether a blob is stored under ``name``."""
        ...


class LocalDirectoryDestination:
    """Blobs as files under a local directory (which may be a mounted disk).

    A put writes a temporary file, fsyncs it, renames it into place and fsyncs
    the directory, so a crash leaves either the old state or the complete blob,
    never a torn one. Files are created mode 0600, directories 0700.

    Args:
        root: The repository directory; created (with parents) by :meth:`put`.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        return self.root.joinpath(*check_name(name).split("/"))

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name``; see the class docstring for the guarantees."""
        path = self._path(name)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{_TMP_SUFFIX}")
        try:
            new_dirs = _make_dirs(path.parent, self.root)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            for directory in [path.parent, *new_dirs]:
                _fsync_dir(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise BackupIOError(f"cannot write {name}: {exc.strerror or exc}") from exc

    def get(self, name: str) -> bytes:
        """Return the blob ``name``; :class:`BackupIntegrityError` if it is missing."""
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise BackupIntegrityError(f"blob {name} is missing") from None
        except OSError as exc:
            raise BackupIOError(f"cannot read {name}: {exc.strerror or exc}") from exc

    def list(self, prefix: str) -> list[str]:
        """Names under the folder ``prefix``, sorted; temporary files are left out."""
        top = self._path(prefix)
        names: list[str] = []
        try:
            for folder, _dirs, files in os.walk(top, onerror=_raise):
                rel = Path(folder).relative_to(self.root).as_posix()
                names += [f"{rel}/{f}" for f in files if _NAME.fullmatch(f)]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BackupIOError(f"cannot list {prefix}: {exc.strerror or exc}") from exc
        return sorted(n for n in names if not n.endswith(_TMP_SUFFIX))

    def delete(self, name: str) -> None:
        """Remove ``name`` if present."""
        try:
            self._path(name).unlink(missing_ok=True)
        except OSError as exc:
            raise BackupIOError(f"cannot delete {name}: {exc.strerror or exc}") from exc

    def exists(self, name: str) -> bool:
        """Whether ``name`` is stored."""
        return self._path(name).is_file()

    def __repr__(self) -> str:
        return f"<LocalDirectoryDestination {str(self.root)!r}>"


def _raise(exc: OSError) -> None:
    raise exc


def _make_dirs(path: Path, root: Path) -> list[Path]:
    """Create ``path`` and missing parents; return the parents of new ones, to fsync."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path == root or path.parent == path:
            break
        path = path.parent
    created = []
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        created.append(directory.parent)
    return created


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
