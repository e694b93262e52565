"""``dchat tokens``: paid blind tokens held per relay, and ``dchat tokens buy RELAY N``.

The node does the work (the relay's signed offer, the payment on the currency
chain and its wait for commit, the blind signatures); these commands ask and
print. Buying waits for the chain, so its client allows minutes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_sdk import RemoteClient

from ._common import guard

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ("tokens_app",)

_out = Console(highlight=False)
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]
CHAIN_WAIT = 300.0  # seconds: the transfer's commit and certification, then the relay's check

tokens_app = typer.Typer(help="Paid tokens that let your mail past busy relays without work.")


def _client(ctx: typer.Context, action: Callable[[RemoteClient], Any]) -> Any:
    data_dir: Path = ctx.find_root().obj
    with guard(lambda: RemoteClient.from_data_dir(data_dir, timeout=CHAIN_WAIT)) as client:
        return guard(lambda: action(client))


def show_json_or(as_json: bool, reply: Any, text: str) -> None:
    """Print ``reply`` as JSON, or ``text``."""
    if as_json:
        _out.print_json(json.dumps(reply))
    else:
        _out.print(text)


@tokens_app.callback(invoke_without_command=True)
def balance(ctx: typer.Context, as_json: Json = False) -> None:
    """The tokens held, per relay and key epoch."""
    if ctx.invoked_subcommand is not None:
        return
    reply = _client(ctx, lambda c: c.tokens())
    lines = [f"{reply['total']} token(s)"]
    for relay in reply["relays"]:
        epochs = ", ".join(f"epoch {e}: {n}" for e, n in relay["epochs"].items())
        lines.append(f"{relay['relay']}  {relay['count']}  ({epochs or 'none'})")
    for waiting in reply.get("pending", []):
        lines.append(
            f"paid {waiting['paid']} at {waiting['relay']} (tx {waiting['tx']}): "
            "waiting for the relay's signatures; the node keeps asking"
        )
    show_json_or(as_json, reply, "\n".join(lines))


@tokens_app.command("buy")
def buy(
    ctx: typer.Context,
    relay: str,
    count: Annotated[int, typer.Argument(min=1, max=64)],
    fee: Annotated[int, typer.Option(min=0)] = 1,
    as_json: Json = False,
) -> None:
    """Buy COUNT tokens from RELAY ([NODEID@]HOST:PORT), paid on the currency chain."""
    reply = _client(ctx, lambda c: c.buy_tokens(relay, count, fee=fee))
    text = f"bought {reply['bought']} token(s) from {reply['relay']} for {reply['paid']}"
    show_json_or(as_json, reply, f"{text} (tx {reply['tx']}); {reply['held']} held there")
