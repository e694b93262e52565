"""API routes for messages (user role): sending, and listing with cursor paging.

``POST /v1/messages {to, text, [reply_to]}`` queues a message (a reply
when ``reply_to`` names a message of the conversation). ``GET /v1/messages``
lists stored ones, oldest first: without a cursor the newest ``limit``;
``after=C`` the ``limit`` stored after cursor ``C``; ``before=C`` the
``limit`` stored before it. The answer carries ``before`` (pass it to get
the page before this one; null when this page reached the oldest) and
``after`` (pass it to get what is newer). Cursors are storage order; paging
never repeats or skips a message. The inbox (no ``peer``) leaves out the
messages of open message requests (``/v1/requests``), so a page may hold
fewer than ``limit``; the cursors still move past them.

:func:`message_json` is the one JSON shape of a message, here and in the
event stream (``_events.py``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from dchat_core import IdentityId, MessageId
from dchat_network import tracing

from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_messaging.lowlevel import MessageEntry

    from .._runtime import Node
    from ..user._service import UserService

__all__ = ("Cursor", "add_message_routes", "message_json")

MAX_CURSOR = (1 << 63) - 1
Cursor = Annotated[int | None, Query(ge=0, le=MAX_CURSOR)]


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=16000)
    reply_to: str | None = Field(default=None, min_length=1, max_length=64)


def message_json(record: MessageEntry, name: str | None) -> dict[str, Any]:
    """A stored message as the API shows it (``peer_name``: its contact name, if any)."""
    return {
        "message_id": str(MessageId(record.message_id)),
        "direction": record.direction,
        "peer_id": record.peer_id,
        "peer_name": name,
        "text": record.body,
        "sent_at": record.sent_at,
        "stored_at": record.stored_at,
    }


async def traced_send(user: UserService, to: str, text: str) -> MessageId:
    """Send a text, in a ``dchat.send`` span when the node traces (``dchat_network.tracing``).

    The span ends when the message is encrypted and queued; the relay pool's
    ``dchat.deposit`` span that hands it to the relay links back to it.
    """
    with tracing.active.span("dchat.send") as span:
        mid = await user.send(to, text)
        if span is not None:
            span.set_attribute("dchat.content_kind", "text")
            tracing.active.sent(span)
    return mid


def add_message_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Add the routes above to ``app``."""

    @app.post("/v1/messages", dependencies=auth, status_code=202)
    async def send_message(body: SendMessage) -> dict[str, Any]:
        user = user_role(node).user
        if body.reply_to is not None:  # a reply quotes a message of the conversation
            target = MessageId.parse(body.reply_to)
            mid = await user.act(user.agent.converse.reply, body.to, target, body.text)
        else:
            mid = await traced_send(user, body.to, body.text)
        return {"message_id": str(mid), "relay": user.relay_state()}

    @app.get("/v1/messages", dependencies=auth)
    async def list_messages(
        peer: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Cursor = None,
        before: Cursor = None,
    ) -> dict[str, Any]:
        """Stored messages, oldest first: the newest ``limit``, or a page by cursor.

        ``after``/``before`` page in storage order; the answer's ``before`` and
        ``after`` are the cursors to continue with (docs/protocol.md, section 19).
        """
        user = user_role(node).user
        listing = functools.partial(user.book.messages, after=after, before=before)
        rows = await user.run(listing, peer, limit)
        cursors = [record.cursor for record, _ in rows if record.cursor is not None]
        if peer is None:  # the inbox: message requests wait in /v1/requests
            pending = user_role(node).requests.pending()
            rows = [(record, name) for record, name in rows if record.peer_id not in pending]
        if cursors:
            newest = max(cursors)
        else:  # nothing in range: what is newer starts where the range did
            newest = after if after is not None else max(0, (before or 1) - 1)
        missing = None
        if peer is not None:  # texts known to be missing from the conversation, so far
            if not peer.startswith(IdentityId.PREFIX):
                peer = str((await user.run(user.book.find, peer)).identity_id)
            missing = await user.run(user.agent.missing, peer)
        return {
            "messages": [message_json(record, name) for record, name in rows],
            "before": min(cursors) if len(cursors) == limit else None,
            "after": newest,
            "missing": missing,
        }
