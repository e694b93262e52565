"""API routes for conversations (user role): inbox, history, read, edit, delete, react, ...

* ``GET /v1/conversations``: the inbox, one line per conversation (newest
  first) with its unread count and last message time (over the newest
  :data:`INBOX_SCAN` stored messages; open message requests are left out, as
  in ``/v1/messages``).
* ``GET /v1/conversations/{peer}?limit=&mark_read=``: one conversation with
  times, direction, delivered/read marks, replies, edits, reactions and
  payments (``payment``: null, or its amount, note and state, see ``_payments.py``);
  ``mark_read=true`` also marks it read (as ``POST .../read``).
* ``POST /v1/conversations/{peer}/read``: mark the peer's texts read; a
  read receipt goes to them if this user sends read receipts.
* ``POST /v1/conversations/{peer}/typing {on}``: a typing indicator (only if
  turned on in the settings).
* ``PUT /v1/conversations/{peer}/disappear {seconds}``: set the conversation's
  disappearing timer (0: off) on every device of both users.
* ``POST /v1/messages/{id}/edit {peer, text}``, ``/delete {peer}``,
  ``/react {peer, emoji, on}``, ``/forward {to}``; a reply is
  ``POST /v1/messages {to, text, reply_to}`` (``_messages.py``).
* ``GET`` / ``PUT /v1/conversation-settings {read_receipts, typing}``.
* ``DELETE /v1/contacts/{name}``, ``PATCH /v1/contacts/{name} {name}``,
  ``POST /v1/contacts/{name}/block``.

Every step runs in the messaging agent (``UserMessaging.converse``,
``.conversations``, sans-IO); these routes only parse, call and shape.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from dchat_core import MessageId
from dchat_messaging.bots import ReceivedKeyboards
from dchat_messaging.lowlevel import MAX_TIMER
from dchat_storage import EngineStore

from ._messages import message_json
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node
    from ..user._service import UserService

__all__ = ("INBOX_SCAN", "add_conversation_routes")

INBOX_SCAN = 5000
"""How many of the newest stored messages the inbox counts over."""
Peer = Annotated[str, PathParam(min_length=1, max_length=128)]
Id = Annotated[str, PathParam(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditBody(_Strict):
    peer: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=16000)


class PeerBody(_Strict):
    peer: str = Field(min_length=1, max_length=128)


class ReactBody(_Strict):
    peer: str = Field(min_length=1, max_length=128)
    emoji: str = Field(min_length=1, max_length=32)
    on: bool = True


class ForwardBody(_Strict):
    to: str = Field(min_length=1, max_length=128)


class TypingBody(_Strict):
    on: bool


class DisappearBody(_Strict):
    seconds: int = Field(ge=0, le=MAX_TIMER, strict=True)


class SettingsBody(_Strict):
    read_receipts: bool | None = None
    typing: bool | None = None


class RenameBody(_Strict):
    name: str = Field(min_length=1, max_length=64)


def parse_id(text: str) -> MessageId:
    """A message id as the API shows it."""
    return MessageId.parse(text)


def add_conversation_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Add the routes above to ``app``."""

    def user() -> UserService:
        return user_role(node).user

    keyboards = ReceivedKeyboards(EngineStore(node.store.db))  # bots' inline keyboards

    @app.get("/v1/conversations", dependencies=auth)
    async def inbox() -> dict[str, Any]:
        u = user()
        rows = await u.run(u.book.messages, None, INBOX_SCAN)
        pending = user_role(node).requests.pending()
        rows = [(record, name) for record, name in rows if record.peer_id not in pending]
        return {"conversations": await u.run(u.agent.conversations.inbox, rows)}

    @app.get("/v1/conversations/{peer}", dependencies=auth)
    async def show(
        peer: Peer,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        mark_read: bool = False,
    ) -> dict[str, Any]:
        u = user()
        read = await u.act(u.agent.converse.read, peer) if mark_read else []
        conversations = u.agent.conversations

        def listing() -> list[dict[str, Any]]:  # one worker trip for the texts and notes
            rows = u.book.messages(peer, limit)
            payments = u.agent.payments
            return [
                {**message_json(r, n), **conversations.row(r), **payments.row(r.message_id)}
                | keyboards.row(r.peer_id, r.direction, r.message_id)
                for r, n in rows
            ]

        card = await u.run(u.book.find, peer)
        timer = await u.run(conversations.timers.timer, str(card.identity_id))
        return {
            "peer_id": str(card.identity_id),
            "disappear_s": timer,
            "messages": await u.run(listing),
            "marked_read": [str(i) for i in read],
        }

    @app.post("/v1/conversations/{peer}/read", dependencies=auth)
    async def read(peer: Peer) -> dict[str, Any]:
        u = user()
        ids = await u.act(u.agent.converse.read, peer)
        settings = await u.run(u.agent.conversations.settings)
        return {
            "read": [str(i) for i in ids],
            "receipt_sent": bool(ids) and settings["read_receipts"],
        }

    @app.post("/v1/conversations/{peer}/typing", dependencies=auth)
    async def typing(peer: Peer, body: TypingBody) -> dict[str, Any]:
        u = user()
        return {"sent": await u.act(u.agent.converse.typing, peer, body.on)}

    @app.put("/v1/conversations/{peer}/disappear", dependencies=auth, status_code=202)
    async def disappear(peer: Peer, body: DisappearBody) -> dict[str, Any]:
        u = user()
        mid = await u.act(u.agent.converse.disappear, peer, body.seconds)
        return {"peer": peer, "seconds": body.seconds, "message_id": str(mid)}

    @app.post("/v1/messages/{mid}/edit", dependencies=auth, status_code=202)
    async def edit(mid: Id, body: EditBody) -> dict[str, Any]:
        u = user()
        await u.act(u.agent.converse.edit, body.peer, parse_id(mid), body.text)
        return {"message_id": mid, "text": body.text}

    @app.post("/v1/messages/{mid}/delete", dependencies=auth, status_code=202)
    async def delete(mid: Id, body: PeerBody) -> dict[str, Any]:
        u = user()
        await u.act(u.agent.converse.delete_for_everyone, body.peer, parse_id(mid))
        return {
            "deleted": mid,
            "note": "deleted here; every device of both of you was asked to delete it"
            " (best effort: a device that does not honour it keeps it)",
        }

    @app.post("/v1/messages/{mid}/react", dependencies=auth, status_code=202)
    async def react(mid: Id, body: ReactBody) -> dict[str, Any]:
        u = user()
        react = functools.partial(u.agent.converse.react, on=body.on)
        await u.act(react, body.peer, parse_id(mid), body.emoji)
        return {"message_id": mid, "emoji": body.emoji, "on": body.on}

    @app.post("/v1/messages/{mid}/forward", dependencies=auth, status_code=202)
    async def forward(mid: Id, body: ForwardBody) -> dict[str, Any]:
        u = user()
        new = await u.act(u.agent.converse.forward, parse_id(mid), body.to)
        return {"message_id": str(new), "forwarded": mid}

    @app.get("/v1/conversation-settings", dependencies=auth)
    async def settings() -> dict[str, Any]:
        u = user()
        return dict(await u.run(u.agent.conversations.settings))

    @app.put("/v1/conversation-settings", dependencies=auth)
    async def set_settings(body: SettingsBody) -> dict[str, Any]:
        u = user()
        changes = body.model_dump(exclude_none=True)
        return dict(await u.run(functools.partial(u.agent.conversations.set_settings, **changes)))

    @app.delete("/v1/contacts/{name}", dependencies=auth)
    async def remove_contact(name: Peer) -> dict[str, Any]:
        u = user()
        entry = await u.run(u.agent.remove_contact, name)  # its put token revoked too
        u.agent.tags.notify()  # its tags' links come back without their tokens
        u.put_auth_changed(u.identity)  # and the relays forget its token now, not at the next sync
        return {"removed": entry.name, "identity_id": entry.identity_id}

    @app.patch("/v1/contacts/{name}", dependencies=auth)
    async def rename_contact(name: Peer, body: RenameBody) -> dict[str, Any]:
        u = user()
        rename = functools.partial(u.book.rename, now=u.now())
        entry = await u.run(rename, name, body.name)
        return {"name": entry.name, "identity_id": entry.identity_id}

    @app.post("/v1/contacts/{name}/block", dependencies=auth)
    async def block_contact(name: Peer) -> dict[str, Any]:
        u = user()
        card = await u.run(u.book.find, name)
        deleted = await user_role(node).requests.block(str(card.identity_id))
        return {"blocked": str(card.identity_id), "deleted": deleted}
