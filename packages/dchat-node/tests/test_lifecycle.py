"""The node's lifecycle task: sweeps on a schedule, idempotently."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

from dchat_core import ManualClock
from dchat_node._lifecycle import LifecycleTask
from dchat_storage import AsyncStore, Database, SweepSchedule, open_database

DAY = 86400.0


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with open_database(tmp_path / "node.db") as database:
        yield database


def _fill(db: Database) -> None:
    db.conversations.create("id-bob", 0.0, disappear_after=60.0, retention=DAY)
    db.messages.add(b"read", "in", "id-bob", "x", 0.0, 0.0)
    db.messages.mark_read(b"read", 10.0)
    db.messages.add(b"fresh", "in", "id-bob", "y", 0.0, 39.5 * DAY)
    db.mailboxes.put(b"box", b"ancient", 0.0)
    db.mailboxes.put(b"box", b"recent", 40 * DAY)


def _state(db: Database) -> tuple[list[bytes], int]:
    return [m.message_id for m in db.messages.list()], db.mailboxes.count()


async def test_running_twice_is_running_once(db: Database) -> None:
    _fill(db)
    clock = ManualClock(40 * DAY)
    task = LifecycleTask(AsyncStore(db), clock, SweepSchedule.for_role("relay"))
    first = await task.sweep_once()
    after_first = _state(db)
    second = await task.sweep_once()
    assert (first.disappeared, first.mailbox_entries) == (1, 1)
    assert second.total == 0
    assert _state(db) == after_first == ([b"fresh"], 1)
    assert (task.schedule.sweeps, task.schedule.deleted) == (2, first.total)


async def test_user_policy_keeps_mailboxes(db: Database) -> None:
    _fill(db)
    task = LifecycleTask(AsyncStore(db), ManualClock(40 * DAY), SweepSchedule.for_role("user"))
    assert (await task.sweep_once()).mailbox_entries == 0
    assert db.mailboxes.count() == 2


async def _until(predicate: Callable[[], bool]) -> None:
    """Let trio run (the sweep is in a worker thread) until ``predicate`` holds."""
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in 10 s"
        await trio.lowlevel.checkpoint()


async def test_sweeps_run_on_a_schedule(db: Database, mock_clock: trio.testing.MockClock) -> None:
    clock = ManualClock(0.0)
    task = LifecycleTask(AsyncStore(db), clock, SweepSchedule.for_role("relay", interval=60.0))
    db.mailboxes.put(b"box", b"old", 0.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(task.run)
        await _until(lambda: task.schedule.sweeps == 1)  # the first sweep runs at once
        clock.advance(31 * DAY)  # the entry is now past the relay TTL
        mock_clock.jump(59)
        await trio.testing.wait_all_tasks_blocked()
        assert (task.schedule.sweeps, db.mailboxes.count()) == (1, 1)  # not before the interval
        mock_clock.jump(1)
        await _until(lambda: task.schedule.sweeps == 2)
        assert db.mailboxes.count() == 0
        for expected in (3, 4):
            mock_clock.jump(60)
            await _until(lambda: task.schedule.sweeps == expected)  # noqa: B023 - awaited at once
        nursery.cancel_scope.cancel()


async def test_a_failing_sweep_is_logged_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = open_database(tmp_path / "closed.db")
    db.close()  # every call now fails with a storage error
    task = LifecycleTask(AsyncStore(db), ManualClock(0.0), SweepSchedule.for_role("user"))
    assert (await task.sweep_once()).total == 0
    assert task.schedule.sweeps == 0
    assert "lifecycle sweep failed" in caplog.text
