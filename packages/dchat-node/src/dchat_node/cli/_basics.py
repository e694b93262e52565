"""``dchat init``, ``resync``, ``card``, ``contact add|list``, ``send``, ``inbox``, ``status``,
``demo``.

The commands a user meets first. ``send`` is on the fast path (issue 19): this
module imports only typer; the SDK loads when a command calls the node, rich
when one prints a table or JSON, attachments and burners when ``send`` uses them.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import fail as _fail
from ._common import guard as _guard
from ._common import with_client as _with_client
from ._lazy import new_part

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ("basics", "contact_app")

basics = new_part()
contact_app = typer.Typer(help="Manage contacts.", no_args_is_help=True)


@functools.cache
def _out() -> Console:
    from rich.console import Console

    return Console()


@basics.command("init")
def init_identity(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="The name shown on your contact card.")],
    phrase: Annotated[
        bool, typer.Option("--phrase", help="Derive the keys from a new recovery phrase.")
    ] = False,
    restore: Annotated[
        bool, typer.Option("--restore", help="Restore the identity of a recovery phrase.")
    ] = False,
    phrase_file: Annotated[
        Path | None, typer.Option(help="--restore: read the phrase from this file.")
    ] = None,
) -> None:
    """Create this node's identity and print its contact card.

    With ``--phrase`` the 24-word recovery phrase is printed once: write it
    down, it is not stored anywhere. With ``--restore`` the identity of a
    phrase comes back; then ``dchat resync CONTACT...`` asks contacts for its
    identity document.
    """
    if phrase and restore:
        raise _fail("use --phrase or --restore, not both")
    body: dict[str, Any] = {"name": name}
    if phrase:
        body["recovery_phrase"] = True
    if restore:
        if phrase_file is not None:
            text = _guard(lambda: phrase_file.read_text())
        else:
            text = typer.prompt("recovery phrase", hide_input=True)
        body["restore_phrase"] = " ".join(text.split())
    answer = _with_client(ctx, lambda c: c.request("POST", "/v1/identity", body))
    typer.echo(f"identity {answer['identity_id']}")
    if phrase:
        typer.echo("recovery phrase (shown once; anyone who has it owns this identity):")
        typer.echo(f"  {answer['recovery_phrase']}")
    typer.echo(answer["card"])


@basics.command("resync")
def resync(
    ctx: typer.Context,
    contacts: Annotated[list[str], typer.Argument(help="Contacts to ask.")],
) -> None:
    """After ``init --restore``: ask contacts for this identity's latest document."""
    answer = _with_client(
        ctx, lambda c: c.request("POST", "/v1/identity/resync", {"contacts": contacts})
    )
    typer.echo(f"asked {answer['asked']} contact(s); see `dchat id` for the document version")


@basics.command("card")
def card(ctx: typer.Context) -> None:
    """Print this identity's contact card, to give to people who should reach you."""
    typer.echo(_with_client(ctx, lambda c: c.card()))


@contact_app.command("add")
def contact_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="a name for the contact, or their @handle")],
    card: Annotated[
        str | None, typer.Argument(help="their card, or their @handle (looked up on chain)")
    ] = None,
) -> None:
    """Add a contact from the card they gave you, or by their public @handle.

    ``dchat contact add @alice`` (named alice) or ``dchat contact add al @alice``
    looks the handle up on the chat chain, verified by the node's light client.
    """
    from ._handles import add_by_handle, is_handle

    if card is None and not is_handle(name):
        raise _fail("give their card, or their @handle")
    if card is None or is_handle(card):
        who, identity = add_by_handle(ctx, card or name, None if card is None else name)
    else:
        contact = _with_client(ctx, lambda c: c.add_contact(name, card))
        who, identity = contact.name, contact.identity_id
    typer.echo(f"added {who} ({identity})")


@contact_app.command("list")
def contact_list(ctx: typer.Context) -> None:
    """List contacts."""
    from rich.table import Table

    table = Table("name", "identity")
    for contact in _with_client(ctx, lambda c: c.contacts()):
        table.add_row(contact.name, contact.identity_id)
    _out().print(table)


