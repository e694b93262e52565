"""Conversation features around stored texts: replies, edits, deletes, reactions, receipts.

Theory of operation
-------------------
A text is stored once per device (the message store); what happens to it
later is kept beside it as a *note*: sealed state under
``conv.note.<message id in hex>`` (canonical ``{["re": id], ["fwd": 1],
["ed": [[ms, text], ...]], ["rx": {identity id: [emoji, ...]}], ["d": ms],
["r": ms]}``), written only for texts that have one. :class:`Conversations`
applies the controls of :mod:`._conversation` to notes and texts, every call
synchronous and inside the caller's store transaction, with ``now`` passed in:

* **received controls** (:meth:`Conversations.apply`), inside the transaction
  that opened their envelope. The *conversation* of a control is its sender,
  or, for a sent copy from one of our own devices (``peer`` set), that peer.
  A control may only touch a text of its conversation (else
  ``unknown_message``); an edit or delete only one its sender wrote (a peer's
  incoming text, or, in a sent copy, our outgoing one; else ``not_author``).
  A refused control changes nothing: the error is counted and the envelope's
  other effects stand.
* **receipts**: a peer's delivered (``d``) or read (``r``) receipt stamps our
  outgoing texts to it it names (ids that are not are skipped: a text deleted
  here since); a read receipt copied from our own device marks those incoming
  texts read here too (so every device agrees what was read).
* **actions** (:meth:`edit`, :meth:`delete`, :meth:`react`, :meth:`reply`,
  :meth:`forward`, :meth:`mark_read`): each checks and applies the change
  locally and returns the content to send; the caller sends it to the peer
  and, as a sent copy, to our other devices, in the same transaction.
* **timers** (``conv.timer``, :attr:`Conversations.timers`, :mod:`._disappear`):
  the disappearing timer of each conversation, and the expiry of texts.
* **settings** (``conv.settings``: ``{"read_receipts": 0|1, "typing": 0|1}``):
  whether this user sends read receipts (default on; off: a read receipt goes
  only to our own devices) and typing indicators (default off).

Delete for everyone is best effort: the text and its note are removed here
and on every device of both users that runs this code; a device that does not
honour it, or a screenshot, keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DchatError,
    DecodeLimits,
    Fields,
    MessageId,
    canonical_decode,
    canonical_encode,
)

from ._content import Content
from ._conversation import (
    DELETE_KIND,
    EDIT_KIND,
    MAX_RECEIPT_IDS,
    NOTE_PREFIX,
    REACT_KIND,
    RECEIPT_KIND,
    TYPING_KIND,
    Delete,
    Edit,
    Reaction,
    Receipt,
    Timer,
    Typing,
    check_emoji,
    check_text,
    decode_conversation,
    forget_records,
)
from ._disappear import Disappearing
from ._errors import ConversationError, RequestError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._contacts import MessageEntry, UserStore
    from ._events import MessageReceived

__all__ = ("ConversationUpdate", "Conversations", "Note")

SETTINGS_KEY: Final = "conv.settings"
MAX_EDITS: Final = 32
"""Edits kept in a text's local history (the newest)."""
MAX_REACTIONS: Final = 16
"""Different reactions one person may have on one text."""
MAX_UNREAD: Final = 1000
"""The most texts one :meth:`Conversations.mark_read` marks."""
_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=3, max_items=4096)


@dataclass(slots=True)
class Note:
    """What happened to one text since it was stored."""

    reply_to: bytes | None = None
    forwarded: bool = False
    edits: list[tuple[int, str]] = field(default_factory=list)
    """``(at_ms, text)``, oldest first; the last is the text shown."""
    reactions: dict[str, list[str]] = field(default_factory=dict)
    """Per reacting identity id, its reactions."""
    delivered_ms: int | None = None
    read_ms: int | None = None

    def encode(self) -> bytes:
        value: dict[str, object] = {}
        if self.reply_to is not None:
            value["re"] = self.reply_to
        if self.forwarded:
            value["fwd"] = 1
        if self.edits:
            value["ed"] = [[at, text] for at, text in self.edits]
        if self.reactions:
            value["rx"] = {who: list(emojis) for who, emojis in self.reactions.items()}
        if self.delivered_ms is not None:
            value["d"] = self.delivered_ms
        if self.read_ms is not None:
            value["r"] = self.read_ms
        return canonical_encode(value)

    @classmethod
    def decode(cls, data: bytes) -> Note:
        try:
            f = Fields(canonical_decode(data, _LIMITS), "note", frozenset(_NOTE_FIELDS))
            note = cls(
                f.get_bytes("re", size=MessageId.SIZE) if f.has("re") else None,
                f.has("fwd"),
                [(int(at), str(text)) for at, text in f.get_list("ed")] if f.has("ed") else [],
                {str(k): [str(e) for e in v] for k, v in f.raw("rx").items()}
                if f.has("rx")
                else {},
                f.get_int("d") if f.has("d") else None,
                f.get_int("r") if f.has("r") else None,
            )
        except (DchatError, ValueError, TypeError, AttributeError):
            raise RequestError("corrupt_state", "a stored conversation note is malformed") from None
        return note


