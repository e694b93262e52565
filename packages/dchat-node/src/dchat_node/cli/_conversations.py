"""``dchat inbox``, ``show``, ``pay``, ``read``, ``reply``, ``edit``, ``delete``, ``react``,
``forward``, ``typing``, ``disappear``, ``conversation-settings`` and
``contact remove|rename|block``.

``dchat disappear PEER DURATION|off`` is a command of its own, not an option of
``conversation-settings``: those settings are this user's alone and name no
peer, while a timer belongs to one conversation and is announced to the peer.

``dchat show PEER`` marks the conversation read as it shows it (a read receipt
goes to the peer if read receipts are on); ``--keep-unread`` does not.
``dchat read PEER`` marks it read without showing it. Every command takes
``--json`` for machine-readable output.
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

__all__ = ("register_conversation_commands",)

_out = Console()
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


def _marks(m: dict[str, Any]) -> str:
    """Delivered/read marks: ✓ delivered, ✓✓ read (ours); • unread (theirs)."""
    if m["direction"] == "out":
        return "✓✓" if m["read"] else "✓" if m["delivered"] else "…"
    return "" if m["read"] else "•"


def _paid(payment: dict[str, Any] | None) -> str:
    """A payment's mark: verified, pending, refused (then not shown as paid) or sent."""
    if payment is None:
        return ""
    amount, state = payment["amount"], payment["state"]
    if state == "refused":
        return f"[payment refused: {payment['code']}] "
    return {"verified": f"[paid {amount} ✔] ", "sent": f"[paid {amount}] "}.get(
        state, f"[payment {amount} pending] "
    )


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """Seconds of ``30s``, ``5m``, ``1h``, ``7d``, ``1w`` or a bare number; ``off`` is 0."""
    text = text.strip().lower()
    if text == "off":
        return 0
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not number.isdecimal() or len(number) > 9:
        raise typer.BadParameter(f"{text!r} is not a duration like 30s, 5m, 1h, 7d, 1w or off")
    return int(number) * _UNITS[unit]


