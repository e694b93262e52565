"""SearchRepo: the blind word index of the message store, on every backend."""

from __future__ import annotations

import pytest

from dchat_storage import Database, InvalidArgumentError
from dchat_storage.lowlevel import MAX_QUERY_CHARS, search_terms


def _add(db: Database, n: int, body: str, peer: str = "id-bob", direction: str = "in") -> bytes:
    mid = n.to_bytes(16, "big")
    assert db.messages.add(mid, direction, peer, body, float(n), float(n))
    return mid


def _found(db: Database, query: str, **kwargs: object) -> list[str]:
    return [m.body for m in db.search.candidates(query, **kwargs)]  # type: ignore[arg-type]


def test_every_word_must_match_newest_first(db: Database) -> None:
    _add(db, 1, "The quick brown fox")
    _add(db, 2, "a slow brown bear", direction="out")
    _add(db, 3, "Nothing to see")
    assert _found(db, "brown") == ["a slow brown bear", "The quick brown fox"]
    assert _found(db, "brown fox") == ["The quick brown fox"]
    assert _found(db, "fox bear") == []
    assert _found(db, "giraffe") == []


def test_words_match_whole_across_case_and_compatibility_forms(db: Database) -> None:
    text = "Straße nach \uff32\uff2f\uff2d, \ufb01nal offer!"  # full-width ROM, ligature fi
    _add(db, 1, text)
    assert _found(db, "STRASSE") == _found(db, "rom") == _found(db, "final") == [text]
    assert _found(db, "offe") == []  # whole words only: no prefix match


def test_peer_filter_limit_and_paging(db: Database) -> None:
    for n in range(1, 6):
        _add(db, n, f"lunch {n}", peer="id-bob" if n % 2 else "id-carol")
    assert _found(db, "lunch", peer_id="id-carol") == ["lunch 4", "lunch 2"]
    page = db.search.candidates("lunch", limit=2)
    assert [m.body for m in page] == ["lunch 5", "lunch 4"]
    cursor = page[-1].cursor
    assert cursor is not None
    assert _found(db, "lunch", before=cursor) == ["lunch 3", "lunch 2", "lunch 1"]


def test_each_distinct_word_is_one_row(db: Database) -> None:
    _add(db, 1, "to be or not to be")
    assert db.search.count() == len(search_terms("to be or not to be")) == 4


def test_reindex_replaces_a_messages_words(db: Database) -> None:
    mid = _add(db, 1, "meet at noon")
    assert db.search.reindex(mid, "meet at midnight") is True
    assert _found(db, "noon") == []
    assert _found(db, "midnight") == ["meet at noon"]  # candidates carry the stored body
    assert db.search.reindex(b"x" * 16, "anything") is False


def test_forget_drops_the_rows_and_keeps_the_message(db: Database) -> None:
    mid = _add(db, 1, "secret picnic plans")
    assert db.search.forget(mid) == 3
    assert _found(db, "picnic") == []
    assert db.messages.get(mid) is not None
    assert db.search.forget(mid) == 0


def test_deleting_or_expiring_a_message_drops_its_rows(db: Database) -> None:
    mid = _add(db, 1, "delete me soon")
    db.conversations.create("id-carol", 0.0, disappear_after=10)
    gone = _add(db, 2, "vanishing words", peer="id-carol", direction="out")
    assert db.messages.start_timer(gone, 2.0) is True  # carol read it: expires at 12
    assert db.search.count() == 5
    assert db.messages.delete(mid) is True
    assert db.search.count() == 2
    for expired in db.messages.expired(100.0):  # what the messaging layer's expiry does
        db.messages.delete(expired.message_id)
    assert db.messages.count() == 0
    assert db.search.count() == 0


def test_rebuild_indexes_stored_messages_with_their_shown_text(db: Database) -> None:
    assert db.search.ready is False
    mid = _add(db, 1, "original words")
    _add(db, 2, "other words")
    db.search.forget(mid)
    edited = {mid: "edited text"}
    assert db.search.rebuild(lambda m: edited.get(m.message_id, m.body)) == 2
    assert db.search.ready is True
    assert _found(db, "edited") == ["original words"]
    assert _found(db, "original") == []
    assert _found(db, "words") == ["other words"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "?!… -- ,,, ;",
        "x" * (MAX_QUERY_CHARS + 1),
        " ".join(f"w{i}" for i in range(10_000)),
    ],
    ids=["empty", "blank", "punctuation", "huge", "10000-terms"],
)
def test_hostile_queries_are_refused(db: Database, query: str) -> None:
    _add(db, 1, "something")
    with pytest.raises(InvalidArgumentError):
        db.search.candidates(query)


def test_too_many_words_within_the_length_limit_are_refused(db: Database) -> None:
    with pytest.raises(InvalidArgumentError, match="at most 16 words"):
        db.search.candidates(" ".join("abcdefghijklmnopq"))


def test_bad_limit_or_cursor_is_refused(db: Database) -> None:
    with pytest.raises(InvalidArgumentError):
        db.search.candidates("x", limit=0)
    with pytest.raises(InvalidArgumentError):
        db.search.candidates("x", before=-1)


def test_new_rows_wait_in_storage_order_until_a_search_merges_them(db: Database) -> None:
    _add(db, 1, "alpha beta")
    assert _found(db, "alpha") == ["alpha beta"]  # the search merged the pending rows
    assert db.search.merge() == 0
    _add(db, 2, "alpha gamma")
    assert db.search.merge() == 2
    _add(db, 3, "alpha delta")  # pending, beside merged rows: both are searched
    assert _found(db, "alpha") == ["alpha delta", "alpha gamma", "alpha beta"]
    assert db.search.count() == 6


def test_a_large_merge_goes_in_bounded_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dchat_storage._search as module

    monkeypatch.setattr(module, "MERGE_BATCH", 2)
    batches: list[str] = []
    write = db.search._access.write  # type: ignore[attr-defined]

    def counted(what: str):  # type: ignore[no-untyped-def]
        batches.append(what)
        return write(what)

    for n in range(5):
        _add(db, n + 1, f"word{n} shared")
    monkeypatch.setattr(db.search._access, "write", counted)  # type: ignore[attr-defined]
    assert db.search.merge() == 10
    assert batches == ["merge search rows"] * 3  # 2 + 2 + 1 messages
    assert db.search.merge() == 0
    assert len(_found(db, "shared")) == 5