_NOTE_FIELDS: Final = ("re", "fwd", "ed", "rx", "d", "r")


@dataclass(frozen=True, slots=True)
class ConversationUpdate:
    """What an applied control changed, for the shell's event stream.

    ``kind`` is ``receipt``, ``edit``, ``delete``, ``reaction``, ``typing`` or
    ``timer`` (the event's kind in the node's event log); ``ids`` the texts it
    touched; ``by`` who did it; ``detail`` the rest (``read``; ``text``;
    ``emoji``, ``on``; ``seconds``, 0 for off).
    """

    def event(self) -> dict[str, object]:
        """The event log's data of this update."""
        return {"peer": self.peer, "by": self.by, "ids": list(self.ids), **self.detail}

    kind: str
    peer: str
    by: str
    ids: tuple[str, ...] = ()
    detail: dict[str, object] = field(default_factory=dict)


class Conversations:
    """The conversation rules of one user node over its store.

    Args:
        store: The node's store (notes and settings are sealed state).
    """

    def __init__(self, store: UserStore) -> None:
        self._store = store
        self.timers = Disappearing(store, self._forget)
        """The conversations' disappearing timers, and the expiry of texts."""

    # -- settings --------------------------------------------------------------------

    def settings(self) -> dict[str, bool]:
        """``{"read_receipts": bool, "typing": bool}`` (defaults: on, off)."""
        stored = self._store.get_state(SETTINGS_KEY)
        found: dict[str, bool] = {"read_receipts": True, "typing": False}
        if stored is not None:
            try:
                f = Fields(canonical_decode(stored, _LIMITS), "settings", frozenset(found))
                found.update({k: f.get_int(k, hi=1) == 1 for k in found if f.has(k)})
            except DchatError:
                raise RequestError("corrupt_state", "stored conversation settings") from None
        return found

    def set_settings(self, **changes: bool) -> dict[str, bool]:
        """Change ``read_receipts`` and/or ``typing``; returns all settings."""
        current = self.settings()
        unknown = set(changes) - set(current)
        if unknown:
            raise RequestError("invalid_request", f"unknown settings {sorted(unknown)}")
        current.update({k: bool(v) for k, v in changes.items()})
        self._store.put_state(
            SETTINGS_KEY, canonical_encode({k: int(v) for k, v in current.items()})
        )
        return current

    # -- notes -----------------------------------------------------------------------

    def note(self, message_id: bytes) -> Note | None:
        """The note of a text, if it has one."""
        stored = self._store.get_state(NOTE_PREFIX + message_id.hex())
        return None if stored is None else Note.decode(stored)

    def _save(self, message_id: bytes, note: Note) -> None:
        self._store.put_state(NOTE_PREFIX + message_id.hex(), note.encode())

    def _update(self, message_id: bytes) -> Note:
        return self.note(message_id) or Note()

    def stored(self, content: Content) -> None:
        """A text was stored (sent or received): keep its reply and forward marks."""
        if content.reply_to is not None or content.forwarded:
            reply = None if content.reply_to is None else bytes(content.reply_to)
            self._save(bytes(content.message_id), Note(reply, content.forwarded))

    # -- received controls -----------------------------------------------------------

    def apply(self, message: MessageReceived, *, now: float) -> ConversationUpdate | None:
        """Apply a received conversation control (see the module docstring).

        Raises:
            ConversationError: ``malformed``, ``unknown_message``, ``not_author``;
                nothing changed.
        """
        control = decode_conversation(message.kind, message.data)
        mine = message.content.peer is not None
        peer = str(message.content.peer if mine else message.sender)
        by = str(message.sender)
        at = int(now * 1000)
        if isinstance(control, Receipt):
            return self._receipt(control, peer, by, mine=mine, at=at)
        if isinstance(control, Typing):
            if not self.settings()["typing"] or mine:
                return None
            return ConversationUpdate("typing", peer, by, detail={"on": control.on})
        if isinstance(control, Timer):
            if not self.timers.apply(control, peer, by, now=now):
                return None  # a later change is already held
            return ConversationUpdate("timer", peer, by, detail={"seconds": control.seconds})
        target = self._in_conversation(control.target, peer)
        if isinstance(control, Reaction):
            self._react(target.message_id, by, control.emoji, on=control.on)
            detail: dict[str, object] = {"emoji": control.emoji, "on": control.on}
            return ConversationUpdate("reaction", peer, by, (str(control.target),), detail)
        if target.direction != ("out" if mine else "in"):
            raise ConversationError("not_author", "only a message's author may change it")
        if isinstance(control, Edit):
            self._edit(target.message_id, control.text, at)
            return ConversationUpdate(
                "edit", peer, by, (str(control.target),), {"text": control.text}
            )
        assert isinstance(control, Delete)
        self._delete(target.message_id)
        return ConversationUpdate("delete", peer, by, (str(control.target),))

    def _receipt(
        self, receipt: Receipt, peer: str, by: str, *, mine: bool, at: int
    ) -> ConversationUpdate | None:
        done: list[str] = []
        timed: bool | None = None  # the conversation has a disappearing timer (read once)
        for mid in receipt.ids:
            # Whether it is stored and of this conversation, without reading its text.
            message_id = bytes(mid)
            direction = self._store.message_direction(message_id, peer)
            if direction is None:
                continue  # deleted here since, or not of this conversation
            if mine:  # our other device read it: so did we
                if receipt.read and direction == "in":
                    self._store.mark_read(message_id, at / 1000)
                    done.append(str(mid))
                continue
            if direction != "out":
                continue
            note = self._update(message_id)
            if receipt.read and note.read_ms is None:
                note.read_ms = at
                if timed is None:
                    timed = self._store.timer_of(peer) is not None
                if timed:  # disappearing: counts now
                    self._store.start_timer(message_id, at / 1000)
            note.delivered_ms = note.delivered_ms or at  # read implies delivered
            self._save(message_id, note)
            done.append(str(mid))
        if not done:
            return None
        return ConversationUpdate("receipt", peer, by, tuple(done), {"read": receipt.read})

    def _in_conversation(self, target: MessageId, peer: str) -> MessageEntry:
        entry = self._store.get_message(bytes(target))
        if entry is None or entry.peer_id != peer:
            raise ConversationError("unknown_message", "no such message in this conversation")
        return entry

    def _react(self, message_id: bytes, by: str, emoji: str, *, on: bool) -> None:
        note = self._update(message_id)
        mine = note.reactions.get(by, [])
        if on and emoji not in mine:
            if len(mine) >= MAX_REACTIONS:
                raise ConversationError("malformed", f"at most {MAX_REACTIONS} reactions each")
            mine = sorted([*mine, emoji])
        elif not on:
            mine = [e for e in mine if e != emoji]
        note.reactions = {k: v for k, v in {**note.reactions, by: mine}.items() if v}
        self._save(message_id, note)

    def _edit(self, message_id: bytes, text: str, at: int) -> None:
        note = self._update(message_id)
        note.edits = [*note.edits, (at, text)][-MAX_EDITS:]
        self._save(message_id, note)
        self._store.reindex_message(message_id, text)  # search finds the text shown

    def _delete(self, message_id: bytes) -> None:
        self._store.delete_message(message_id)
        self._forget(message_id)

    def _forget(self, message_id: bytes) -> None:
        forget_records(self._store, message_id)  # nothing kept beside a deleted message

    # -- actions of our user (the caller sends what they return) ------------------------

    def _ours(self, peer: str, target: MessageId) -> MessageEntry:
        entry = self._store.get_message(bytes(target))
        if entry is None or entry.peer_id != peer:
            raise RequestError("unknown_message", f"no message {target} with that contact")
        return entry

    def _authored(self, peer: str, target: MessageId) -> MessageEntry:
        entry = self._ours(peer, target)
        if entry.direction != "out":
            raise RequestError("not_author", "only your own messages can be edited or deleted")
        return entry

    def edit(self, peer: str, target: MessageId, text: str, *, now: float) -> Content:
        """Edit our text ``target`` to ``peer``; returns the control to send."""
        entry = self._authored(peer, target)
        _caller(check_text, text)
        self._edit(entry.message_id, text, int(now * 1000))
        return Content.control(EDIT_KIND, Edit(target, text).encode(), now_ms=int(now * 1000))

    def delete(self, peer: str, target: MessageId, *, now: float) -> Content:
        """Delete our text ``target`` here; returns the control asking every device to."""
        entry = self._authored(peer, target)
        self._delete(entry.message_id)
        return Content.control(DELETE_KIND, Delete(target).encode(), now_ms=int(now * 1000))

    def react(
        self, peer: str, target: MessageId, emoji: str, *, own: str, on: bool, now: float
    ) -> Content:
        """Add (or remove) our reaction to a text of the conversation."""
        entry = self._ours(peer, target)
        _caller(check_emoji, emoji)
        try:
            self._react(entry.message_id, own, emoji, on=on)
        except ConversationError as exc:
            raise RequestError("invalid_request", str(exc)) from None
        data = Reaction(target, emoji, on).encode()
        return Content.control(REACT_KIND, data, now_ms=int(now * 1000))

    def reply(self, peer: str, target: MessageId, text: str, *, now: float) -> Content:
        """A text to ``peer`` quoting ``target`` of the same conversation."""
        self._ours(peer, target)
        return replace(Content.text_message(text, now_ms=int(now * 1000)), reply_to=target)

    def forward(self, source: MessageId, *, now: float) -> Content:
        """A forwarded copy of the stored text ``source`` (its latest text, no link to it)."""
        entry = self._store.get_message(bytes(source))
        if entry is None:
            raise RequestError("unknown_message", f"no message {source}")
        text = self.text_of(entry)
        return replace(Content.text_message(text, now_ms=int(now * 1000)), forwarded=True)

    def typing(self, on: bool, *, now: float) -> Content | None:
        """A typing indicator to send, or None when the user turned them off."""
        if not self.settings()["typing"]:
            return None
        return Content.control(TYPING_KIND, Typing(on).encode(), now_ms=int(now * 1000))

    def mark_read(self, peer: str, *, now: float) -> list[MessageId]:
        """Mark ``peer``'s unread texts read here; returns their ids (for a receipt)."""
        listed = self._store.list_messages(peer, MAX_UNREAD)
        unread = [m for m in listed if m.direction == "in" and m.read_at is None]
        for entry in unread:
            self._store.mark_read(entry.message_id, now)
        return [MessageId(m.message_id) for m in unread]

    @staticmethod
    def receipts(ids: list[MessageId], *, read: bool, now: float) -> list[Content]:
        """Receipt controls for ``ids``, at most :data:`MAX_RECEIPT_IDS` each."""
        return [
            Content.control(
                RECEIPT_KIND,
                Receipt(read, tuple(ids[i : i + MAX_RECEIPT_IDS])).encode(),
                now_ms=int(now * 1000),
            )
            for i in range(0, len(ids), MAX_RECEIPT_IDS)
        ]

    # -- views -----------------------------------------------------------------------

    def text_of(self, entry: MessageEntry) -> str:
        """The text shown for ``entry``: its latest edit, or its body."""
        note = self.note(entry.message_id)
        return note.edits[-1][1] if note is not None and note.edits else entry.body

    def inbox(self, listed: Iterable[tuple[MessageEntry, str | None]]) -> list[dict[str, object]]:
        """One line per conversation of ``listed`` (messages with their peer's name), the
        most recent first: ``{"peer_id", "peer_name", "messages", "unread", "last_at",
        "last_direction", "last_text"}`` (``last_at``: the sender's time of the latest)."""
        names: dict[str, str | None] = {}
        counts: dict[str, list[int]] = {}  # peer: [messages, unread]
        latest: dict[str, MessageEntry] = {}
        for entry, name in listed:
            names[entry.peer_id] = name
            count = counts.setdefault(entry.peer_id, [0, 0])
            count[0] += 1
            count[1] += entry.direction == "in" and entry.read_at is None
            last = latest.get(entry.peer_id)
            if last is None or (entry.stored_at, entry.sent_at) >= (last.stored_at, last.sent_at):
                latest[entry.peer_id] = entry
        order = sorted(latest, key=lambda p: (latest[p].stored_at, latest[p].sent_at), reverse=True)
        return [
            {
                "peer_id": peer,
                "peer_name": names[peer],
                "messages": counts[peer][0],
                "unread": counts[peer][1],
                "last_at": latest[peer].sent_at,
                "last_direction": latest[peer].direction,
                "last_text": self.text_of(latest[peer]),
            }
            for peer in order
        ]

    def row(self, entry: MessageEntry) -> dict[str, object]:
        """What a conversation view shows of one text (besides the stored fields)."""
        note = self.note(entry.message_id) or Note()
        outgoing = entry.direction == "out"
        return {
            "text": note.edits[-1][1] if note.edits else entry.body,
            "edited": bool(note.edits),
            "history": [entry.body, *(text for _, text in note.edits)] if note.edits else [],
            "reply_to": None if note.reply_to is None else str(MessageId(note.reply_to)),
            "forwarded": note.forwarded,
            "reactions": note.reactions,
            "delivered": note.delivered_ms is not None if outgoing else None,
            "read": (note.read_ms is not None) if outgoing else entry.read_at is not None,
            "expires_at": entry.expires_at,
        }


def _caller(check: Callable[[str], str], value: str) -> None:
    """Run a payload check for our own user's input: its error is the caller's."""
    try:
        check(value)
    except ConversationError as exc:
        raise RequestError("invalid_request", str(exc)) from None
