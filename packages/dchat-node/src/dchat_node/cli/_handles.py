"""``dchat handle ...`` and ``dchat contact add @name``: public handles through the node API.

The node does the chain work (a verified lookup by light client; the owner's
transactions, their proof of work and the wait for the certified result); these
commands only ask and print. Registering waits for the chain, so its client
allows minutes instead of the usual ten seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_sdk import RemoteClient

from ._common import guard

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ("handle_app", "is_handle")

_out = Console(highlight=False)
CHAIN_WAIT = 600.0  # seconds: proof of work plus commit and certification

handle_app = typer.Typer(help="Your public @handle on the chat chain.", no_args_is_help=True)


def is_handle(text: str) -> bool:
    """Whether a ``contact add`` argument names a handle (``@alice``) rather than a card."""
    return text.startswith("@")


def _client(ctx: typer.Context, action: Callable[[RemoteClient], Any]) -> Any:
    data_dir: Path = ctx.find_root().obj
    with guard(lambda: RemoteClient.from_data_dir(data_dir, timeout=CHAIN_WAIT)) as client:
        return guard(lambda: action(client))


def print_handle(found: dict[str, Any] | None) -> None:
    """Show a verified handle (or that there is none)."""
    if found is None:
        _out.print("no handle")
        return
    _out.print(f"@{found['handle']}  identity {found['identity']}")
    _out.print(f"relays    {', '.join(found['relays'])}")
    _out.print(f"expires   at height {found['expires']} (verified at {found['height']})")
    if not found["card_current"]:
        _out.print("its card predates the owner's key rotation: not usable until renewed")


@handle_app.command("register")
def register(ctx: typer.Context, name: str) -> None:
    """Take NAME (``@name`` or ``name``) for this identity: costs proof of work, not tokens."""
    print_handle(_client(ctx, lambda c: c.handle_action("register", name)))


@handle_app.command("renew")
def renew(ctx: typer.Context) -> None:
    """Renew this identity's handle for another term (fresh work; updates relays and card)."""
    print_handle(_client(ctx, lambda c: c.handle_action("renew")))


@handle_app.command("release")
def release(ctx: typer.Context) -> None:
    """Give this identity's handle up at once."""
    _client(ctx, lambda c: c.handle_action("release"))
    _out.print("released")


@handle_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="a handle; default: your own")] = None,
) -> None:
    """Show a handle as the chain certifies it (verified by the node's light client)."""
    if name is None:
        print_handle(_client(ctx, lambda c: c.own_handle()))
    else:
        print_handle(_client(ctx, lambda c: c.lookup_handle(name)))


def add_by_handle(ctx: typer.Context, handle: str, name: str | None) -> tuple[str, str]:
    """``dchat contact add [NAME] @handle``: the contact's name and identity id."""
    contact = _client(ctx, lambda c: c.add_contact_by_handle(handle, name))
    return contact.name, contact.identity_id
