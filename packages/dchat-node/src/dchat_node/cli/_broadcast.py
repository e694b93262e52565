"""``dchat channel create|link|subscribe|unsubscribe|post|posts|list|show|add-publisher``.

Broadcast channels: one or a few publishers, many subscribers, posts
fanned out by relays. A channel is named by its id, a unique prefix of 8+
hex digits, or its exact title. ``link`` prints the invite link a
subscriber passes to ``subscribe`` (it lets them read, not publish); to let
someone publish, they send you the ``publisher key`` that ``show`` prints on
their node and you run ``add-publisher``. Every command takes ``--json``.
(``dchat wallet channel`` is the payment channels'.)
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_sdk import RemoteClient

    WithClient = Callable[[typer.Context, Callable[[RemoteClient], Any]], Any]

__all__ = ("broadcast_app", "register_broadcast_commands")

_out = Console()
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]
broadcast_app = typer.Typer(
    help="Broadcast channels (encrypted posts fanned out by relays).", no_args_is_help=True
)


def register_broadcast_commands(with_client: WithClient) -> None:
    """Add the commands above to :data:`broadcast_app`."""

    def say(as_json: bool, reply: Any, text: str) -> None:
        if as_json:
            _out.print_json(json.dumps(reply))
        else:
            _out.print(text, highlight=False, soft_wrap=True)

    @broadcast_app.command("create")
    def create(
        ctx: typer.Context,
        title: str,
        relay: Annotated[
            list[str] | None, typer.Option(help="a relay (default: home relays)")
        ] = None,
        as_json: Json = False,
    ) -> None:
        """Create a channel titled TITLE (you hold its key); prints its id and invite link."""
        made = with_client(ctx, lambda c: c.create_channel(title, relay or None))
        say(as_json, made, f"{made['channel_id']}\n{made['link']}")

    @broadcast_app.command("link")
    def link(ctx: typer.Context, channel: str, as_json: Json = False) -> None:
        """Print CHANNEL's invite link."""
        text = with_client(ctx, lambda c: c.channel_link(channel))
        say(as_json, {"link": text}, text)

    @broadcast_app.command("subscribe")
    def subscribe(ctx: typer.Context, link: str, as_json: Json = False) -> None:
        """Follow the channel of the invite LINK."""
        cid = with_client(ctx, lambda c: c.subscribe_channel(link))
        say(as_json, {"channel_id": cid}, f"subscribed {cid}")

    @broadcast_app.command("unsubscribe")
    def unsubscribe(ctx: typer.Context, channel: str, as_json: Json = False) -> None:
        """Stop following CHANNEL (your node forgets it and its posts)."""
        cid = with_client(ctx, lambda c: c.unsubscribe_channel(channel))
        say(as_json, {"unsubscribed": cid}, f"unsubscribed {cid}")

    @broadcast_app.command("post")
    def post(ctx: typer.Context, channel: str, text: str, as_json: Json = False) -> None:
        """Publish TEXT in CHANNEL (encrypted once, uploaded once per relay)."""
        pid = with_client(ctx, lambda c: c.post_to_channel(channel, text))
        say(as_json, {"post_id": pid}, pid)

    @broadcast_app.command("add-publisher")
    def add_publisher(ctx: typer.Context, channel: str, key: str, as_json: Json = False) -> None:
        """Let the holder of publisher KEY (hex: their `dchat channel show`) post in CHANNEL."""
        version = with_client(ctx, lambda c: c.add_channel_publisher(channel, key))
        say(as_json, {"version": version}, f"publishers changed (version {version})")

    @broadcast_app.command("list")
    def listing(ctx: typer.Context, as_json: Json = False) -> None:
        """Your channels and your role in each (owner, publisher, subscriber)."""
        rows = with_client(ctx, lambda c: c.channels())
        table = Table("id", "title", "role", "posts", "relays")
        for r in rows:
            table.add_row(r["channel_id"][:16], r["title"], r["role"], str(r["posts"]),
                          ", ".join(r["relays"]))  # fmt: skip
        if as_json:
            _out.print_json(json.dumps(rows))
        else:
            _out.print(table)

    @broadcast_app.command("show")
    def show(ctx: typer.Context, channel: str, as_json: Json = False) -> None:
        """CHANNEL's keys, publishers, gaps and refused posts."""
        state = with_client(ctx, lambda c: c.channel(channel))
        if as_json:
            _out.print_json(json.dumps(state))
            return
        for name in ("title", "role", "channel_id", "publisher_key", "gaps", "refused"):
            _out.print(f"{name.replace('_', ' ')}: {state[name]}", highlight=False)
        _out.print(f"publishers: {', '.join(state['publishers']) or '-'}", highlight=False)

    @broadcast_app.command("posts")
    def posts(
        ctx: typer.Context,
        channel: str,
        limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
        as_json: Json = False,
    ) -> None:
        """CHANNEL's newest posts."""
        rows = with_client(ctx, lambda c: c.channel_posts(channel, limit))
        if as_json:
            _out.print_json(json.dumps(rows))
            return
        table = Table("time", "from", "#", "post")
        for p in rows:
            at = time.strftime("%Y-%m-%d %H:%M", time.localtime(p["ms"] / 1000))
            who = "me" if p["dir"] == "out" else p["publisher"][:12]
            table.add_row(at, who, str(p["q"]), p["text"])
        _out.print(table)
