"""``dchat bot webhook ...``: post the bot's updates to a URL; see and retry its dead letters."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from ._guardians import api_call

__all__ = ("webhook_app",)

_out = Console()
webhook_app = typer.Typer(
    help="The bot's webhook: updates posted to a URL, signed.", no_args_is_help=True
)


def _show(reply: dict[str, Any]) -> None:
    secret = reply.pop("signing_secret", None)
    _out.print_json(json.dumps(reply))
    if secret is not None:
        _out.print(f"signing secret (shown once): {secret}", highlight=False, soft_wrap=True)


@webhook_app.command("set")
def set_webhook(
    ctx: typer.Context,
    url: str,
    secret_token: Annotated[
        str | None, typer.Option(help="Also send X-Telegram-Bot-Api-Secret-Token: this value.")
    ] = None,
    max_connections: Annotated[int, typer.Option(min=1, max=100)] = 40,
    allowed_update: Annotated[
        list[str] | None, typer.Option(help="Only these update kinds (repeat; default: all).")
    ] = None,
    drop_pending: Annotated[bool, typer.Option(help="Forget updates not yet delivered.")] = False,
) -> None:
    """Post the bot's updates to URL (http or https); prints a new signing secret once."""
    body: dict[str, Any] = {
        "url": url,
        "max_connections": max_connections,
        "drop_pending_updates": drop_pending,
    }
    if secret_token is not None:
        body["secret_token"] = secret_token
    if allowed_update:
        body["allowed_updates"] = allowed_update
    _show(api_call(ctx, "PUT", "/v1/bot/webhook", body))


@webhook_app.command("show")
def show(ctx: typer.Context) -> None:
    """The webhook: URL, pending updates, last error, dead letters."""
    _show(api_call(ctx, "GET", "/v1/bot/webhook"))


@webhook_app.command("delete")
def delete(
    ctx: typer.Context,
    drop_pending: Annotated[bool, typer.Option(help="Forget updates not yet delivered.")] = False,
) -> None:
    """Stop posting; the bot polls with getUpdates again (from the first undelivered update)."""
    query = "?drop_pending_updates=true" if drop_pending else ""
    _show(api_call(ctx, "DELETE", f"/v1/bot/webhook{query}"))


@webhook_app.command("dead-letters")
def dead_letters(ctx: typer.Context) -> None:
    """Updates the receiver did not take (after the last retry), with the reason."""
    _show(api_call(ctx, "GET", "/v1/bot/webhook/dead-letters"))


@webhook_app.command("retry")
def retry(
    ctx: typer.Context,
    update_ids: Annotated[list[int] | None, typer.Argument(help="Default: every one.")] = None,
) -> None:
    """Send dead letters again (each behind its chat's waiting updates)."""
    body = {"update_ids": update_ids} if update_ids else {}
    _show(api_call(ctx, "POST", "/v1/bot/webhook/dead-letters/retry", body))
