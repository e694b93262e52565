"""PrekeyRepo: the relay's hosted prekey bundles, on every backend."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dchat_storage import Database

BOX_A = b"\xaa" * 32
BOX_B = b"\xbb" * 32


def otks(tag: bytes, ids: range | list[int]) -> list[tuple[int, bytes]]:
    return [(i, b"%s-%d" % (tag, i)) for i in ids]


def test_take_serves_lowest_id_once_then_the_last_resort(db: Database) -> None:
    assert db.prekeys.take_prekey(BOX_A) is None
    assert db.prekeys.put_prekeys(BOX_A, b"last", otks(b"o", [2**32 - 1, 5, 0]), False, 1.0) == 3
    assert [db.prekeys.take_prekey(BOX_A) for _ in range(5)] == [
        b"o-0",
        b"o-5",
        b"o-4294967295",
        b"last",
        b"last",
    ]
    assert db.prekeys.count_prekeys(BOX_A) == 0


def test_takes_are_durable_across_reopen(db: Database, reopen: Callable[[], Database]) -> None:
    db.prekeys.put_prekeys(BOX_A, b"last", otks(b"o", [1, 2]), False, 1.0)
    assert db.prekeys.take_prekey(BOX_A) == b"o-1"
    again = reopen()
    assert again.prekeys.count_prekeys(BOX_A) == 1
    assert again.prekeys.take_prekey(BOX_A) == b"o-2"
    assert db.prekeys.take_prekey(BOX_A) == b"last"


def test_put_keeps_or_replaces(db: Database) -> None:
    db.prekeys.put_prekeys(BOX_A, b"last-1", otks(b"a", [1, 2]), False, 1.0)
    db.prekeys.put_prekeys(BOX_B, b"last-b", otks(b"b", [1]), False, 1.0)
    assert db.prekeys.put_prekeys(BOX_A, b"last-2", otks(b"c", [2, 3]), False, 2.0) == 3
    assert db.prekeys.take_prekey(BOX_A) == b"a-1"
    assert db.prekeys.take_prekey(BOX_A) == b"a-2"  # the held bundle with id 2 was kept
    assert db.prekeys.put_prekeys(BOX_A, b"last-3", otks(b"d", [7]), True, 3.0) == 1
    assert [db.prekeys.take_prekey(BOX_A) for _ in range(2)] == [b"d-7", b"last-3"]
    assert db.prekeys.count_prekeys(BOX_B) == 1  # other mailboxes are untouched


def test_a_take_from_two_handles_at_once_never_repeats(
    db: Database, reopen: Callable[[], Database]
) -> None:
    # Separate Database handles share no lock: only the database keeps takes exclusive.
    published = otks(b"o", range(60))
    db.prekeys.put_prekeys(BOX_A, b"last", published, False, 1.0)
    handles = [db, reopen(), reopen()]
    taken: list[bytes | None] = []
    lock = threading.Lock()
    start = threading.Barrier(len(handles))

    def taker(handle: Database) -> None:
        start.wait()
        for _ in range(25):
            bundle = handle.prekeys.take_prekey(BOX_A)
            with lock:
                taken.append(bundle)

    threads = [threading.Thread(target=taker, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    one_time = [b for b in taken if b is not None and b != b"last"]
    assert sorted(one_time) == sorted(bundle for _, bundle in published)
    assert taken.count(b"last") == 15