FileOption = Annotated[Path | None, typer.Option(exists=True, dir_okay=False)]


@basics.command("send")
def send(
    ctx: typer.Context,
    to: str,
    text: Annotated[
        str, typer.Argument(help="The text, or an attachment's caption; - reads it from stdin.")
    ] = "",
    as_burner: Annotated[str | None, typer.Option("--as", help="Send as this burner.")] = None,
    file: FileOption = None,
    image: FileOption = None,
    voice: FileOption = None,
    location: Annotated[str | None, typer.Option(help="LAT,LON[,label] in degrees.")] = None,
    media_type: Annotated[str | None, typer.Option("--type", help="Media type.")] = None,
    duration: Annotated[float, typer.Option(help="--voice: seconds.", min=0)] = 0.0,
) -> None:
    """Send TEXT to TO: a contact's name, or the identity id of a message request's sender.

    With --file, --image, --voice or --location the message carries that
    attachment (end-to-end encrypted; TEXT is its caption).
    """
    if text == "-":
        text = _guard(lambda: sys.stdin.read()).removesuffix("\n")
    if file or image or voice or location:
        from ._attachments import send_attachment

        files = {"document": file, "image": image, "voice": voice}
        send_attachment(ctx, to, text, files, location, media_type, duration)
        return
    if not text:
        raise _fail("give TEXT or an attachment")
    if as_burner is not None:
        from ._burners import send_as_burner

        send_as_burner(ctx, as_burner, to, text)
        return
    body = {"to": to, "text": text}
    reply = _with_client(ctx, lambda c: c.request("POST", "/v1/messages", body))
    note = ", relay unreachable" if reply.get("relay") == "unreachable" else ""
    typer.echo(f"queued {reply.get('message_id')}{note}")


@basics.command("inbox")
def inbox(
    ctx: typer.Context,
    messages: Annotated[
        bool, typer.Option("--messages", help="list stored messages instead of conversations")
    ] = False,
    peer: Annotated[str | None, typer.Option(help="messages: only this contact")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    after: Annotated[int | None, typer.Option(min=0, help="page: stored after this cursor")] = None,
    before: Annotated[int | None, typer.Option(min=0, help="page: stored before it")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Conversations, the most recent first, with unread counts and last message time.

    ``--messages`` (or ``--peer``, ``--after``, ``--before``) lists stored
    messages instead, oldest first; ``dchat show PEER`` shows one conversation.
    """
    from rich.table import Table

    from ._conversations import inbox_table

    if not (messages or peer is not None or after is not None or before is not None):
        lines = _with_client(ctx, lambda c: c.conversations())
        if as_json:
            _out().print_json(json.dumps(lines))
        else:
            _out().print(inbox_table(lines))
        return
    page = _with_client(ctx, lambda c: c.message_page(peer, limit, after=after, before=before))
    if as_json:
        _out().print_json(json.dumps([_as_dict(m) for m in page.messages]))
        return
    table = Table("", "who", "message")
    for m in page.messages:
        who = m.peer_name or m.peer_id
        table.add_row("<-" if m.direction == "in" else "->", who, m.text)
    _out().print(table)
    if page.missing:
        typer.echo(
            f"{page.missing} message(s) missing so far: they will show when they arrive", err=True
        )
    if after is not None or before is not None or page.before is not None:
        older = "none" if page.before is None else f"--before {page.before}"
        typer.echo(f"older: {older}; newer: --after {page.after}", err=True)


def _as_dict(message: Any) -> dict[str, Any]:
    return {name: getattr(message, name) for name in message.__slots__}


@basics.command("status")
def status(ctx: typer.Context) -> None:
    """Show the node's status."""
    _out().print_json(json.dumps(_with_client(ctx, lambda c: c.status())))


@basics.command("demo")
def demo() -> None:
    """Relay + two users as real processes: an E2E message to an offline recipient."""
    from ._demo import run_demo

    raise typer.Exit(run_demo(_out()))
