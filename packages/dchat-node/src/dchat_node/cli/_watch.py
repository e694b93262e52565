"""``dchat watch``: print the node's events as they arrive, until Ctrl-C.

It follows ``GET /v1/events`` through :meth:`dchat_sdk.RemoteClient.events`,
which resumes after a dropped connection (or a node restart) from the last
event printed, so nothing is shown twice or skipped. ``--json`` prints one
JSON object per line (``{"cursor", "kind", "data"}``); keep the last cursor
and pass it as ``--after`` to carry on later from there.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from dchat_sdk import RemoteClient

from ._common import guard

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dchat_sdk import Event

__all__ = ("register_watch_command",)

_out = Console(highlight=False, soft_wrap=True)


def describe(event: Event) -> str:
    """One line for a person: time, who, what."""
    message = event.message
    at = message.stored_at if message is not None else time.time()
    clock = time.strftime("%H:%M:%S", time.localtime(at))
    if message is not None:
        who = message.peer_name or message.peer_id
        arrow = "<-" if message.direction == "in" else "->"
        return f"{clock} {arrow} {who}: {message.text}"
    if event.kind == "request":
        return f"{clock} request from {event.data.get('identity_id')}: {event.data.get('state')}"
    if event.kind == "status":
        return f"{clock} relay {event.data.get('relay')}"
    if event.kind in {"group_message", "group_update"}:
        d = event.data
        what = (
            d.get("text")
            if event.kind == "group_message"
            else f"{d.get('op')} (v{d.get('version')})"
        )
        return f"{clock} [group {str(d.get('group'))[:12]}] {str(d.get('by'))[:18]}: {what}"
    if event.kind in _ANCHOR:  # anchored groups: the chain's order, gaps, equivocation
        d = event.data
        return f"{clock} [group {str(d.get('group'))[:12]}] {_ANCHOR[event.kind](d)}"
    if event.kind == "channel_post":
        d = event.data
        return f"{clock} [channel {str(d.get('channel'))[:12]}] #{d.get('q')}: {d.get('text')}"
    if event.kind in _CONVERSATION:  # receipts, edits, deletes, reactions, typing
        d = event.data
        what = _CONVERSATION[event.kind](d)
        return f"{clock} {d.get('by')} {what} {', '.join(d.get('ids') or [])}".rstrip()
    return f"{clock} {event.kind}: {json.dumps(event.data)}"


_ANCHOR: dict[str, Callable[[dict[str, Any]], str]] = {
    "group_anchored": lambda d: f"anchored on the chain: {d.get('first')}..{d.get('last')}",
    "group_gap": lambda d: f"missing messages {d.get('missing')} of {str(d.get('sender'))[:16]}",
    "group_equivocation": lambda d: (
        f"EQUIVOCATION ({d.get('evidence')}) by {str(d.get('accused'))[:16]}: {d.get('why')}"
    ),
    "group_link": lambda d: (
        f"invite link: {d.get('op')} {str(d.get('by'))[:16]} {d.get('why') or ''}".rstrip()
    ),
    "group_join_refused": lambda d: f"join by link refused: {d.get('why')}",
}
_CONVERSATION: dict[str, Callable[[dict[str, Any]], str]] = {
    "receipt": lambda d: "read" if d.get("read") else "received",
    "edit": lambda d: f"edited to {d.get('text')!r}:",
    "delete": lambda _: "deleted",
    "reaction": lambda d: f"{'reacted' if d.get('on') else 'took back'} {d.get('emoji')} to",
    "typing": lambda d: "is typing" if d.get("on") else "stopped typing",
    "timer": lambda d: (
        f"set disappearing messages to {d.get('seconds') or 'off'}"
        + ("s" if d.get("seconds") else "")
    ),
}


def _follow(client: RemoteClient, after: int | None, as_json: bool) -> None:
    for event in client.events(after):
        if as_json:
            line = {"cursor": event.cursor, "kind": event.kind, "data": event.data}
            print(json.dumps(line), flush=True)
        else:
            _out.print(escape(describe(event)))


def register_watch_command(app: typer.Typer) -> None:
    """Add ``watch`` to the ``dchat`` command group ``app``."""

    @app.command("watch")
    def watch(
        ctx: typer.Context,
        after: Annotated[
            int | None, typer.Option(min=0, help="resume after this event cursor")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    ) -> None:
        """Print events (new messages, requests, relay status) as they arrive, until Ctrl-C."""
        data_dir: Path = ctx.find_root().obj
        with guard(lambda: RemoteClient.from_data_dir(data_dir)) as client:
            try:
                guard(lambda: _follow(client, after, as_json))
            except KeyboardInterrupt:
                raise typer.Exit(0) from None
