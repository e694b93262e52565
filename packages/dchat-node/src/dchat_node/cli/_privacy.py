"""``dchat privacy ...``: metadata privacy settings of the node (cover traffic, onion mode)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from dchat_sdk import RemoteClient

from ._common import guard
from ._guardians import api_call

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_sdk import CoverTraffic

__all__ = ("privacy_app",)

_out = Console()
privacy_app = typer.Typer(help="Metadata privacy: cover traffic, onion mode.", no_args_is_help=True)


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
            reply: CoverTraffic = guard(client.cover_traffic)
        else:
            reply = guard(lambda: client.set_cover_traffic(state == "on", budget))
    _out.print_json(json.dumps(reply))


@privacy_app.command("onion")
def onion(
    ctx: typer.Context,
    mode: Annotated[
        Literal["on", "off", "show"] | None,
        typer.Argument(help="on, off, or show (the default)."),
    ] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", help="A burner id (default: your identity).")
    ] = None,
) -> None:
    """Send through three relays (onion mode), so the recipient's relay never sees your address.

    In onion mode each contact also gets single-use reply blocks, so its answers reach
    you without it learning your relays; ``show`` counts them under ``reply_blocks``
    and lists the node's onion ``guards`` (every route starts at one; relay discovery).
    """
    if mode in (None, "show"):
        reply = api_call(ctx, "GET", "/v1/privacy/onion")
    else:
        body: dict[str, object] = {"on": mode == "on"}
        if identity is not None:
            body["identity"] = identity
        reply = api_call(ctx, "PUT", "/v1/privacy/onion", body)
    _out.print_json(json.dumps(reply))
