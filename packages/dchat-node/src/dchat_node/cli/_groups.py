"""``dchat group create|invite|join|leave|remove|members|send|show|list|rename|anchor|link``
and ``add-bot|grant-bot`` (bots with what each may read, post, administer: :mod:`._group_bots`).

A group is named by its id, a unique prefix of 8+ hex digits, or its exact
title. ``create --anchored`` (or ``anchor`` later, admins) commits the group's
message order to the chat chain: ``show`` then marks anchored messages (``⚓``
and their number in the chain's order), lists missing ones and any
equivocation evidence. An invitation arrives as a ``group_update`` event (``op`` ``invited``)
and shows in ``dchat group list`` as ``invited``; ``dchat group join`` accepts it.
``dchat group link create GROUP [--uses N] [--expires 1d]`` prints an invite
link (``dchat-group:...``) for anyone, contact or not; ``dchat group join LINK``
on their node asks you to add them; ``link list`` and ``link revoke`` manage them.
Every command takes ``--json`` for machine-readable output.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ._group_bots import describe_grant, register_group_bot_commands

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_sdk import RemoteClient

    WithClient = Callable[[typer.Context, Callable[[RemoteClient], Any]], Any]

__all__ = ("group_app", "register_group_commands")

_out = Console()
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]
group_app = typer.Typer(help="Private groups (end-to-end encrypted).", no_args_is_help=True)
link_app = typer.Typer(help="Invite links: create, list, revoke.", no_args_is_help=True)
group_app.add_typer(link_app, name="link")
_LINK_PREFIX = "dchat-group:"  # dchat_messaging's LINK_PREFIX (not imported: the CLI starts fast)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> int:
    """Seconds in ``30m``, ``12h``, ``1d`` or a plain number of seconds."""
    text = text.strip().lower()
    unit = _UNITS.get(text[-1:], 0)
    number = text[:-1] if unit else text
    if not number.isdecimal():
        raise typer.BadParameter(f"{text!r}: a duration like 30m, 12h, 1d")
    return int(number) * (unit or 1)


def register_group_commands(with_client: WithClient) -> None:
    """Add the commands above to :data:`group_app`."""

    def say(as_json: bool, reply: Any, text: str) -> None:
        if as_json:
            _out.print_json(json.dumps(reply))
        else:
            _out.print(text, highlight=False)

    register_group_bot_commands(group_app, with_client)

    @group_app.command("create")
    def create(
        ctx: typer.Context,
        title: str,
        anchored: Annotated[bool, typer.Option(help="anchor its order on the chat chain")] = False,
        as_json: Json = False,
    ) -> None:
        """Create a group titled TITLE (you are its admin); prints its id."""
        gid = with_client(ctx, lambda c: c.create_group(title, anchored=anchored))
        say(as_json, {"group_id": gid, "title": title, "anchored": anchored}, gid)

    @group_app.command("anchor")
    def anchor(
        ctx: typer.Context,
        group: str,
        off: Annotated[bool, typer.Option("--off", help="stop anchoring")] = False,
        as_json: Json = False,
    ) -> None:
        """Anchor GROUP's message order on the chat chain (admins), or stop (--off)."""
        version = with_client(ctx, lambda c: c.anchor_group(group, on=not off))
        state = "off" if off else "on"
        say(
            as_json,
            {"anchored": not off, "version": version},
            f"anchoring {state} (version {version})",
        )

    @group_app.command("list")
    def listing(ctx: typer.Context, as_json: Json = False) -> None:
        """Your groups, with your status in each (active, invited, left)."""
        rows = with_client(ctx, lambda c: c.groups())
        table = Table("id", "title", "status", "members", "version")
        for g in rows:
            table.add_row(g["group_id"][:16], g["title"], g["status"], str(g["members"]),
                          str(g["version"]))  # fmt: skip
        if as_json:
            _out.print_json(json.dumps(rows))
        else:
            _out.print(table)

    @group_app.command("invite")
    def invite(
        ctx: typer.Context,
        group: str,
        contacts: list[str],
        admin: Annotated[bool, typer.Option(help="as an admin")] = False,
        as_json: Json = False,
    ) -> None:
        """Add the contacts CONTACTS to GROUP (several: in bulk) and send them invitations."""
        if len(contacts) == 1:
            who = with_client(ctx, lambda c: c.invite_to_group(group, contacts[0], admin=admin))
            say(as_json, {"invited": who}, f"invited {contacts[0]} ({who})")
            return
        ids = with_client(ctx, lambda c: c.invite_many_to_group(group, contacts, admin=admin))
        lines = "\n".join(f"invited {n} ({i})" for n, i in zip(contacts, ids, strict=False))
        say(as_json, {"invited": ids}, lines)

    @group_app.command("join")
    def join(ctx: typer.Context, group: str, as_json: Json = False) -> None:
        """Accept the invitation to GROUP, or join by an invite link (dchat-group:...).

        By link, the inviter's node adds you (a group_update event, op joined,
        follows) or says why not (a group_join_refused event: link_expired,
        link_used, link_revoked, not_allowed); a link that is not one is refused
        at once (bad_link).
        """
        if group.strip().startswith(_LINK_PREFIX):
            gid = with_client(ctx, lambda c: c.join_group_by_link(group))
            say(as_json, {"group_id": gid, "requested": True},
                f"asked to join {gid}; `dchat group list` shows it once added")  # fmt: skip
            return
        gid = with_client(ctx, lambda c: c.join_group(group))
        say(as_json, {"joined": gid}, f"joined {gid}")

    @link_app.command("create")
    def link_create(
        ctx: typer.Context,
        group: str,
        uses: Annotated[int, typer.Option(min=0, max=10_000, help="joins allowed (0: any)")] = 0,
        expires: Annotated[
            str, typer.Option(help="lifetime: 30m, 12h, 1d, 7d (at most 30d)")
        ] = "1d",
        as_json: Json = False,
    ) -> None:
        """An invite link to GROUP; whoever holds it may ask you to add them."""
        ttl = _duration(expires)
        reply = with_client(ctx, lambda c: c.create_group_link(group, uses=uses, expires_in=ttl))
        say(as_json, reply, reply["link"])

    @link_app.command("list")
    def link_list(ctx: typer.Context, group: str, as_json: Json = False) -> None:
        """GROUP's invite links (ids, expiry, uses; never the links themselves)."""
        rows = with_client(ctx, lambda c: c.group_links(group))
        table = Table("id", "state", "used", "uses", "expires")
        for r in rows:
            at = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["expires_at"]))
            table.add_row(r["id"], r["state"], str(r["used"]), str(r["uses"] or "any"), at)
        if as_json:
            _out.print_json(json.dumps(rows))
        else:
            _out.print(table)

    @link_app.command("revoke")
    def link_revoke(ctx: typer.Context, group: str, link: str, as_json: Json = False) -> None:
        """Revoke GROUP's invite link LINK (its id from `link list`)."""
        reply = with_client(ctx, lambda c: c.revoke_group_link(group, link))
        say(as_json, reply, f"revoked {reply['id']}")

    @group_app.command("leave")
    def leave(ctx: typer.Context, group: str, as_json: Json = False) -> None:
        """Leave GROUP (the others rotate their keys; nothing sent after opens here)."""
        gid = with_client(ctx, lambda c: c.leave_group(group))
        say(as_json, {"left": gid}, f"left {gid}")

    @group_app.command("remove")
    def remove(ctx: typer.Context, group: str, member: str, as_json: Json = False) -> None:
        """Remove MEMBER (contact name or identity id); the others rotate their keys."""
        who = with_client(ctx, lambda c: c.remove_from_group(group, member))
        say(as_json, {"removed": who}, f"removed {who}")

    @group_app.command("rename")
    def rename(ctx: typer.Context, group: str, title: str, as_json: Json = False) -> None:
        """Set GROUP's title."""
        version = with_client(ctx, lambda c: c.rename_group(group, title))
        say(as_json, {"title": title, "version": version}, f"renamed (version {version})")

    @group_app.command("members")
    def members(ctx: typer.Context, group: str, as_json: Json = False) -> None:
        """GROUP's members and their roles."""
        reply = with_client(ctx, lambda c: c.group(group))
        table = Table("name", "contact", "role", "identity")
        for m in reply["members"]:
            role = f"bot: {describe_grant(m['bot'])}" if m.get("bot") else m["role"]
            table.add_row(m["name"], m["contact"] or "", role, m["identity_id"])
        if as_json:
            _out.print_json(json.dumps(reply["members"]))
        else:
            _out.print(table)

    @group_app.command("send")
    def send(ctx: typer.Context, group: str, text: str, as_json: Json = False) -> None:
        """Post TEXT to GROUP (encrypted once, sent to every member device)."""
        mid = with_client(ctx, lambda c: c.send_to_group(group, text))
        say(as_json, {"message_id": mid}, mid)

    @group_app.command("show")
    def show(
        ctx: typer.Context,
        group: str,
        limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
        as_json: Json = False,
    ) -> None:
        """GROUP's state and newest messages."""
        state, messages = with_client(
            ctx, lambda c: (c.group(group), c.group_messages(group, limit))
        )
        if as_json:
            _out.print_json(json.dumps({**state, "messages": messages}))
            return
        names = {m["identity_id"]: m["name"] for m in state["members"]}
        _out.print(f"{state['title']} ({state['status']}, version {state['version']}, "
                   f"{len(state['members'])} members)", highlight=False)  # fmt: skip
        anchor = state.get("anchor", {})
        table = Table("time", "from", "message", *(["order"] if anchor.get("enabled") else []))
        for m in messages:
            at = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["sent_at_ms"] / 1000))
            who = "me" if m["direction"] == "out" else names.get(m["by"], m["by"][:12])
            order = m.get("anchored")
            mark = [] if not anchor.get("enabled") else ["…" if order is None else f"⚓ {order}"]
            table.add_row(at, who, m["text"], *mark)
        _out.print(table)
        if anchor.get("enabled"):
            _show_anchor(anchor, names)


def _show_anchor(anchor: dict[str, Any], names: dict[str, str]) -> None:
    """The anchored order's summary: what is anchored, missing, and any equivocation."""
    sequencer = names.get(anchor["sequencer"], anchor["sequencer"])
    summary = f"{anchor['anchored']} messages, next {anchor['next']}, {anchor['pending']} waiting"
    _out.print(f"anchored on the chat chain: {summary}; sequencer {sequencer}", highlight=False)
    for m in anchor["missing"]:
        who = names.get(m["by"], m["by"][:12])
        _out.print(f"missing: message {m['seq']} of {who}", highlight=False)
    for e in anchor["equivocations"]:
        who = names.get(e["accused"], e["accused"][:12])
        sizes = f"{len(e['a']) // 2} + {len(e['b']) // 2} bytes"
        _out.print(
            f"[bold red]EQUIVOCATION[/] ({e['kind']}) by {who}: {e['why']} "
            f"(evidence: two signed artefacts, {sizes})"
        )
