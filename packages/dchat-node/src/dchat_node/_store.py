"""Run the synchronous storage layer from trio without blocking the event loop."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_storage import Database

__all__ = ("AsyncStore",)

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """The node's database, reached through worker threads.

    SQLite allows one writer at a time and the database serializes writes
    itself; the limiter only bounds how many threads we occupy.
    """

    def __init__(self, db: Database, *, threads: int = 2) -> None:
        self.db = db
        self._limiter = trio.CapacityLimiter(threads)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` in a worker thread and return its result."""
        call = functools.partial(fn, *args, **kwargs)
        return await trio.to_thread.run_sync(call, limiter=self._limiter)
