"""``dchat``: the user's client, a thin shell over the SDK's ``RemoteClient``.

It must stay light (issue 19): no node server, storage or chain at import; the
wallet commands (which use the chain) load only when ``dchat wallet`` runs.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from dchat_sdk import RemoteClient

from ._attachments import attachment_app, send_attachment
from ._bots import bot_app
from ._broadcast import broadcast_app, register_broadcast_commands
from ._burners import burner_app, send_as_burner
from ._common import DEFAULT_DIR as _DEFAULT_DIR
from ._common import err_console as _err
from ._common import fail as _fail
from ._common import guard as _guard
from ._conversations import inbox_table, register_conversation_commands
from ._groups import group_app, register_group_commands
from ._guardians import guardian_app
from ._handles import add_by_handle, handle_app, is_handle
from ._identity import register_identity_commands
from ._lazy import LazyGroups
from ._open import register_open_command
from ._privacy import privacy_app
from ._requests import register_request_commands
from ._search import register_search_command
from ._tokens import tokens_app
from ._watch import register_watch_command

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("app",)

T = TypeVar("T")
_out = Console()


@functools.cache
def _wallet_app() -> typer.Typer:
    from ._chain import wallet_app
    from ._channels import channel_app
    from ._stealth import pay, scan, stealth_address, sweep

    wallet_app.add_typer(channel_app, name="channel")
    wallet_app.command("stealth-address")(stealth_address)
    wallet_app.command("pay")(pay)
    wallet_app.command("scan")(scan)
    wallet_app.command("sweep")(sweep)
    return wallet_app


class _ClientGroup(LazyGroups):
    lazy: ClassVar = {"wallet": ("A currency-chain wallet.", _wallet_app)}


app = typer.Typer(
    help="dchat: end-to-end encrypted chat, from the command line.",
    no_args_is_help=True,
    cls=_ClientGroup,
)
contact_app = typer.Typer(help="Manage contacts.", no_args_is_help=True)
app.add_typer(contact_app, name="contact")
app.add_typer(guardian_app, name="guardian")
app.add_typer(burner_app, name="burner")
app.add_typer(bot_app, name="bot")
app.add_typer(handle_app, name="handle")
app.add_typer(attachment_app, name="attachment")
app.add_typer(group_app, name="group")
app.add_typer(broadcast_app, name="channel")
app.add_typer(tokens_app, name="tokens")
app.add_typer(privacy_app, name="privacy")

DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="DCHAT_DATA_DIR", help="The node's data directory.")
]


@app.callback()
def _options(ctx: typer.Context, data_dir: DataDir = _DEFAULT_DIR) -> None:
    """Options shared by every ``dchat`` command."""
    ctx.obj = data_dir


def _with_client(ctx: typer.Context, action: Callable[[RemoteClient], T]) -> T:
    data_dir: Path = ctx.find_root().obj
    with _guard(lambda: RemoteClient.from_data_dir(data_dir)) as client:
        return _guard(lambda: action(client))


@app.command("init")
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
    _out.print(f"identity {answer['identity_id']}")
    if phrase:
        _out.print("recovery phrase (shown once; anyone who has it owns this identity):")
        _out.print(f"  {answer['recovery_phrase']}", soft_wrap=True, highlight=False)
    _out.print(answer["card"], soft_wrap=True)


@app.command("resync")
def resync(
    ctx: typer.Context,
    contacts: Annotated[list[str], typer.Argument(help="Contacts to ask.")],
) -> None:
    """After ``init --restore``: ask contacts for this identity's latest document."""
    answer = _with_client(
        ctx, lambda c: c.request("POST", "/v1/identity/resync", {"contacts": contacts})
    )
    _out.print(f"asked {answer['asked']} contact(s); see `dchat id` for the document version")


@app.command("card")
def card(ctx: typer.Context) -> None:
    """Print this identity's contact card, to give to people who should reach you."""
    _out.print(_with_client(ctx, lambda c: c.card()), soft_wrap=True, highlight=False)


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
    if card is None and not is_handle(name):
        raise _fail("give their card, or their @handle")
    if card is None or is_handle(card):
        who, identity = add_by_handle(ctx, card or name, None if card is None else name)
    else:
        contact = _with_client(ctx, lambda c: c.add_contact(name, card))
        who, identity = contact.name, contact.identity_id
    _out.print(f"added {who} ({identity})", highlight=False)


@contact_app.command("list")
def contact_list(ctx: typer.Context) -> None:
    """List contacts."""
    table = Table("name", "identity")
    for contact in _with_client(ctx, lambda c: c.contacts()):
        table.add_row(contact.name, contact.identity_id)
    _out.print(table)


register_identity_commands(app, lambda ctx, action: _with_client(ctx, action))
register_request_commands(app)
register_watch_command(app)
register_open_command(app)
register_conversation_commands(app, contact_app, lambda ctx, action: _with_client(ctx, action))
register_group_commands(lambda ctx, action: _with_client(ctx, action))
register_broadcast_commands(lambda ctx, action: _with_client(ctx, action))
register_search_command(app, lambda ctx, action: _with_client(ctx, action))


FileOption = Annotated[Path | None, typer.Option(exists=True, dir_okay=False)]


@app.command("send")
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
        files = {"document": file, "image": image, "voice": voice}
        send_attachment(ctx, to, text, files, location, media_type, duration)
        return
    if not text:
        raise _fail("give TEXT or an attachment")
    if as_burner is not None:
        send_as_burner(ctx, as_burner, to, text)
        return
    body = {"to": to, "text": text}
    reply = _with_client(ctx, lambda c: c.request("POST", "/v1/messages", body))
    note = ", relay unreachable" if reply.get("relay") == "unreachable" else ""
    _out.print(f"queued {reply.get('message_id')}{note}", highlight=False)


@app.command("inbox")
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
    if not (messages or peer is not None or after is not None or before is not None):
        lines = _with_client(ctx, lambda c: c.conversations())
        if as_json:
            _out.print_json(json.dumps(lines))
        else:
            _out.print(inbox_table(lines))
        return
    page = _with_client(ctx, lambda c: c.message_page(peer, limit, after=after, before=before))
    if as_json:
        _out.print_json(json.dumps([_as_dict(m) for m in page.messages]))
        return
    table = Table("", "who", "message")
    for m in page.messages:
        who = m.peer_name or m.peer_id
        table.add_row("<-" if m.direction == "in" else "->", who, m.text)
    _out.print(table)
    if page.missing:
        _err.print(f"{page.missing} message(s) missing so far: they will show when they arrive")
    if after is not None or before is not None or page.before is not None:
        older = "none" if page.before is None else f"--before {page.before}"
        _err.print(f"older: {older}; newer: --after {page.after}", highlight=False)


def _as_dict(message: Any) -> dict[str, Any]:
    return {name: getattr(message, name) for name in message.__slots__}


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the node's status."""
    _out.print_json(json.dumps(_with_client(ctx, lambda c: c.status())))


@app.command("demo")
def demo() -> None:
    """Relay + two users as real processes: an E2E message to an offline recipient."""
    from ._demo import run_demo

    raise typer.Exit(run_demo(_out))
