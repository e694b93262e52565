"""The newest committed events, kept in memory for followers that are caught up.

Theory of operation. A client following the event log (the node's event
stream) is usually one event behind: a message is committed, the follower
wakes and reads the page after its cursor, which holds exactly that event.
That read is a worker-thread trip per message. :class:`EventTail` lets the
follower take it from memory instead:

* **Fed by the appends.** Every event this process appends goes through
  :func:`append_event`, whose returned cursor the caller passes here with the
  record it just wrote (:meth:`EventTail.appended`). The record waits in the
  open write transaction: a rolled-back level drops it
  (:meth:`Access.on_rollback`), and once the outermost transaction is over
  (:meth:`Access.at_end`) what is left was committed and joins the tail.
  Writers are serialized by the writer lock, so records join in cursor order.
* **Complete from its first record.** The tail holds every event this
  process committed since its first record; the database has one writing
  process (the data directory is locked), so there is no event with a
  greater cursor that the tail lacks. A reader whose cursor is at least the
  first record's cursor minus one can therefore take the events after it
  from memory and miss none; cursors are integers, so nothing lies between
  ``first - 1`` and ``first``. Any other cursor is answered ``None``: read
  the page from the database. The tail keeps the newest :data:`TAIL_SIZE`.
* **Never stale.** A message event carries its message as stored. A write
  that changes or deletes messages, or prunes events, calls
  :meth:`EventTail.changing` inside its transaction: the tail empties, drops
  what waits in that transaction, and refills only from records committed
  after that write is over. A reader that took the tail before that write
  committed raced it just as a page read would have.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._access import Access
    from ._event_log import EventRecord

__all__ = ("TAIL_SIZE", "EventTail")

TAIL_SIZE: Final = 256
"""Committed events kept in memory."""


class EventTail:
    """The newest committed events of the log (see the module docstring)."""

    def __init__(self, access: Access, size: int = TAIL_SIZE) -> None:
        self._access = access
        self._lock = threading.Lock()
        self._events: deque[EventRecord] = deque(maxlen=size)
        self._pending: list[EventRecord] = []  # appended in the open write transaction
        self._writing = 0  # writes that changed messages and are not over yet
        self._armed = False  # _settle is due at the end of the open write transaction

    def appended(self, record: EventRecord) -> None:
        """``record`` was appended in this write transaction (its cursor from the insert)."""
        self._pending.append(record)
        self._access.on_rollback(lambda: self._drop(record))
        if not self._armed:  # once per transaction, not once per event
            self._armed = True
            self._access.at_end(self._settle)

    def changing(self) -> None:
        """Called inside a write that changes or deletes messages or prunes events."""
        with self._lock:
            self._writing += 1
            self._events.clear()
        self._pending.clear()
        self._access.at_end(self._changed)

    def after(self, cursor: int, limit: int) -> list[EventRecord] | None:
        """The first ``limit`` committed events after ``cursor``, or None if memory cannot tell."""
        with self._lock:
            if self._writing or not self._events or cursor < self._events[0].cursor - 1:
                return None
            return [e for e in self._events if e.cursor > cursor][:limit]

    def _drop(self, record: EventRecord) -> None:
        self._pending = [r for r in self._pending if r is not record]

    def _settle(self) -> None:
        # Runs under the writer lock once the outermost transaction is over;
        # what a rollback did not drop was committed.
        settled, self._pending, self._armed = self._pending, [], False
        with self._lock:
            self._events.extend(settled)

    def _changed(self) -> None:
        self._pending.clear()
        with self._lock:
            self._writing -= 1
            self._events.clear()
