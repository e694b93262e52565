"""``dchat privacy ...``: metadata privacy settings of the node (cover traffic)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_sdk import RemoteClient

from ._common import guard

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("privacy_app",)

_out = Console()
privacy_app = typer.Typer(help="Metadata privacy: cover traffic.", no_args_is_help=True)


@privacy_app.command("cover")
def cover(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Argument(help="on or off (nothing: show the state).", metavar="[on|off]")
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(min=1, help="Bytes per second (default: the node's setting, else 100)."),
    ] = None,
) -> None:
    """Cover traffic: loop and drop messages that hide when you send (costs bandwidth)."""
    if state not in (None, "on", "off"):
        raise typer.BadParameter("say on or off", param_hint="STATE")
    if budget is not None and state != "on":
        raise typer.BadParameter("a budget goes with 'on'", param_hint="--budget")
    data_dir: Path = ctx.find_root().obj
    with guard(lambda: RemoteClient.from_data_dir(data_dir)) as client:
        if state is None:
            reply: dict[str, Any] = guard(client.cover_traffic)
        else:
            reply = guard(lambda: client.set_cover_traffic(state == "on", budget))
    _out.print_json(json.dumps(reply))
