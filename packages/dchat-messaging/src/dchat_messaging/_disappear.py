"""Disappearing messages: the conversation timer (``conv.timer``) and the expiry of texts.

Theory of operation
-------------------
* **Setting.** Either participant sets the timer of a conversation
  (:meth:`Disappearing.set`); the ``conv.timer`` control goes to every device
  of the peer and, as a sent copy, to our other devices, like any control.
  Each change carries a version, one above the highest this device has seen
  (a Lamport counter), and every device keeps the change with the greatest
  ``(version, sender identity id)`` (:meth:`Disappearing.apply`): two users
  changing it at once end on the same value everywhere, whatever order their
  controls arrive in and whatever their clocks say. A version more than
  :data:`MAX_STEP` above the one held is refused (``malformed``), so a peer
  cannot spend the counter's range and pin the timer. The winning stamp is
  kept under ``conv.timer.<peer identity id>``.
* **Counting.** The timer itself lives in the store (``set_timer``), which
  stamps each text's expiry when its count starts: an incoming text when it
  is read here (or on another of our devices: their read receipt marks it
  read here), our own text when the peer's read receipt arrives, so both
  copies (and the file on our relay, which the peer may not have fetched
  yet) go at about the same time. Until then our text holds a fallback
  deadline, a day after it was stored or its timer if longer: a peer who
  never reads it, or sends no read receipts, cannot keep our copy forever.
* **Expiry.** :meth:`Disappearing.expire` deletes the texts whose time ran
  out, with their notes and attachment records, in one transaction, and
  returns what it deleted so the caller can delete the attachments' files
  and, for blobs we uploaded, the relay's copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DchatError,
    DecodeLimits,
    Fields,
    MessageId,
    canonical_decode,
    canonical_encode,
)

from ._attachment import AttachmentBook, AttachmentEntry
from ._content import Content
from ._conversation import TIMER_KIND, Timer, check_timer
from ._errors import ConversationError, RequestError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._contacts import UserStore

__all__ = ("MAX_STEP", "TIMER_PREFIX", "Disappearing", "Expired")

TIMER_PREFIX: Final = "conv.timer."
MAX_STEP: Final = 1 << 16
"""How far above the held version a received timer change may be."""
EXPIRE_BATCH: Final = 500
"""The most texts one :meth:`Disappearing.expire` deletes (the next call takes the rest)."""
_LIMITS: Final = DecodeLimits(max_size=1024, max_depth=1, max_items=8)


@dataclass(frozen=True, slots=True)
class Expired:
    """A text deleted because its timer ran out, and its attachment record if it had one."""

    message_id: bytes
    peer_id: str
    direction: str
    attachment: AttachmentEntry | None


class Disappearing:
    """The disappearing-message rules of one user node over its store.

    Args:
        store: The node's store (the timer stamps are sealed state).
        forget_note: Forgets what is kept about a text: its note, its payment record.
    """

    def __init__(self, store: UserStore, forget_note: Callable[[bytes], None]) -> None:
        self._store, self._forget_note = store, forget_note
        self._attachments = AttachmentBook(store)

    def timer(self, peer: str) -> int | None:
        """The conversation's timer in seconds, or None when it is off."""
        found = self._store.timer_of(peer)
        return None if found is None else int(found)

    def _stamp(self, peer: str) -> tuple[int, str]:
        stored = self._store.get_state(TIMER_PREFIX + peer)
        if stored is None:
            return (0, "")
        try:
            f = Fields(canonical_decode(stored, _LIMITS), "timer", frozenset({"s", "n", "by"}))
            return f.get_int("n"), f.get_str("by", max_len=128)
        except DchatError:
            raise RequestError("corrupt_state", "a stored timer stamp is malformed") from None

    def _put(self, peer: str, timer: Timer, by: str, now: float) -> bool:
        """Take ``timer`` if ``(version, by)`` is above the stamp held; say whether."""
        if (timer.version, by) <= self._stamp(peer):
            return False
        stamp = {"s": timer.seconds, "n": timer.version, "by": by}
        self._store.put_state(TIMER_PREFIX + peer, canonical_encode(stamp))
        self._store.set_timer(peer, float(timer.seconds) if timer.seconds else None, now)
        return True

    def set(self, peer: str, seconds: int, *, by: str, now: float) -> Content:
        """Set the timer of the conversation with ``peer`` here; returns the control to send.

        Raises:
            RequestError: ``invalid_request``: not 0 (off) to ``MAX_TIMER`` whole seconds.
        """
        try:
            timer = Timer(check_timer(seconds), self._stamp(peer)[0] + 1)
            data = timer.encode()
        except ConversationError as exc:
            raise RequestError("invalid_request", str(exc)) from None
        self._put(peer, timer, by, now)
        return Content.control(TIMER_KIND, data, now_ms=int(now * 1000))

    def apply(self, timer: Timer, peer: str, by: str, *, now: float) -> bool:
        """Apply a received ``conv.timer``; False if a later change is already held.

        Raises:
            ConversationError: ``malformed``: a version over :data:`MAX_STEP`
                above the one held.
        """
        if timer.version > self._stamp(peer)[0] + MAX_STEP:
            raise ConversationError("malformed", "a timer version too far ahead")
        return self._put(peer, timer, by, now)

    def expire(self, now: float) -> list[Expired]:
        """Delete the texts whose timer ran out by ``now`` (at most :data:`EXPIRE_BATCH`).

        Each goes with its note and attachment record, and an ``expired``
        event per conversation is logged, in one transaction.
        """
        gone: list[Expired] = []
        with self._store.transaction():
            for entry in self._store.expired_messages(now, EXPIRE_BATCH):
                mid = entry.message_id
                try:
                    attachment = self._attachments.get(mid)
                except (DchatError, ValueError):  # damaged: it goes with the text all the same
                    attachment = None
                gone.append(Expired(mid, entry.peer_id, entry.direction, attachment))
                self._forget_note(mid)  # and the attachment record
                self._store.delete_message(mid)
            for peer in sorted({g.peer_id for g in gone}):
                ids = [str(MessageId(g.message_id)) for g in gone if g.peer_id == peer]
                self._store.log_event("expired", {"peer": peer, "ids": ids}, now)
        return gone
