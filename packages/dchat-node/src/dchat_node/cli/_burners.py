"""``dchat burner ...``: short-lived identities nobody can link to yours."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from ._guardians import api_call, parse_duration

__all__ = ("burner_app", "send_as_burner")

_out = Console()
burner_app = typer.Typer(help="Burners: throwaway identities.", no_args_is_help=True)


def _show(reply: dict[str, Any]) -> None:
    _out.print_json(json.dumps(reply))


@burner_app.command("new")
def new(
    ctx: typer.Context,
    ttl: Annotated[str, typer.Option(help="Lifetime, e.g. 30m, 1d.")] = "1d",
    name: Annotated[str | None, typer.Option(help="Name on the burner's card.")] = None,
) -> None:
    """Create a burner and print it with its card (rate-limited per device)."""
    body: dict[str, Any] = {"ttl": parse_duration(ttl)}
    if name is not None:
        body["name"] = name
    _show(api_call(ctx, "POST", "/v1/burners", body))


@burner_app.command("list")
def list_burners(ctx: typer.Context) -> None:
    """The live burners."""
    _show(api_call(ctx, "GET", "/v1/burners"))


@burner_app.command("discard")
def discard(
    ctx: typer.Context,
    burner_id: str,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Even if its stealth payments are not swept (they are lost with its keys).",
        ),
    ] = False,
) -> None:
    """Delete a burner's keys for good (sweep its stealth payments first:
    `dchat wallet sweep TO --identity BURNER`)."""
    query = "?force=true" if force else ""
    _show(api_call(ctx, "DELETE", f"/v1/burners/{burner_id}{query}"))


@burner_app.command("contact")
def contact(ctx: typer.Context, burner_id: str, name: str, card: str) -> None:
    """Add a contact to write to from a burner (they get nothing of your main identity)."""
    _show(api_call(ctx, "POST", f"/v1/burners/{burner_id}/contacts", {"name": name, "card": card}))


@burner_app.command("send")
def send(ctx: typer.Context, burner_id: str, to: str, text: str) -> None:
    """Send TEXT to the contact TO as the burner."""
    send_as_burner(ctx, burner_id, to, text)


def send_as_burner(ctx: typer.Context, burner_id: str, to: str, text: str) -> None:
    """What ``dchat send --as BURNER`` and ``dchat burner send`` do."""
    reply = api_call(ctx, "POST", f"/v1/burners/{burner_id}/messages", {"to": to, "text": text})
    _out.print(f"queued {reply['message_id']}", highlight=False)
