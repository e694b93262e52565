"""Which relay requests the database worker runs now: authorised work first, sources in turn.

Theory of operation
-------------------
A relay request that needs the relay's store runs in the node's database
worker, which commits the calls that queue up meanwhile together (group
commit: one fsync for a group, each group at most 64 calls). Handed over
as they arrive, first come first served, a flood of anonymous requests (a
wave of fresh connections each asking one cheap question, deposits into
random mailboxes) queued hundreds of calls there, and an honest deposit
behind them waited for every one of those commits: measured on a live
relay, p99 deposit-to-receipt latency went from about 15 ms quiet to about
230 ms under a 2,000-connection flood (12x or more).

:class:`WorkQueue` decides what is handed over. A request is *authorised*
or *anonymous* (:meth:`RelayServer.triage
<dchat_network.RelayServer.triage>` says which: authorised are deposits
carrying a put token registered for their mailbox, and the requests of a
link whose own mailbox has put tokens registered, i.e. of a user whom
contacts write to). At most ``slots`` requests are in the worker at once,
of them at most ``anonymous`` anonymous ones. So an authorised request
finds a slot free unless authorised work alone fills them, and waits in the
worker behind at most ``anonymous`` anonymous calls: for the commit under
way, if any, and then it commits with the next group, however many
anonymous requests wait.

Waiting requests start as slots free up: authorised ones first; within a
class, the sources (IP addresses, as the limits count them) take turns, one
request each, and one source's requests start in arrival order. So neither
one address opening many mailboxes nor one holding many tokens crowds out
the other sources of its class.

Anonymous work is slowed, never refused or dropped: each waiting request is
served in its turn. The queue needs no bound of its own: a link has at most
one request outstanding, so the connection caps bound it.

Nothing here does I/O or keeps time: the host (:class:`~dchat_network.RelayHost`)
calls :meth:`WorkQueue.arrive` with a wake-up handle of its choice, runs the
request at once or when :meth:`WorkQueue.finish` hands the handle back, and
calls :meth:`WorkQueue.finish` when it is done (or :meth:`WorkQueue.withdraw`
if the request gave up while waiting).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Generic, TypeVar

__all__ = ("WorkQueue",)

T = TypeVar("T")


class _Turns(Generic[T]):
    """Waiting items by source: the sources take turns, each source's items in order."""

    __slots__ = ("_by_source", "count")

    def __init__(self) -> None:
        self._by_source: OrderedDict[str, deque[T]] = OrderedDict()
        self.count = 0

    def push(self, source: str, item: T) -> None:
        self._by_source.setdefault(source, deque()).append(item)
        self.count += 1

    def pop(self) -> T:
        """The first item of the source whose turn it is (that source goes last)."""
        source, items = next(iter(self._by_source.items()))
        item = items.popleft()
        if items:
            self._by_source.move_to_end(source)
        else:
            del self._by_source[source]
        self.count -= 1
        return item

    def remove(self, source: str, item: T) -> None:
        items = self._by_source[source]
        items.remove(item)
        if not items:
            del self._by_source[source]
        self.count -= 1


class WorkQueue(Generic[T]):
    """Hands requests to the worker: at most ``slots`` at once, ``anonymous`` of them anonymous.

    Items (the host's wake-up handles) must be hashable and distinct while
    queued or running.

    Args:
        slots: The most requests in the worker at once.
        anonymous: The most anonymous requests among them (at most ``slots``).
    """

    def __init__(self, slots: int, anonymous: int) -> None:
        if slots < 1 or anonymous < 1:
            raise ValueError("slots and anonymous must be at least 1")
        self.slots = slots
        self.anonymous = min(anonymous, slots)
        self.running = 0
        """Requests handed to the worker and not finished."""
        self.running_anonymous = 0
        """The anonymous ones among them."""
        self._authorised: _Turns[T] = _Turns()
        self._strangers: _Turns[T] = _Turns()
        self._where: dict[T, tuple[str, bool]] = {}  # waiting item -> (source, authorised)

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return self._authorised.count + self._strangers.count

    @property
    def waiting_anonymous(self) -> int:
        """The anonymous ones among them."""
        return self._strangers.count

    def arrive(self, item: T, source: str, authorised: bool) -> bool:
        """A request from ``source``: True if it runs now, else it waits (``finish`` wakes it).

        A request that runs now counts as running until :meth:`finish`.
        """
        if self._may_start(authorised):
            self._start(authorised)
            return True
        (self._authorised if authorised else self._strangers).push(source, item)
        self._where[item] = (source, authorised)
        return False

    def finish(self, authorised: bool) -> list[T]:
        """A running request (of that class) is done; the waiting items that start now."""
        self.running -= 1
        self.running_anonymous -= not authorised
        started: list[T] = []
        while self._authorised.count and self._may_start(True):
            started.append(self._take(self._authorised, True))
        while self._strangers.count and self._may_start(False):
            started.append(self._take(self._strangers, False))
        return started

    def withdraw(self, item: T) -> bool:
        """A waiting request gave up: True if it was still waiting (now forgotten).

        False means it had already been started by :meth:`finish`: it holds a
        slot, and its owner must call :meth:`finish` for it.
        """
        where = self._where.pop(item, None)
        if where is None:
            return False
        source, authorised = where
        (self._authorised if authorised else self._strangers).remove(source, item)
        return True

    def _may_start(self, authorised: bool) -> bool:
        if self.running >= self.slots:
            return False
        if authorised:
            return True
        return self.running_anonymous < self.anonymous

    def _start(self, authorised: bool) -> None:
        self.running += 1
        self.running_anonymous += not authorised

    def _take(self, turns: _Turns[T], authorised: bool) -> T:
        item = turns.pop()
        del self._where[item]
        self._start(authorised)
        return item
