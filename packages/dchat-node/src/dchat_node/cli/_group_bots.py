"""``dchat group add-bot|grant-bot``: bots in groups, with what each may read, post, administer.

``add-bot GROUP BOT`` first asks the bot (end to end) what it is and what it
asks for in groups, and shows it; the grant is what it asks for unless
``--read``, ``--post/--no-post`` or ``--admin/--no-admin`` say otherwise, and
is added only once you confirm (``--yes`` skips the question, not the
showing; a bot that does not answer in time is added only with ``--yes``).
A bot that reads ``commands`` never receives the group's keys: only texts
that are commands to it (``/cmd`` or ``/cmd@bot``) reach it. The grant is
part of the group's signed state, and every member's node enforces it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_sdk import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_sdk import RemoteClient

    WithClient = Callable[[typer.Context, Callable[[RemoteClient], Any]], Any]

__all__ = ("describe_grant", "register_group_bot_commands")

_out = Console()
Read = Annotated[str | None, typer.Option(help="commands (only commands to it) or all")]
Post = Annotated[bool | None, typer.Option("--post/--no-post", help="may post")]
Admin = Annotated[bool | None, typer.Option("--admin/--no-admin", help="may add and remove")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def describe_grant(grant: dict[str, Any]) -> str:
    """``reads commands only, posts`` and the like."""
    read = "reads every message" if grant["read"] == "all" else "reads commands to it only"
    post = "posts" if grant["post"] else "does not post"
    admin = ", adds and removes members" if grant["admin"] else ""
    return f"{read}, {post}{admin}"


def _grant(asked: dict[str, Any] | None, read: str | None, post: bool | None,
           admin: bool | None) -> dict[str, Any]:  # fmt: skip
    base = asked or {"read": "commands", "post": True, "admin": False}
    grant = {"read": read or base["read"], "post": base["post"] if post is None else post,
             "admin": base["admin"] if admin is None else admin}  # fmt: skip
    if grant["read"] not in ("commands", "all"):
        raise typer.BadParameter("--read is commands or all")
    return grant


def register_group_bot_commands(group_app: typer.Typer, with_client: WithClient) -> None:
    """Add ``add-bot`` and ``grant-bot`` to ``group_app``."""

    @group_app.command("add-bot")
    def add_bot(
        ctx: typer.Context,
        group: str,
        bot: str,
        read: Read = None,
        post: Post = None,
        admin: Admin = None,
        yes: Annotated[bool, typer.Option("--yes", help="do not ask to confirm")] = False,
        wait: Annotated[float, typer.Option(min=0.1, max=30, help="seconds for the bot")] = 10,
        as_json: Json = False,
    ) -> None:
        """Add the bot BOT (a contact) to GROUP, after showing what it asks for."""
        info = with_client(ctx, lambda c: _info(c, bot, wait))
        asked = None if info is None else info.get("groups")
        if info is None:
            _out.print(f"{bot} did not answer within {wait:g} s", highlight=False)
        else:
            about = info.get("description") or "(no description)"
            _out.print(f"{bot}: {about}", highlight=False)
            shown = "nothing (an older bot node)" if asked is None else describe_grant(asked)
            _out.print(f"it asks for: {shown}", highlight=False)
        grant = _grant(asked, read, post, admin)
        _out.print(f"granted: {describe_grant(grant)}", highlight=False)
        if not yes and (info is None or not typer.confirm("add it?")):
            raise typer.Exit(1)
        who = with_client(ctx, lambda c: c.add_bot_to_group(group, bot, **grant))
        if as_json:
            _out.print_json(json.dumps({"bot": who, "grant": grant}))
        else:
            _out.print(f"added {bot} ({who})", highlight=False)

    @group_app.command("grant-bot")
    def grant_bot(
        ctx: typer.Context, group: str, bot: str, read: Read = None, post: Post = None,
        admin: Admin = None, as_json: Json = False,
    ) -> None:  # fmt: skip
        """Change what the bot BOT may do in GROUP (admins); unsaid flags keep their value."""
        state = with_client(ctx, lambda c: c.group(group))
        now = next((m.get("bot") for m in state["members"] if bot in (m["name"], m["contact"],
                    m["identity_id"])), None)  # fmt: skip
        grant = _grant(now, read, post, admin)
        version = with_client(ctx, lambda c: c.set_bot_grant(group, bot, **grant))
        if as_json:
            _out.print_json(json.dumps({"grant": grant, "version": version}))
        else:
            _out.print(f"{bot} {describe_grant(grant)} (version {version})", highlight=False)


def _info(client: RemoteClient, bot: str, wait: float) -> dict[str, Any] | None:
    try:
        return client.bot_info(bot, wait=wait)
    except ApiError as exc:
        if exc.code == "bot_timeout":
            return None
        raise
