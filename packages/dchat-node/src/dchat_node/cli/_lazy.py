"""Commands and groups that import their module only when they run (``dchat`` stays fast).

``dchat --help`` lists a lazy command by the one-line help it is registered
with; ``dchat send ...`` (or completing it) loads the command's *part* then and
hands over to it. A part is a small Typer app, built by a cached loader, on
which the command or group is registered under its name; one part may hold
several (the conversation commands come together).
"""

from __future__ import annotations

import functools
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

from ._coerce import plain_values

if TYPE_CHECKING:
    from collections.abc import Callable

    from typer import _click as click

    Loader = Callable[[], typer.Typer]

__all__ = ("LazyGroups", "group_of", "new_part")

_COMPLETION = {"install_completion", "show_completion"}


def new_part() -> typer.Typer:
    """An empty part: plain help (no rich) and no completion options of its own."""
    return typer.Typer(add_completion=False, rich_markup_mode=None)


@functools.cache
def _group(module: str, attribute: str, name: str) -> typer.Typer:
    """A part holding one group: ``module``'s Typer app ``attribute``, named ``name``."""
    part = new_part()
    part.add_typer(getattr(import_module(module, __package__), attribute), name=name)
    return part


def group_of(module: str, attribute: str, name: str) -> Loader:
    """The loader of a part holding the group ``attribute`` of ``module`` (in this package)."""
    return functools.partial(_group, module, attribute, name)


@functools.cache
def _built(load: Loader) -> click.Command:
    return typer.main.get_command(load())


def _no_rich(command: click.Command) -> click.Command:
    """``command`` (and its subcommands) with plain help, as ``dchat --help`` has."""
    if isinstance(command, (TyperCommand, TyperGroup)):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _no_rich(sub)
    return command


class _Placeholder(TyperCommand):
    """Stands for a command or group until it is used; then the real one parses and runs."""

    def __init__(self, name: str, help_text: str, load: Loader) -> None:
        super().__init__(name=name, help=help_text, rich_markup_mode=None)
        self._load = load

    def real(self, parent: click.Context) -> click.Command:
        """The command itself, from its part (built once per process)."""
        part = _built(self._load)
        commands: dict[str, click.Command] = getattr(part, "commands", {self.name: part})
        command = commands[str(self.name)]
        # a part built on its own may get the completion options: those are the root's
        command.params = [p for p in command.params if p.name not in _COMPLETION]
        return plain_values(_no_rich(command), parent)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,
        **extra: Any,
    ) -> Any:
        return self.real(parent).make_context(info_name, args, parent=parent, **extra)


class LazyGroups(TyperGroup):
    """A Typer group with lazy commands, ``lazy``: name -> (one-line help, part loader)."""

    lazy: ClassVar[dict[str, tuple[str, Loader]]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, (help_text, load) in self.lazy.items():
            self.add_command(_Placeholder(name, help_text, load), name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        plain_values(self, ctx)  # here: typer adds the completion options after __init__
        return super().parse_args(ctx, args)
