"""dchat-node: the composition root. Roles, the local HTTP API, the CLIs and the demo.

Named public modules: :mod:`dchat_node.cli` (the ``dchat`` and ``dchat-node``
commands) and :mod:`dchat_node.config` (configuration loading).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._errors import ConfigError as ConfigError
from ._errors import DchatNodeError as DchatNodeError
from ._errors import NodeStateError as NodeStateError

if _typing.TYPE_CHECKING:
    from ._runtime import run_node as run_node
    from .cli._process import NodeProcess as NodeProcess
    from .cli._process import free_port as free_port
    from .config import NodeConfig as NodeConfig
    from .config import load_config as load_config

# The rest loads on first use: ``dchat`` (a client) must not import the node's server.
_LAZY = {
    "NodeConfig": ".config",
    "NodeProcess": ".cli._process",
    "free_port": ".cli._process",
    "load_config": ".config",
    "run_node": "._runtime",
}

__all__ = (
    "ConfigError",
    "DchatNodeError",
    "NodeConfig",
    "NodeProcess",
    "NodeStateError",
    "free_port",
    "load_config",
    "run_node",
)


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