def _span(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{max(0.0, seconds):.0f}s"


def _timer(m: dict[str, Any], now: float) -> str:
    """⏱ and the time left, for a message whose disappearing timer runs."""
    at = m.get("expires_at")
    return "" if at is None else f"⏱ {_span(at - now)}"


def _line(m: dict[str, Any]) -> str:
    text = _paid(m.get("payment")) + m["text"]
    if m["reply_to"]:
        text = f"↪ {m['reply_to'][:14]}… {text}"
    if m["forwarded"]:
        text = f"[forwarded] {text}"
    if m["edited"]:
        text += " (edited)"
    reactions = " ".join(e for emojis in m["reactions"].values() for e in emojis)
    return f"{text}  {reactions}".rstrip() + _buttons(m.get("reply_markup"))


def _buttons(markup: dict[str, Any] | None) -> str:
    """A bot's inline keyboard under its message: numbered buttons, a row a line."""
    if not markup:
        return ""
    lines, n = [], 0
    for row in markup["inline_keyboard"]:
        cells = []
        for button in row:
            n += 1
            link = " ↗" if "url" in button else ""
            cells.append(f"[{n}: {button['text']}{link}]")
        lines.append(" ".join(cells))
    return "\n" + "\n".join(lines)


def inbox_table(lines: list[dict[str, Any]]) -> Table:
    """The inbox as a table."""
    table = Table("who", "unread", "last", "message")
    for c in lines:
        arrow = "→ " if c["last_direction"] == "out" else ""
        who = c["peer_name"] or c["peer_id"]
        table.add_row(who, str(c["unread"] or ""), _when(c["last_at"]), arrow + c["last_text"])
    return table


def register_conversation_commands(
    app: typer.Typer, contact_app: typer.Typer, with_client: WithClient
) -> None:
    """Add the commands above to ``app`` and ``contact_app``."""

    def show_json_or(as_json: bool, reply: Any, text: str) -> None:
        if as_json:
            _out.print_json(json.dumps(reply))
        else:
            _out.print(text, highlight=False)

    @app.command("show")
    def show(
        ctx: typer.Context,
        peer: str,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
        keep_unread: Annotated[bool, typer.Option(help="do not mark it read")] = False,
        as_json: Json = False,
    ) -> None:
        """One conversation with times, direction, delivered (✓) and read (✓✓) marks.

        Showing marks it read (a read receipt goes if read receipts are on).
        """
        reply = with_client(ctx, lambda c: c.conversation(peer, limit, mark_read=not keep_unread))
        if as_json:
            _out.print_json(json.dumps(reply))
            return
        table = Table("time", "", "id", "message", "", "")
        now = time.time()
        for m in reply["messages"]:
            arrow = "→" if m["direction"] == "out" else "←"
            marks = (_marks(m), _timer(m, now))
            table.add_row(_when(m["sent_at"]), arrow, m["message_id"], _line(m), *marks)
        if reply.get("disappear_s"):
            _out.print(f"disappearing messages: {_span(reply['disappear_s'])} after reading")
        _out.print(table)

    @app.command("pay")
    def pay(
        ctx: typer.Context,
        peer: str,
        amount: Annotated[int, typer.Argument(min=1, max=2**63 - 1)],
        note: Annotated[str, typer.Option(help="a note with the payment")] = "",
        fee: Annotated[int, typer.Option(min=0)] = 1,
        as_json: Json = False,
    ) -> None:
        """Pay PEER AMOUNT on the currency chain, inside the conversation.

        Waits until the chain committed the transfer, then sends the message;
        PEER's node shows it as paid once its light client proved the transfer.
        """
        reply = with_client(ctx, lambda c: c.pay(peer, amount, note, fee=fee))
        text = f"paid {amount} at height {reply['height']} (tx {reply['tx']})"
        text += f"; sent {reply['message_id']}"
        show_json_or(as_json, reply, text)

    @app.command("read")
    def read(ctx: typer.Context, peer: str, as_json: Json = False) -> None:
        """Mark PEER's messages read (a read receipt goes if read receipts are on)."""
        reply = with_client(ctx, lambda c: c.mark_read(peer))
        receipt = "a read receipt was sent" if reply["receipt_sent"] else "no read receipt sent"
        show_json_or(as_json, reply, f"marked {len(reply['read'])} read; {receipt}")

    @app.command("reply")
    def reply_to(
        ctx: typer.Context, peer: str, message_id: str, text: str, as_json: Json = False
    ) -> None:
        """Send TEXT to PEER quoting MESSAGE_ID."""
        mid = with_client(ctx, lambda c: c.reply(peer, message_id, text))
        show_json_or(as_json, {"message_id": mid}, f"queued {mid}")

    @app.command("edit")
    def edit(
        ctx: typer.Context, peer: str, message_id: str, text: str, as_json: Json = False
    ) -> None:
        """Edit your message MESSAGE_ID to PEER (history is kept on each device)."""
        reply = with_client(ctx, lambda c: c.edit(peer, message_id, text))
        show_json_or(as_json, reply, f"edited {message_id}")

    @app.command("delete")
    def delete(ctx: typer.Context, peer: str, message_id: str, as_json: Json = False) -> None:
        """Delete your message for everyone: best effort (see the note it prints)."""
        reply = with_client(ctx, lambda c: c.delete_for_everyone(peer, message_id))
        show_json_or(as_json, reply, reply["note"])

    @app.command("react")
    def react(
        ctx: typer.Context,
        peer: str,
        message_id: str,
        emoji: str,
        remove: Annotated[bool, typer.Option("--remove", help="take it back")] = False,
        as_json: Json = False,
    ) -> None:
        """React to a message with EMOJI (one per person and emoji; --remove takes it back)."""
        reply = with_client(ctx, lambda c: c.react(peer, message_id, emoji, on=not remove))
        show_json_or(as_json, reply, f"{'removed' if remove else 'reacted'} {emoji}")

    @app.command("forward")
    def forward(ctx: typer.Context, message_id: str, to: str, as_json: Json = False) -> None:
        """Forward a stored message to TO (marked forwarded, no link to the original)."""
        mid = with_client(ctx, lambda c: c.forward(message_id, to))
        show_json_or(as_json, {"message_id": mid}, f"queued {mid}")

    @app.command("disappear")
    def disappear(ctx: typer.Context, peer: str, duration: str, as_json: Json = False) -> None:
        """Make messages with PEER disappear DURATION (30s, 5m, 1h, 7d, 1w) after reading, or off.

        Both of you see the change; it applies to messages read (yours: sent) from now on.
        """
        seconds = parse_duration(duration)
        reply = with_client(ctx, lambda c: c.disappear(peer, seconds))
        text = f"disappearing messages {f'after {_span(seconds)}' if seconds else 'off'}"
        show_json_or(as_json, reply, f"{text} with {peer}")

    @app.command("conversation-settings")
    def settings(
        ctx: typer.Context,
        read_receipts: Annotated[
            bool | None, typer.Option("--read-receipts/--no-read-receipts")
        ] = None,
        typing: Annotated[bool | None, typer.Option("--typing/--no-typing")] = None,
        as_json: Json = False,
    ) -> None:
        """Show or change whether you send read receipts (default on) and typing (off)."""
        changes = {
            k: v
            for k, v in {"read_receipts": read_receipts, "typing": typing}.items()
            if v is not None
        }
        reply = with_client(ctx, lambda c: c.conversation_settings(**changes))
        text = ", ".join(f"{k}: {'on' if v else 'off'}" for k, v in reply.items())
        show_json_or(as_json, reply, text)

    @contact_app.command("remove")
    def contact_remove(ctx: typer.Context, name: str, as_json: Json = False) -> None:
        """Forget a contact (messages stay; their next message is a message request)."""
        reply = with_client(ctx, lambda c: c.remove_contact(name))
        show_json_or(as_json, reply, f"removed {name}")

    @contact_app.command("rename")
    def contact_rename(ctx: typer.Context, name: str, new_name: str, as_json: Json = False) -> None:
        """Give a contact another name."""
        reply = with_client(ctx, lambda c: c.rename_contact(name, new_name))
        show_json_or(as_json, reply, f"renamed {name} to {new_name}")

    @contact_app.command("block")
    def contact_block(ctx: typer.Context, name: str, as_json: Json = False) -> None:
        """Block a contact: their new messages are dropped unstored; earlier ones stay."""
        reply = with_client(ctx, lambda c: c.block_contact(name))
        show_json_or(as_json, reply, f"blocked {name}: their new messages are dropped")
