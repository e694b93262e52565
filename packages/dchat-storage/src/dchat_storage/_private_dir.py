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
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from ._errors import ExposedDirectoryError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("check_private_directory",)


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
