"""One node per data directory: an exclusive ``flock`` on ``DATA_DIR/node.lock``.

``dchat-node run`` takes the lock before it opens the database or writes
``api.json`` and holds it for the life of the process. The OS releases a
``flock`` when the process exits or dies, so a crash leaves no stale lock: the
file itself stays behind (never deleted, which would let two processes lock two
different files) and only records the holder's pid for the error message.
Readers such as ``dchat-node backup create`` do not take the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import TYPE_CHECKING

from ._errors import ConfigError, NodeStateError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ("LOCK_NAME", "datadir_lock")

LOCK_NAME = "node.lock"


@contextlib.contextmanager
def datadir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock on ``data_dir`` for the duration of the ``with`` block.

    Raises:
        NodeStateError: ``data_dir_in_use``: another process holds the lock.
        ConfigError: The lock file cannot be opened (missing directory, permissions).
    """
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(data_dir, fd) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _in_use(data_dir: Path, fd: int) -> NodeStateError:
    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
    who = f"another node (pid {holder})" if holder.isdecimal() else "another node"
    return NodeStateError(
        "data_dir_in_use", f"data directory {data_dir} is in use by {who}; stop it first"
    )
