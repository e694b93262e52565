"""``dchat search QUERY [--peer NAME] [--limit N] [--rebuild] [--json]``.

Prints the newest stored texts (sent and received) holding every word of
QUERY: time, direction, peer and a snippet with the matching word
highlighted. ``--rebuild`` indexes every stored text again first (the node
builds the index by itself on the first search; this is for a database
restored or moved by hand).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_sdk import RemoteClient

    WithClient = Callable[[typer.Context, Callable[[RemoteClient], Any]], Any]

__all__ = ("register_search_command", "results_table")

_out = Console()


def results_table(results: list[dict[str, Any]]) -> Table:
    """Search results as a table, the matching word in bold."""
    table = Table("time", "", "peer", "message")
    for r in results:
        snippet = Text(r["snippet"])
        start, end = r["match"]
        snippet.stylize("bold reverse", start, end)
        arrow = "→" if r["direction"] == "out" else "←"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["sent_at"]))
        table.add_row(when, arrow, r["peer_name"] or r["peer_id"], snippet)
    return table


def register_search_command(app: typer.Typer, with_client: WithClient) -> None:
    """Add ``dchat search`` to ``app``."""

    @app.command("search")
    def search(
        ctx: typer.Context,
        query: Annotated[str | None, typer.Argument(help="words to find (all of them)")] = None,
        peer: Annotated[str | None, typer.Option(help="only this conversation")] = None,
        limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
        rebuild: Annotated[bool, typer.Option(help="index every stored text again first")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    ) -> None:
        """Search your stored messages (sent and received) for every word of QUERY."""
        if query is None and not rebuild:
            raise typer.BadParameter("give words to search for (or --rebuild)")

        def call(client: RemoteClient) -> dict[str, Any]:
            found: dict[str, Any] = {}
            if rebuild:
                found["indexed"] = client.rebuild_search()
            if query is not None:
                found |= client.search(query, peer=peer, limit=limit)
            return found

        reply = with_client(ctx, call)
        if as_json:
            _out.print_json(json.dumps(reply))
            return
        if "indexed" in reply:
            _out.print(f"indexed {reply['indexed']} messages")
        if query is not None:
            if reply["results"]:
                _out.print(results_table(reply["results"]))
            else:
                _out.print("no message holds every word of that search", highlight=False)
