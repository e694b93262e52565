"""AsyncStore: repository calls from trio, and group commit of concurrent writers."""

from __future__ import annotations

import trio

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
