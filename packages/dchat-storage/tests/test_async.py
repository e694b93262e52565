"""AsyncStore: repository calls from trio, and group commit of concurrent writers."""

from __future__ import annotations

import threading
import time

import trio
import trio.testing

from dchat_storage import AsyncStore, Database, DatabaseClosedError, DuplicateError

WAIT = 30  # generous bound on every test's trio work


async def test_run_calls_in_a_worker_thread_and_returns_the_result(db: Database) -> None:
    store = AsyncStore(db)
    with trio.fail_after(WAIT):
        await store.run(db.settings.set, "k", b"v", 1.0)
        assert await store.run(db.settings.get, "k") == b"v"


async def test_concurrent_grouped_calls_share_commits(db: Database) -> None:
    store = AsyncStore(db)
    results: dict[int, None] = {}

    async def write(i: int) -> None:
        results[i] = await store.run_grouped(db.settings.set, f"key{i}", b"%d" % i, 1.0)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(write, i)
    assert len(results) == 200
    assert all(db.settings.get(f"key{i}") == b"%d" % i for i in range(200))
    assert store.group_commits < 200 / 4  # concurrent writers shared their commits


async def test_a_failing_call_is_rolled_back_alone(db: Database) -> None:
    store = AsyncStore(db)
    outcomes: dict[str, object] = {}

    def good(key: str) -> str:
        db.settings.set(key, b"kept", 1.0)
        return key

    def bad() -> None:
        db.settings.set("half-written", b"gone", 1.0)
        db.contacts.add("x", "id", b"card", 1.0)
        db.contacts.add("x", "id", b"card", 1.0)  # duplicate: the call raises

    async def call(name: str, fn: object) -> None:
        try:
            outcomes[name] = await store.run_grouped(fn)  # type: ignore[call-overload]
        except DuplicateError as exc:
            outcomes[name] = exc

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "a", lambda: good("a"))
            nursery.start_soon(call, "bad", bad)
            nursery.start_soon(call, "b", lambda: good("b"))
    assert outcomes["a"] == "a"
    assert outcomes["b"] == "b"
    assert isinstance(outcomes["bad"], DuplicateError)
    assert db.settings.get("a") == db.settings.get("b") == b"kept"
    assert db.settings.get("half-written") is None  # the failed call left nothing
    assert db.contacts.list() == []


async def test_a_failed_commit_fails_every_call_in_it(db: Database) -> None:
    store = AsyncStore(db)
    db.close()  # every transaction now fails
    errors: list[BaseException] = []

    async def call(i: int) -> None:
        try:
            await store.run_grouped(db.settings.set, f"k{i}", b"v", 1.0)
        except DatabaseClosedError as exc:
            errors.append(exc)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(call, i)
    assert len(errors) == 5


async def test_a_cancelled_caller_does_not_strand_the_others(db: Database) -> None:
    store = AsyncStore(db, threads=1)
    done: list[int] = []

    async def write(i: int) -> None:
        await store.run_grouped(db.settings.set, f"k{i}", b"v", 1.0)
        done.append(i)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as scope:
                scope.cancel()  # cancelled before its call could run
                await store.run_grouped(db.settings.set, "never", b"v", 1.0)
            for i in range(10):
                nursery.start_soon(write, i)
    assert sorted(done) == list(range(10))
    assert db.settings.get("never") is None  # the cancelled call never ran


async def test_background_calls_commit_after_the_foreground_in_small_groups_of_their_own(
    db: Database,
) -> None:
    store = AsyncStore(db, later_batch=4)
    release = threading.Event()
    seen: dict[str, int] = {}  # each call's group: the commits finished before it ran

    def blocker() -> None:
        release.wait(WAIT)

    def mark(name: str) -> None:
        seen[name] = store.group_commits
        db.settings.set(name, b"v", 1.0)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.run_grouped, blocker)
            await trio.testing.wait_all_tasks_blocked()  # the blocker's commit is under way
            for i in range(8):
                nursery.start_soon(store.run_grouped_later, mark, f"later{i}")
            await trio.testing.wait_all_tasks_blocked()
            for i in range(3):
                nursery.start_soon(store.run_grouped, mark, f"now{i}")
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    # The foreground calls queued last committed first, in one group of their own.
    assert {seen[f"now{i}"] for i in range(3)} == {1}
    later = sorted(seen[f"later{i}"] for i in range(8))
    assert later == [2, 2, 2, 2, 3, 3, 3, 3]  # then the background, four at a time
    assert all(db.settings.get(name) == b"v" for name in seen)


async def test_a_cancelled_background_caller_does_not_strand_the_others(db: Database) -> None:
    store = AsyncStore(db, threads=1, later_batch=2)
    done: list[int] = []

    async def write(i: int) -> None:
        await store.run_grouped_later(db.settings.set, f"k{i}", b"v", 1.0)
        done.append(i)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as scope:
                scope.cancel()  # cancelled before its call could run
                await store.run_grouped_later(db.settings.set, "never", b"v", 1.0)
            for i in range(5):
                nursery.start_soon(write, i)
                nursery.start_soon(store.run_grouped, db.settings.set, f"f{i}", b"v", 1.0)
    assert sorted(done) == list(range(5))
    assert all(db.settings.get(f"f{i}") == b"v" for i in range(5))
    assert db.settings.get("never") is None


async def test_background_calls_go_ahead_after_waiting_under_a_foreground_that_never_pauses(
    db: Database,
) -> None:
    store = AsyncStore(db, later_wait=0.2)
    took: list[float] = []

    async def foreground(i: int) -> None:
        while not took:  # two writers: one is always queued while the other commits
            await store.run_grouped(time.sleep, 0.005)

    async def background() -> None:
        began = trio.current_time()
        await store.run_grouped_later(db.settings.set, "later", b"v", 1.0)
        took.append(trio.current_time() - began)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(foreground, 0)
            nursery.start_soon(foreground, 1)
            await trio.sleep(0.05)
            nursery.start_soon(background)
    assert db.settings.get("later") == b"v"
    assert 0.2 <= took[0] < 5.0  # not before its wait, not starved
