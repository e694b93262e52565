"""Private files: written atomically and durably with mode 0600.

Node keys, validator keys, wallets, channel books, light-client states and
``api.json`` all hold secrets or verified state; none may be left
half-written by a crash or readable by other users. A temporary file in the
same directory is written and fsynced, renamed over the old file, and the
directory fsynced, so a crash leaves the old or the new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("write_private",)


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
