"""Command lines: ``dchat-node`` (run and set up a node) and ``dchat`` (the user's client).

``dchat`` talks to a running node through its local API; it finds the node by its
data directory (``--data-dir`` or ``DCHAT_DATA_DIR``). Errors print one line and
exit with status 1; usage mistakes exit with status 2.

The two live apart (``_client`` and ``_node``) and load on first use: ``dchat``
imports the SDK and typer, never the node's server, storage or chain.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING

from ._names import UNUSED_BY_THE_CLIENT

if TYPE_CHECKING:
    from ._client import app as app
    from ._node import node_app as node_app

__all__ = ("app", "main", "node_app", "node_main")

_HOMES = {"app": "._client", "node_app": "._node"}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name], __name__), name)


def main() -> None:
    """Entry point of ``dchat``."""
    for name in UNUSED_BY_THE_CLIENT:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type] # "import name" fails
    from ._client import app

    app()


def node_main() -> None:
    """Entry point of ``dchat-node``: what it creates (data, keys, backups) is private."""
    from ._node import node_app

    os.umask(0o077)
    node_app()
