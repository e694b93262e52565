"""Conversation calls of the node API, mixed into :class:`~dchat_sdk.RemoteClient`.

Each maps one route of ``/v1/conversations``, ``/v1/messages/{id}/...``,
``/v1/payments``, ``/v1/conversation-settings``, ``/v1/search`` and
``/v1/contacts/{name}`` (see the node's ``api/_conversations.py``,
``api/_search.py`` and docs/protocol.md) and returns its JSON object.
Peers are a contact's name or an identity id; names are quoted into paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._models import Payments, PaymentSent, TokenPurchase, TokenWallet, shaped
from ._replies import obj

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("PAY_TIMEOUT", "ConversationCalls")

PAY_TIMEOUT = 120.0
"""Seconds :meth:`ConversationCalls.pay` waits: the node answers once the chain committed."""


def _seg(text: str) -> str:
    return quote(text, safe="")


class ConversationCalls:
    """Inbox, history, receipts, edits, deletes, reactions, search, settings, contact changes."""

    # One API round trip (method, path, JSON body, query parameters): RemoteClient's.
    _call: Callable[..., Any]

    def conversations(self) -> list[dict[str, Any]]:
        """The inbox: one line per conversation (unread count, last message time), newest first."""
        return list(obj(self._call("GET", "/v1/conversations"))["conversations"])

    def conversation(
        self, peer: str, limit: int = 100, *, mark_read: bool = False
    ) -> dict[str, Any]:
        """One conversation: its messages with direction, times, delivered/read marks,
        replies, edits and reactions; ``mark_read`` also marks it read."""
        params: dict[str, str | int] = {"limit": limit, "mark_read": str(mark_read).lower()}
        return obj(self._call("GET", f"/v1/conversations/{_seg(peer)}", params=params))

    def mark_read(self, peer: str) -> dict[str, Any]:
        """Mark ``peer``'s messages read (a read receipt goes if read receipts are on)."""
        return obj(self._call("POST", f"/v1/conversations/{_seg(peer)}/read"))

    def typing(self, peer: str, on: bool) -> bool:
        """Tell ``peer`` we (stopped) typing; False when typing indicators are off."""
        path = f"/v1/conversations/{_seg(peer)}/typing"
        return bool(obj(self._call("POST", path, {"on": on}))["sent"])

    def disappear(self, peer: str, seconds: int) -> dict[str, Any]:
        """Set the conversation's disappearing timer (0: off) on every device of both users.

        Messages disappear ``seconds`` after they are read (ours: after they are sent).
        """
        path = f"/v1/conversations/{_seg(peer)}/disappear"
        return obj(self._call("PUT", path, {"seconds": seconds}))

    def reply(self, to: str, message_id: str, text: str) -> str:
        """Send ``text`` to ``to`` quoting ``message_id``; returns the new message's id."""
        body = {"to": to, "text": text, "reply_to": message_id}
        return str(obj(self._call("POST", "/v1/messages", body))["message_id"])

    def edit(self, peer: str, message_id: str, text: str) -> dict[str, Any]:
        """Edit our message ``message_id`` to ``peer`` (on every device of both of us)."""
        body = {"peer": peer, "text": text}
        return obj(self._call("POST", f"/v1/messages/{_seg(message_id)}/edit", body))

    def delete_for_everyone(self, peer: str, message_id: str) -> dict[str, Any]:
        """Delete our message here and ask every device of both of us to (best effort)."""
        path = f"/v1/messages/{_seg(message_id)}/delete"
        return obj(self._call("POST", path, {"peer": peer}))

    def react(self, peer: str, message_id: str, emoji: str, *, on: bool = True) -> dict[str, Any]:
        """Add (or, ``on=False``, remove) our reaction to a message of the conversation."""
        body = {"peer": peer, "emoji": emoji, "on": on}
        return obj(self._call("POST", f"/v1/messages/{_seg(message_id)}/react", body))

    def forward(self, message_id: str, to: str) -> str:
        """Forward a stored message to ``to`` (marked forwarded); returns the new id."""
        path = f"/v1/messages/{_seg(message_id)}/forward"
        return str(obj(self._call("POST", path, {"to": to}))["message_id"])

    def pay(self, to: str, amount: int, note: str = "", *, fee: int = 1) -> PaymentSent:
        """Pay the contact ``to`` ``amount`` on the currency chain, inside the conversation.

        Returns once the transfer is committed and the message queued:
        ``{"message_id", "tx", "height", "amount", "to"}``. The recipient's
        node shows it pending until its light client proved the transfer.
        """
        body = {"to": to, "amount": amount, "note": note, "fee": fee}
        return shaped(self._call("POST", "/v1/payments", body, timeout=PAY_TIMEOUT), PaymentSent)

    def payments(self) -> Payments:
        """Received payments still unverified (``pending``), ours not yet sent (``unsent``)."""
        return shaped(self._call("GET", "/v1/payments"), Payments)

    def buy_tokens(self, relay: str, count: int, *, fee: int = 1) -> TokenPurchase:
        """Buy ``count`` paid tokens from ``relay`` (``[NODEID@]HOST:PORT``) on the currency chain.

        Returns once the transfer committed and the relay signed:
        ``{"relay", "bought", "paid", "tx", "held"}``. The node then spends
        them on deposits the relay would otherwise ask proof of work for.
        """
        body = {"relay": relay, "count": count, "fee": fee}
        return shaped(self._call("POST", "/v1/tokens", body, timeout=PAY_TIMEOUT), TokenPurchase)

    def tokens(self) -> TokenWallet:
        """The paid tokens held: ``{"total", "relays": [{"relay", "node_id", "count", ...}],
        "pending": [{"relay", "paid", "tx", "since"}]}`` (paid, not signed yet)."""
        return shaped(self._call("GET", "/v1/tokens"), TokenWallet)

    def conversation_settings(self, /, **changes: bool) -> dict[str, Any]:
        """The settings ``read_receipts`` and ``typing``; keyword arguments change them."""
        if not changes:
            return obj(self._call("GET", "/v1/conversation-settings"))
        return obj(self._call("PUT", "/v1/conversation-settings", dict(changes)))

    def search(
        self, query: str, *, peer: str | None = None, limit: int = 20, before: int | None = None
    ) -> dict[str, Any]:
        """Search the node's stored texts (sent and received) for every word of ``query``.

        Returns ``{"query", "results", "next_before"}``: results newest first, each a
        message with its ``text`` (latest edit), ``snippet`` and ``match`` (the matching
        word's ``[start, end]`` in the snippet); pass ``next_before`` as ``before`` for
        the next page. ``peer`` (a contact's name or identity id) narrows to one
        conversation. A bad query (no word, too long, too many words) raises
        :class:`~dchat_sdk.ApiError` ``invalid_request``.
        """
        params: dict[str, str | int] = {"q": query, "limit": limit}
        if peer is not None:
            params["peer"] = peer
        if before is not None:
            params["before"] = before
        return obj(self._call("GET", "/v1/search", params=params))

    def rebuild_search(self) -> int:
        """Index every stored text again (normally automatic); returns how many."""
        return int(obj(self._call("POST", "/v1/search/rebuild"))["indexed"])

    def remove_contact(self, name: str) -> dict[str, Any]:
        """Forget a contact (its messages stay; its next one is a message request).

        The put token it held for our mailbox is revoked: the relay takes its
        deposits as a stranger's from the mailbox link's next sync.
        """
        return obj(self._call("DELETE", f"/v1/contacts/{_seg(name)}"))

    def rename_contact(self, name: str, new_name: str) -> dict[str, Any]:
        """Give a contact another name."""
        return obj(self._call("PATCH", f"/v1/contacts/{_seg(name)}", {"name": new_name}))

    def block_contact(self, name: str) -> dict[str, Any]:
        """Block a contact: their new messages are dropped (not stored), earlier ones stay."""
        return obj(self._call("POST", f"/v1/contacts/{_seg(name)}/block"))
