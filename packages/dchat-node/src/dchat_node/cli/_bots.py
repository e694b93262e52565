"""``dchat bot ...``: make this node's identity a bot and manage its Bot API tokens.

And the user's side of other people's bots (end to end, to the bot's node):
``dchat bot press PEER MESSAGE_ID BUTTON`` presses a button of a bot's
message (``dchat show PEER`` lists the buttons under it), ``dchat bot
commands PEER`` lists a bot's commands, ``dchat bot info PEER`` also its
description and what it asks for in groups (``dchat bot set-groups`` on the
bot's node says that; ``dchat group add-bot`` grants it), ``dchat bot inline PEER QUERY [--in
CONVERSATION --pick N]`` runs an inline query and sends the chosen result as
a normal message (or later: ``dchat bot pick PEER QUERY_ID RESULT_ID --in
CONVERSATION``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_sdk import RemoteClient

from ._bot_webhook import webhook_app
from ._common import fail, guard
from ._group_bots import describe_grant
from ._guardians import api_call

if TYPE_CHECKING:
    from pathlib import Path

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
    """The bot: name, description, commands, tokens (ids and scopes only), strangers' limits."""
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


@bot_app.command("set-open")
def set_open(ctx: typer.Context, state: str) -> None:
    """Whether strangers may write to the bot (on: their message requests are accepted)."""
    if state not in ("on", "off"):
        raise fail(f"say on or off, not {state!r}")
    _show(api_call(ctx, "PUT", "/v1/bot/open", {"open": state == "on"}))


def _remote(ctx: typer.Context) -> RemoteClient:
    data_dir: Path = ctx.find_root().obj
    return guard(lambda: RemoteClient.from_data_dir(data_dir))


Wait = Annotated[float, typer.Option(min=0, max=30, help="Seconds to wait for the bot.")]


@bot_app.command("press")
def press(ctx: typer.Context, peer: str, message_id: str, button: str, wait: Wait = 10) -> None:
    """Press BUTTON (its number from 1, its text or its data) under a bot's message."""
    with _remote(ctx) as client:
        reply = guard(lambda: client.bot_press(peer, message_id, button, wait=wait))
    if reply["url"] is not None:
        _out.print(f"[{reply['button']}] opens {reply['url']}", highlight=False)
        return
    answer = reply["answer"]
    _out.print(f"pressed [{reply['button']}] (query {reply['query_id']})", highlight=False)
    if answer is None:
        _out.print("no answer yet (it comes as a bot_answer event)", highlight=False)
    elif answer["text"]:
        mark = "alert" if answer["show_alert"] else "answer"
        _out.print(f"{mark}: {answer['text']}", highlight=False)


@bot_app.command("commands")
def commands(ctx: typer.Context, peer: str, wait: Wait = 10) -> None:
    """The commands the bot PEER lists (asked end to end)."""
    with _remote(ctx) as client:
        listed = guard(lambda: client.bot_commands(peer, wait=wait))
    for command in listed:
        _out.print(f"/{command['command']}  {command['description']}", highlight=False)
    if not listed:
        _out.print("the bot lists no commands", highlight=False)


@bot_app.command("info")
def info(ctx: typer.Context, peer: str, wait: Wait = 10) -> None:
    """What the bot PEER is: description, commands, what it asks for in groups."""
    with _remote(ctx) as client:
        got = guard(lambda: client.bot_info(peer, wait=wait))
    _out.print(got["description"] or "(no description)", highlight=False)
    asked = got["groups"]
    shown = "nothing said (an older bot node)" if asked is None else describe_grant(asked)
    _out.print(f"in groups it asks for: {shown}", highlight=False)
    for command in got["commands"]:
        _out.print(f"/{command['command']}  {command['description']}", highlight=False)


@bot_app.command("set-groups")
def set_groups(
    ctx: typer.Context,
    read: Annotated[str, typer.Option(help="commands (only commands to it) or all")] = "commands",
    post: Annotated[bool, typer.Option("--post/--no-post", help="to post")] = True,
    admin: Annotated[bool, typer.Option("--admin/--no-admin", help="to add, remove")] = False,
) -> None:
    """What this bot asks for in groups (users see it before they add it: `dchat bot info`)."""
    if read not in ("commands", "all"):
        raise fail(f"--read is commands or all, not {read!r}")
    body = {"read": read, "post": post, "admin": admin}
    _show(api_call(ctx, "PUT", "/v1/bot/groups", body))


@bot_app.command("inline")
def inline(
    ctx: typer.Context,
    peer: str,
    query: str,
    into: Annotated[
        str | None, typer.Option("--in", help="The conversation a picked result goes to.")
    ] = None,
    pick: Annotated[str | None, typer.Option(help="Send result N (from 1) or this id.")] = None,
    offset: Annotated[str, typer.Option(help="The next_offset of earlier results.")] = "",
    wait: Wait = 10,
) -> None:
    """Run the inline query QUERY of the bot PEER; with --pick and --in, send a result."""
    if pick is not None and into is None:
        raise fail("--pick needs --in CONVERSATION")
    with _remote(ctx) as client:
        reply = guard(lambda: client.bot_inline(peer, query, offset=offset, wait=wait))
        results = reply["results"]
        if pick is None or into is None:
            _out.print(f"query {reply['query_id']}", highlight=False)
            for n, result in enumerate(results, 1):
                about = f" - {result['description']}" if result["description"] else ""
                _out.print(f"{n}. {result['title']}{about}  (id {result['id']})", highlight=False)
            if reply["next_offset"]:
                _out.print(f"more: --offset {reply['next_offset']}", highlight=False)
            return
        ids = [r["id"] for r in results]
        chosen = ids[int(pick) - 1] if pick.isdecimal() and 1 <= int(pick) <= len(ids) else pick
        if chosen not in ids:
            raise fail(f"no result {pick!r} among {len(ids)}")
        sent = guard(lambda: client.bot_pick(peer, reply["query_id"], chosen, into))
    _out.print(f"sent to {into}: {sent['text']}", highlight=False)


@bot_app.command("pick")
def pick_result(
    ctx: typer.Context,
    peer: str,
    query_id: str,
    result_id: str,
    into: Annotated[str, typer.Option("--in", help="The conversation it goes to.")],
) -> None:
    """Send the result RESULT_ID of an earlier inline query as a normal message."""
    with _remote(ctx) as client:
        sent = guard(lambda: client.bot_pick(peer, query_id, result_id, into))
    _out.print(f"sent to {into}: {sent['text']}", highlight=False)
