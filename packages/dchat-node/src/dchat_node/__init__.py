"""dchat-node: the composition root. Roles, the local HTTP API, the CLIs and the demo.

Named public modules: :mod:`dchat_node.cli` (the ``dchat`` and ``dchat-node``
commands) and :mod:`dchat_node.config` (configuration loading).
"""

from __future__ import annotations

import typing as _typing

from .cli._names import lazy_names as _lazy_names

if _typing.TYPE_CHECKING:  # each loads on first use: ``dchat --help`` loads none of them
    from ._errors import ConfigError as ConfigError
    from ._errors import DchatNodeError as DchatNodeError
    from ._errors import NodeStateError as NodeStateError
    from ._runtime import run_node as run_node
    from .cli._process import NodeProcess as NodeProcess
    from .cli._process import free_port as free_port
    from .config import NodeConfig as NodeConfig
    from .config import load_config as load_config

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
__getattr__ = _lazy_names(
    __name__,
    {
        "._errors": ("ConfigError", "DchatNodeError", "NodeStateError"),
        ".cli._process": ("NodeProcess", "free_port"),
        ".config": ("NodeConfig", "load_config"),
        "._runtime": ("run_node",),
    },
)
