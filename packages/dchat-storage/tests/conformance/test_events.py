"""The event log (EventLog) and cursor paging of messages, on every backend."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_storage import (
    CursorExpiredError,
    Database,
    InvalidArgumentError,
    LifecyclePolicy,
)

DAY = 86400.0


def _add(db: Database, n: int, peer: str = "id-bob", at: float | None = None) -> bool:
    stored_at = float(n) if at is None else at
    return db.messages.add(n.to_bytes(16, "big"), "in", peer, f"body {n}", stored_at, stored_at)


def _ids(records: list[object]) -> list[int]:
    return [int.from_bytes(getattr(r, "message_id"), "big") for r in records]  # noqa: B009


def _all_events(db: Database, after: int = 0, limit: int = 3) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    while page := db.events.page(after, limit):
        seen += [(e.cursor, e.kind) for e in page]
        after = page[-1].cursor
    return seen


def test_a_new_message_appends_one_message_event_carrying_it(db: Database) -> None:
    assert db.events.head() == 0
    assert _add(db, 1)
    assert not _add(db, 1)  # redelivered: no second event
    [event] = db.events.page(0)
    assert event.kind == "message"
    assert event.data == {}
    assert event.message == db.messages.get((1).to_bytes(16, "big"))
    assert event.message is not None
    assert event.message.body == "body 1"
    assert db.events.head() == event.cursor


def test_pages_cover_the_log_in_order_without_repeats(db: Database) -> None:
    for n in range(1, 8):
        _add(db, n)
        if n % 3 == 0:
            db.events.append("request", {"identity_id": f"id-{n}", "state": "open"}, float(n))
    events = _all_events(db)
    cursors = [c for c, _ in events]
    assert cursors == sorted(set(cursors))
    assert [k for _, k in events].count("message") == 7
    assert [k for _, k in events].count("request") == 2
    # Resuming from any cursor gives exactly the rest.
    for i, (cursor, _) in enumerate(events):
        assert _all_events(db, cursor, limit=2) == events[i + 1 :]


def test_custom_events_round_trip_their_data(db: Database) -> None:
    data = {"identity_id": "id-carol", "name": "Carol ✓", "n": 3, "ok": True, "x": None}
    cursor = db.events.append("request", data, 5.0)
    [event] = db.events.page(cursor - 1)
    assert (event.cursor, event.kind, event.created_at, event.data) == (
        cursor,
        "request",
        5.0,
        data,
    )
    assert event.message is None


@pytest.mark.parametrize(
    "data",
    [
        {"items": list(range(300))},  # more items than a record may hold
        {"a": {"b": {"c": {"d": {"e": 1}}}}},  # nested deeper than a record may be
    ],
)
def test_an_event_that_could_not_be_read_back_is_refused(
    db: Database, data: dict[str, object]
) -> None:
    # Stored, it would make every page holding it fail (the stream and getUpdates).
    db.events.append("request", {"n": 1}, 1.0)
    with pytest.raises(InvalidArgumentError, match="too big or too deep"):
        db.events.append("request", data, 2.0)
    db.events.append("request", {"n": 3}, 3.0)
    assert [e.data for e in db.events.page(0)] == [{"n": 1}, {"n": 3}]


def test_an_event_exists_exactly_while_its_message_does(db: Database) -> None:
    _add(db, 1)
    _add(db, 2)
    assert db.messages.delete((1).to_bytes(16, "big"))
    assert [e.message.body for e in db.events.page(0) if e.message] == ["body 2"]


def test_a_failed_transaction_leaves_neither_message_nor_event(db: Database) -> None:
    def crash() -> None:
        with db.transaction():
            _add(db, 1)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        crash()
    assert db.events.page(0) == []
    assert db.messages.count() == 0


def test_cursors_are_never_reused_after_the_newest_event_goes(db: Database) -> None:
    _add(db, 1)
    _add(db, 2)
    old = db.events.head()
    db.messages.delete((2).to_bytes(16, "big"))
    _add(db, 3)
    [newest] = db.events.page(old)
    assert newest.cursor > old
    assert newest.message is not None
    assert newest.message.body == "body 3"


def test_retention_prunes_a_prefix_and_old_cursors_expire(db: Database) -> None:
    for n in range(1, 6):
        _add(db, n, at=n * DAY)
    events = db.events.page(0)
    report = db.lifecycle.sweep(3.5 * DAY + 1, LifecyclePolicy(event_ttl=DAY))
    assert report.events == 2
    assert report.counts()["events"] == 2
    horizon = events[1].cursor
    with pytest.raises(CursorExpiredError) as caught:
        db.events.page(0)
    assert caught.value.code == "cursor_expired"
    with pytest.raises(CursorExpiredError):
        db.events.page(horizon - 1)
    assert [e.cursor for e in db.events.page(horizon)] == [e.cursor for e in events[2:]]
    assert db.messages.count() == 5  # the messages themselves are kept
    # Everything pruned: the head does not go back below the horizon.
    db.lifecycle.sweep(100 * DAY, LifecyclePolicy(event_ttl=DAY))
    assert db.events.head() == events[-1].cursor
    assert db.events.page(db.events.head()) == []


def test_no_event_ttl_keeps_the_log(db: Database) -> None:
    _add(db, 1)
    assert db.lifecycle.sweep(1000 * DAY, LifecyclePolicy(event_ttl=None)).events == 0
    assert len(db.events.page(0)) == 1


def test_bad_arguments_are_refused(db: Database) -> None:
    with pytest.raises(InvalidArgumentError):
        db.events.page(-1)
    for limit in (0, 1001):
        with pytest.raises(InvalidArgumentError):
            db.events.page(0, limit)
    with pytest.raises(InvalidArgumentError):
        db.events.append("message", {}, 1.0)
    with pytest.raises(InvalidArgumentError):
        db.messages.list(after=-1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.text(max_size=40))
def test_only_short_lowercase_names_are_kinds(db: Database, kind: str) -> None:
    valid = (
        0 < len(kind) <= 32
        and kind[0].isascii()
        and kind[0].islower()
        and all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in kind)
        and kind != "message"
    )
    if valid:
        assert db.events.append(kind, {}, 1.0) > 0
    else:
        with pytest.raises(InvalidArgumentError):
            db.events.append(kind, {}, 1.0)


def test_message_paging_by_cursor(db: Database) -> None:
    for n in range(1, 11):
        _add(db, n, peer="id-bob" if n % 2 else "id-carol")
    everything = db.messages.list()
    cursors = [m.cursor for m in everything]
    assert None not in cursors
    assert cursors == sorted(cursors)
    first, fifth = cursors[0], cursors[4]
    assert first is not None
    assert fifth is not None
    assert _ids(db.messages.list(limit=3, after=first)) == [2, 3, 4]
    assert _ids(db.messages.list(limit=3, before=fifth)) == [2, 3, 4]
    assert _ids(db.messages.list(limit=10, after=first, before=fifth)) == [2, 3, 4]
    assert _ids(db.messages.list("id-bob", 2, after=first)) == [3, 5]
    assert db.messages.list(after=cursors[-1]) == []
    # Paging backwards from the newest page reaches every message once.
    seen: list[int] = []
    page = db.messages.list(limit=4)
    while page:
        seen = _ids(page) + seen
        assert page[0].cursor is not None
        page = db.messages.list(limit=4, before=page[0].cursor)
    assert seen == list(range(1, 11))
