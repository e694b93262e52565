"""``dchat requests ...``, ``dchat block``/``unblock`` and ``dchat notices``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from ._guardians import api_call

__all__ = ("register_request_commands", "requests_app")

_out = Console()
requests_app = typer.Typer(
    help="Message requests: mail from people who are not contacts.", invoke_without_command=True
)


def _show(reply: Any) -> None:
    _out.print_json(json.dumps(reply))


@requests_app.callback()
def list_requests(ctx: typer.Context) -> None:
    """List open requests (run a subcommand to answer one)."""
    if ctx.invoked_subcommand is None:
        _show(api_call(ctx, "GET", "/v1/requests"))


@requests_app.command("accept")
def accept(
    ctx: typer.Context,
    identity_id: str,
    name: Annotated[str, typer.Option(help="Contact name to give the sender.")],
) -> None:
    """Add the sender as a contact (their card came sealed with the message)."""
    _show(api_call(ctx, "POST", f"/v1/requests/{identity_id}/accept", {"name": name}))


@requests_app.command("ignore")
def ignore(ctx: typer.Context, identity_id: str) -> None:
    """Drop the request and delete its messages."""
    _show(api_call(ctx, "POST", f"/v1/requests/{identity_id}/ignore"))


@requests_app.command("block")
def block_requester(ctx: typer.Context, identity_id: str) -> None:
    """Block the sender: their messages are dropped from now on."""
    _show(api_call(ctx, "POST", f"/v1/requests/{identity_id}/block"))


def register_request_commands(app: typer.Typer) -> None:
    """Add ``requests``, ``block``, ``unblock``, ``blocked`` and ``notices`` to ``app``."""
    app.add_typer(requests_app, name="requests")

    @app.command("block")
    def block(ctx: typer.Context, identity_id: str) -> None:
        """Block an identity: its messages are dropped after decryption and counted."""
        _show(api_call(ctx, "POST", "/v1/blocked", {"identity_id": identity_id}))

    @app.command("unblock")
    def unblock(ctx: typer.Context, identity_id: str) -> None:
        """Let a blocked identity's messages through again."""
        _show(api_call(ctx, "DELETE", f"/v1/blocked/{identity_id}"))

    @app.command("blocked")
    def blocked(ctx: typer.Context) -> None:
        """List blocked identities."""
        _show(api_call(ctx, "GET", "/v1/blocked"))

    @app.command("notices")
    def notices(ctx: typer.Context) -> None:
        """Notices such as "the session with X was reset" (safety number changes)."""
        _show(api_call(ctx, "GET", "/v1/notices"))
