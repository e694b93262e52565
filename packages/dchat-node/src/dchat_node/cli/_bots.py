"""``dchat bot ...``: make this node's identity a bot and manage its Bot API tokens."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from ._bot_webhook import webhook_app
from ._guardians import api_call

__all__ = ("bot_app",)

_out = Console()
bot_app = typer.Typer(help="Bots: this node's identity as a bot (Bot API).", no_args_is_help=True)
bot_app.add_typer(webhook_app, name="webhook")


def _show(reply: dict[str, Any]) -> None:
    _out.print_json(json.dumps(reply))


@bot_app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="What the bot does.")] = "",
) -> None:
    """Make this node's identity the bot NAME; prints its first token (shown once)."""
    reply = api_call(ctx, "POST", "/v1/bot", {"name": name, "description": description})
    _out.print(f"bot {name} ({reply['bot']['identity_id']})", highlight=False)
    _out.print(f"token: {reply['token']}", highlight=False, soft_wrap=True)


@bot_app.command("show")
def show(ctx: typer.Context) -> None:
    """The bot: name, description, commands, tokens (ids and scopes only)."""
    _show(api_call(ctx, "GET", "/v1/bot"))


@bot_app.command("token")
def token(
    ctx: typer.Context,
    scope: Annotated[
        list[str] | None, typer.Option(help="updates, send, manage (repeat; default: all).")
    ] = None,
) -> None:
    """Issue another Bot API token (shown once)."""
    body = {"scopes": scope} if scope else {}
    reply = api_call(ctx, "POST", "/v1/bot/tokens", body)
    _out.print(f"token: {reply['token']}", highlight=False, soft_wrap=True)


@bot_app.command("revoke")
def revoke(ctx: typer.Context, token_id: int) -> None:
    """Revoke the token TOKEN_ID (the number before its colon) for good."""
    _show(api_call(ctx, "DELETE", f"/v1/bot/tokens/{token_id}"))


@bot_app.command("set-commands")
def set_commands(
    ctx: typer.Context,
    commands: Annotated[list[str], typer.Argument(help="command=description, ...")],
) -> None:
    """Set the commands the bot lists, e.g. ``start="Begin" help="What I do"``."""
    listed = []
    for item in commands:
        name, _, description = item.partition("=")
        listed.append({"command": name.strip(), "description": description.strip()})
    _show(api_call(ctx, "PUT", "/v1/bot/commands", {"commands": listed}))


@bot_app.command("set-description")
def set_description(ctx: typer.Context, description: str) -> None:
    """Set what the bot says it does."""
    _show(api_call(ctx, "PUT", "/v1/bot/description", {"description": description}))
