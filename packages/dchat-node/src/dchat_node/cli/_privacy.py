"""``dchat privacy ...``: metadata privacy settings of this node's identities."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer
from rich.console import Console

from ._guardians import api_call

__all__ = ("privacy_app",)

_out = Console()
privacy_app = typer.Typer(help="Metadata privacy: onion mode.", no_args_is_help=True)


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
    """Send through three relays (onion mode), so the recipient's relay never sees your address."""
    if mode in (None, "show"):
        reply = api_call(ctx, "GET", "/v1/privacy/onion")
    else:
        body: dict[str, object] = {"on": mode == "on"}
        if identity is not None:
            body["identity"] = identity
        reply = api_call(ctx, "PUT", "/v1/privacy/onion", body)
    _out.print_json(json.dumps(reply))
