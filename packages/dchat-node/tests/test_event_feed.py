"""``EventFeed.follow`` in process, over a real database: what it reads and what it yields.

A follower that is caught up takes the event of a message just committed from
storage's memory of the newest commits, with no page read (no worker trip),
and still yields exactly the log's events in cursor order.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from dchat_node.api import _events
from dchat_node.api._events import EventFeed
from dchat_storage import open_database

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dchat_storage import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(tmp_path / "node" / "dchat.sqlite3")
    try:
        yield database
    finally:
        database.close()


def _id(n: int) -> bytes:
    return n.to_bytes(16, "big")


def _feed(db: Database, monkeypatch: pytest.MonkeyPatch, reads: list[int]) -> EventFeed:
    async def run(fn: Callable[[], Any]) -> Any:
        reads.append(1)  # a worker trip to the database
        return await trio.to_thread.run_sync(fn)

    role = SimpleNamespace(user=SimpleNamespace(run=run))
    monkeypatch.setattr(_events, "user_role", lambda _node: role)
    feed = EventFeed.__new__(EventFeed)
    feed._node = SimpleNamespace(store=SimpleNamespace(db=db))  # type: ignore[assignment]
    feed._changed = trio.Event()
    return feed


async def test_a_caught_up_follower_gets_a_committed_message_without_a_read(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    feed = _feed(db, monkeypatch, reads)
    db.contacts.add("bob", "id-bob", b"card", 1.0)
    db.messages.add(_id(0), "in", "id-bob", "before", 1.0, 1.0)
    start = db.events.head() - 1
    got: list[dict[str, Any]] = []
    send, pages = trio.open_memory_channel[list[dict[str, Any]]](0)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                async for page in feed.follow(start):
                    await send.send(page)

            nursery.start_soon(follow)
            got += await pages.receive()  # read from the database (names not in memory yet)
            assert reads == [1]
            for n in (1, 2):
                db.messages.add(_id(n), "in", "id-bob", f"text {n}", 2.0, 2.0)
                feed.notify()
                got += await pages.receive()
            nursery.cancel_scope.cancel()
    assert reads == [1]  # the two new events came from memory
    assert [e["cursor"] for e in got] == [start + 1, start + 2, start + 3]
    assert [e["data"]["text"] for e in got] == ["before", "text 1", "text 2"]
    assert {e["data"]["peer_name"] for e in got} == {"bob"}
    page = await feed.page(start, 10)
    assert page == got  # exactly what a page read gives
