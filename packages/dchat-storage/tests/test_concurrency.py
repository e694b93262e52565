"""Many threads (and a second handle on the same file) writing at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dchat_storage import Database, open_database

WRITERS = 8
PUTS = 60


def _hammer(db: Database, writer: int, start: threading.Barrier) -> list[bytes]:
    start.wait()
    ids = []
    for n in range(PUTS):
        entry_id, stored = db.mailboxes.put(b"box", f"{writer}:{n}".encode(), float(n))
        assert stored
        ids.append(entry_id)
    return ids


def _run_all(jobs: list[Callable[[], object]]) -> list[object]:
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result(timeout=60) for f in futures]  # re-raises any worker error


def test_concurrent_writers_and_readers_lose_nothing(db: Database) -> None:
    start = threading.Barrier(WRITERS + 2)
    stop = threading.Event()

    def read() -> int:
        start.wait()
        seen = 0
        while not stop.is_set():
            # Entries are only ever added here, so a reader must never see fewer.
            now = db.mailboxes.count(b"box")
            assert now >= seen
            seen = now
        return seen

    def write(writer: int) -> list[bytes]:
        try:
            return _hammer(db, writer, start)
        finally:
            if writer == 0:
                stop.set()

    jobs: list[Callable[[], object]] = [lambda w=w: write(w) for w in range(WRITERS)]
    jobs += [read, read]
    results = _run_all(jobs)
    written = {i for r in results[:WRITERS] for i in r}  # type: ignore[union-attr]
    stored = {e.entry_id for e in db.mailboxes.fetch(b"box", limit=10_000)}
    assert len(written) == WRITERS * PUTS
    assert stored == written
    assert db.integrity_check() == "ok"


def test_two_handles_on_one_file_wait_instead_of_failing(db_path: Path) -> None:
    # Separate Database objects do not share the in-process lock, so this
    # exercises BEGIN IMMEDIATE plus the busy timeout (as two processes would).
    first, second = open_database(db_path), open_database(db_path)
    try:
        start = threading.Barrier(4)
        handles = [first, second, first, second]
        results = _run_all([lambda w=w: _hammer(handles[w], w, start) for w in range(4)])
        assert first.mailboxes.count() == 4 * PUTS == sum(len(r) for r in results)  # type: ignore[arg-type]
    finally:
        first.close()
        second.close()
