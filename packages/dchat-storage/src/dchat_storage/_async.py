"""The synchronous database reached from trio: worker threads and group commit.

Theory of operation
-------------------
:class:`AsyncStore` runs repository calls in worker threads
(``trio.to_thread.run_sync``) so they never block the event loop;
:meth:`AsyncStore.run` runs one call as it is.

:meth:`AsyncStore.run_grouped` is *group commit*: calls made while a commit
is in progress queue up, and the next commit runs all of them (up to
``batch``) in one transaction, so concurrent writers share one fsync instead
of paying one each. Each call runs in a savepoint of its own: one that
raises is rolled back alone and its caller gets the exception, the others
commit. Nothing returns before the commit that holds it is durable, so a
caller that got a result may rely on it surviving a crash. If the commit
itself fails, every call in it gets that error and none of them took effect.
There is no leader task: the first waiting caller whose call is still queued
runs the next commit. A caller cancelled before its call ran takes the call
out of the queue; one cancelled while its group commits still has it
committed (as with ``trio.to_thread``, a running call is not abandoned).

Two lanes: :meth:`AsyncStore.run_grouped_later` queues a call in the
*background* lane, for work that may wait (a relay's deposits from
strangers). Background calls commit in groups of their own, never in the
same transaction as a :meth:`~AsyncStore.run_grouped` call, at most
``later_batch`` at a time, and only when no ``run_grouped`` call is queued
or the oldest background call has waited ``later_wait`` seconds. So a
foreground call waits at most for the one commit already under way (whose
background group is small), and its own commit carries no background
writes; background work takes the foreground's spare capacity, and under
a foreground that never pauses still one group per ``later_wait``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._database import Database

__all__ = ("AsyncStore",)

P = ParamSpec("P")
T = TypeVar("T")
GROUP: Final = 64
"""The most calls one group commit runs."""
LATER_GROUP: Final = 8
"""The most background calls one group commit runs (see :meth:`AsyncStore.run_grouped_later`)."""
LATER_WAIT: Final = 0.5
"""Seconds the oldest background call waits at most before its group goes ahead."""


class _Call:
    """One grouped call: what to run, then its value or the exception it raised."""

    __slots__ = ("at", "done", "error", "fn", "ran", "value")

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.at = 0.0  # when a background call was queued (run_grouped_later)
        self.ran = self.done = False
        self.value: object = None
        self.error: BaseException | None = None


def _commit_group(db: Database, calls: list[_Call]) -> None:
    """Run ``calls`` in one transaction, each in a savepoint (runs in a worker thread)."""
    with db.transaction():
        for call in calls:
            try:
                with db.transaction():
                    call.value = call.fn()
            except Exception as exc:  # the caller gets it; the other calls still commit
                call.error = exc
            call.ran = True


class AsyncStore:
    """A :class:`Database` reached through worker threads.

    Args:
        db: The open database.
        threads: The most worker threads in use at once (SQLite has one writer
            at a time anyway; readers may overlap it).
        batch: The most calls in one group commit.
        later_batch: The most background calls in one group commit.
        later_wait: Seconds after which the oldest background call's group
            commits even though foreground calls are queued.
    """

    def __init__(
        self,
        db: Database,
        *,
        threads: int = 2,
        batch: int = GROUP,
        later_batch: int = LATER_GROUP,
        later_wait: float = LATER_WAIT,
    ) -> None:
        self.db = db
        self._limiter = trio.CapacityLimiter(threads)
        self._batch = batch
        self._later_batch = later_batch
        self._later_wait = later_wait
        self._queued: list[_Call] = []
        self._later: list[_Call] = []
        self._committing = False
        self._turn = trio.Event()
        self.group_commits = 0
        """Group commits run so far."""

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` in a worker thread and return its result."""
        call = functools.partial(fn, *args, **kwargs)
        return await trio.to_thread.run_sync(call, limiter=self._limiter)

    async def run_grouped(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn`` in a transaction shared with concurrent grouped calls; one commit for all.

        Returns (or raises) once the commit holding the call is durable.
        """
        call = _Call(functools.partial(fn, *args, **kwargs))
        return await self._grouped(call, self._queued)  # type: ignore[return-value]

    async def run_grouped_later(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like :meth:`run_grouped`, in the background lane (see the module's docstring).

        The call commits with other background calls only, once no
        :meth:`run_grouped` call is queued.
        """
        call = _Call(functools.partial(fn, *args, **kwargs))
        call.at = trio.current_time()
        return await self._grouped(call, self._later)  # type: ignore[return-value]

    async def _grouped(self, call: _Call, lane: list[_Call]) -> object:
        lane.append(call)
        try:
            while not call.done:
                if self._committing:
                    await self._turn.wait()
                else:
                    await self._commit_next(call)
        except BaseException:
            if call in lane:  # cancelled before it ran: it never will
                lane.remove(call)
            raise
        if call.error is not None:
            raise call.error
        return call.value

    async def _commit_next(self, leader: _Call) -> None:
        # The foreground lane first; a background group when it is empty, or has
        # kept the oldest background call waiting for later_wait.
        later = self._later and (
            not self._queued or trio.current_time() - self._later[0].at >= self._later_wait
        )
        lane, size = (self._later, self._later_batch) if later else (self._queued, self._batch)
        group = lane[:size]
        del lane[:size]
        self._committing = True
        try:
            await self.run(_commit_group, self.db, group)
        except Exception as exc:  # the commit failed: nothing in the group took effect
            for member in group:
                member.ran, member.error = True, exc
        finally:
            # Cut short before it ran (the leader was cancelled): the others wait on.
            lane[:0] = [m for m in group if not m.ran and m is not leader]
            for member in group:
                member.done = member.ran
            self._committing = False
            self.group_commits += 1
            self._turn.set()
            self._turn = trio.Event()
