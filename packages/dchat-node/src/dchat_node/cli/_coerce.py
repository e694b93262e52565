"""Parameter values of plain types converted without pydantic (``dchat`` starts fast).

Typer (0.2x) converts every parameter's value through a pydantic ``TypeAdapter``
that it builds on first use, even for a ``str`` or a ``None``: the first command
line value of a process imports pydantic and builds its schemas, about 0.2 s of
CPU, most of a ``dchat send``. ``plain_values`` gives each parameter a converter
that handles what the commands here take (``None``, a ``str``, an ``int`` or
``float`` inside its bounds, a ``Path`` with typer's own existence checks) and
hands anything else (a bad number, a list, an enum, a custom parser) to typer's
converter, built then: typer's checks and error messages stay the same.

This leans on two typer internals (``_TyperParameter._runtime_param`` and
``typer._coercion.RuntimeParam``); ``test_cli_fast`` fails if a typer upgrade
moves them (``dchat send`` would load pydantic again).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typer._coercion import RuntimeParam, build_runtime_param
from typer._param_types import coerce_cli_path
from typer.core import TyperArgument, TyperOption

if TYPE_CHECKING:
    from typer import _click as click

__all__ = ("plain_values",)

_TYPER_S_OWN = object()  # "not a plain value: typer's converter decides"
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def plain_values(command: click.Command, ctx: click.Context) -> click.Command:
    """Give ``command``'s parameters (and its subcommands') the plain converter.

    ``ctx`` (the command's or its parent's) names the help option, which click
    makes on first use and typer converts too.
    """
    helps = (
        [] if "help_option_names" in command.context_settings else [command.get_help_option(ctx)]
    )
    for param in [*command.params, *helps]:
        if isinstance(param, (TyperArgument, TyperOption)) and param._runtime_param is None:
            info = param.type_descriptor
            param._runtime_param = _Plain(info.parameter_info, info.annotation)
    for sub in getattr(command, "commands", {}).values():
        plain_values(sub, ctx)
    return command


@dataclass(frozen=True)
class _Plain(RuntimeParam):
    """A plain value converted here; any other goes to typer's converter (built once)."""

    def _coerce_value(self, value: Any, param: Any, ctx: click.Context) -> Any:
        plain = self._plain(value, param, ctx)
        if plain is not _TYPER_S_OWN:
            return plain
        typer_s = param._runtime_param = build_runtime_param(param.type_descriptor)
        return typer_s._coerce_value(value, param=param, ctx=ctx)

    def _plain(self, value: Any, param: Any, ctx: click.Context) -> Any:
        info, kind = self.parameter_info, self.annotation
        if info.parser is not None:
            return _TYPER_S_OWN
        if kind is str:
            return value if isinstance(value, str) else _TYPER_S_OWN
        if kind is Path and info.path_type is None:
            if not isinstance(value, (str, Path)) or value == "-":
                return _TYPER_S_OWN
            return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
        if kind is int or kind is float:
            return self._number(value)
        return _TYPER_S_OWN

    def _number(self, value: Any) -> Any:
        kind, info = self.annotation, self.parameter_info
        if isinstance(value, str):
            if not (_INT if kind is int else _FLOAT).fullmatch(value.strip()):
                return _TYPER_S_OWN  # 1_000, '٣', nan: typer (pydantic) has its own rules
            value = kind(value)
        if type(value) is not kind and not (kind is float and type(value) is int):
            return _TYPER_S_OWN
        if kind is float and not math.isfinite(value):
            return _TYPER_S_OWN
        low, high = info.min, info.max
        if (low is not None and value < low) or (high is not None and value > high):
            if not info.clamp:
                return _TYPER_S_OWN  # typer's message says what the bounds are
            value = low if low is not None and value < low else high
        return kind(value)
