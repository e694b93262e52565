"""Command groups that import their module only when they run (``dchat`` stays fast).

``dchat --help`` lists a lazy group by its one-line help; ``dchat wallet ...``
(or completing it) imports the group's module then and hands over to it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperGroup

from ._names import UNUSED_BY_THE_CLIENT

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("LazyGroups",)

_COMPLETION = {"install_completion", "show_completion"}


class _Placeholder(TyperGroup):
    """Stands for a group until it is used; then the real group parses and runs."""

    def __init__(self, name: str, help_text: str, load: Callable[[], typer.Typer]) -> None:
        super().__init__(name=name, help=help_text)
        self._load = load

    def real(self) -> TyperGroup:
        """The group itself, built from its Typer app on first use."""
        for name in UNUSED_BY_THE_CLIENT:  # main() kept them out: a group may need them
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
        group = typer.main.get_command(self._load())
        assert isinstance(group, TyperGroup)
        # built on its own, the group got the completion options: those are the root's
        group.params = [p for p in group.params if p.name not in _COMPLETION]
        return group

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,
        **extra: Any,
    ) -> Any:
        return self.real().make_context(info_name, args, parent=parent, **extra)


class LazyGroups(TyperGroup):
    """A Typer group with extra sub-groups, ``lazy``: name -> (one-line help, loader)."""

    lazy: ClassVar[dict[str, tuple[str, Callable[[], typer.Typer]]]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, (help_text, load) in self.lazy.items():
            self.add_command(_Placeholder(name, help_text, load), name)
