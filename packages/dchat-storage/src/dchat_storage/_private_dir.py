"""Private data directories: a node's directory is its owner's alone.

A node's data directory holds its database (the wrapped keystore, sealed
messages or mailboxes), its key files and the API token. The files are
created 0600, but a directory other users may enter or list still leaks
names and sizes, and one they may write lets them swap files under the node.
So, like OpenSSH's ``StrictModes`` does for ``~/.ssh``,
:func:`check_private_directory` refuses a directory that is not owned by the
running user or that grants group or other users any access, and says how to
fix it. It changes nothing itself: tightening modes silently would hide a
setup mistake (a shared directory, a wrong volume mount) from the operator.

The files a node keeps beside its database (node and validator keys, wallets,
channel books, light-client states, ``api.json``) hold secrets or verified
state; none may be left half-written by a crash or readable by other users.
:func:`write_private` writes a temporary file in the same directory and fsyncs
it, renames it over the old file and fsyncs the directory, so a crash leaves
the old or the new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import TYPE_CHECKING

from ._errors import ExposedDirectoryError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("check_private_directory", "write_private")


def check_private_directory(path: Path) -> None:
    """Refuse ``path`` unless it is a directory of the running user, mode 0700 or tighter.

    Raises:
        ExposedDirectoryError: not a directory, another user's, or open to
            group or other users (the message names the path and the fix).
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ExposedDirectoryError(f"cannot use data directory {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ExposedDirectoryError(f"data directory {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise ExposedDirectoryError(
            f"data directory {path} belongs to uid {info.st_uid}, not to this user "
            f"(uid {os.geteuid()}); run the node as its owner, or: chown -R {os.geteuid()} {path}"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ExposedDirectoryError(
            f"data directory {path} is open to other users (mode {mode:04o}); "
            f"fix it with: chmod 700 {path}"
        )


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600), atomically and durably.

    Raises:
        OSError: The file cannot be written (the old one is left as it was).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_private(path: Path, max_size: int) -> bytes | None:
    """The contents of ``path`` (``None`` if there is no such file), at most ``max_size`` bytes.

    The counterpart of :func:`write_private` for small state files: a file
    larger than ``max_size`` is refused rather than read whole.

    Raises:
        OSError: The file exists but cannot be read.
        ValueError: The file is larger than ``max_size``.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(max_size + 1)
    except FileNotFoundError:
        return None
    if len(data) > max_size:
        raise ValueError(f"{path.name} is larger than {max_size} bytes")
    return data
