"""TopicRepo: the relay's broadcast channel topics, on every backend."""

from __future__ import annotations

from collections.abc import Callable

from dchat_storage import Database

TOPIC = b"\x11" * 32
OTHER = b"\x22" * 32
PK = b"\xaa" * 32


def pid(n: int) -> bytes:
    return n.to_bytes(32, "big")


def test_a_post_is_stored_once_and_a_counter_taken_once(db: Database) -> None:
    topics = db.topics
    first = topics.topic_publish(TOPIC, pid(1), PK, 1, b"one", 1.0)
    assert first is not None
    assert first[1]
    assert topics.topic_publish(TOPIC, pid(1), PK, 1, b"one", 2.0) == (first[0], False)
    assert topics.topic_publish(TOPIC, pid(2), PK, 1, b"forged", 2.0) is None
    assert topics.topic_publish(OTHER, pid(2), PK, 1, b"elsewhere", 2.0) is not None
    assert topics.topic_read(TOPIC, 0, 10) == [(first[0], b"one")]
    assert topics.held_bytes(TOPIC) == 3


def test_reads_page_oldest_first_and_survive_reopen(
    db: Database, reopen: Callable[[], Database]
) -> None:
    seqs = []
    for n in range(1, 8):
        held = db.topics.topic_publish(TOPIC, pid(n), PK, n, b"p%d" % n, float(n))
        assert held is not None
        seqs.append(held[0])
    assert seqs == sorted(seqs)
    page = db.topics.topic_read(TOPIC, 0, 3)
    assert [p for _, p in page] == [b"p1", b"p2", b"p3"]
    rest = reopen().topics.topic_read(TOPIC, page[-1][0], 10)
    assert [p for _, p in rest] == [b"p%d" % n for n in range(4, 8)]


def test_trim_blanks_the_oldest_and_remembers_them(db: Database) -> None:
    for n in range(1, 6):
        db.topics.topic_publish(TOPIC, pid(n), PK, n, bytes(100), float(n))
    assert db.topics.topic_trim(TOPIC, 300, 0.0) == 2
    assert len(db.topics.topic_read(TOPIC, 0, 10)) == 3
    assert db.topics.held_bytes(TOPIC) == 300
    assert db.topics.topic_trim(TOPIC, 0, 4.5) == 2  # retention: stored before 4.5
    assert len(db.topics.topic_read(TOPIC, 0, 10)) == 1
    again = db.topics.topic_publish(TOPIC, pid(1), PK, 1, bytes(100), 9.0)
    assert again is not None
    assert not again[1]  # evicted, not stored anew


def test_the_newest_descriptor_is_kept(db: Database) -> None:
    assert db.topics.topic_descriptor(TOPIC) is None
    db.topics.topic_set_descriptor(TOPIC, 1, b"d1")
    db.topics.topic_publish(TOPIC, pid(1), PK, 1, b"x", 1.0)
    db.topics.topic_set_descriptor(TOPIC, 2, b"d2")
    assert db.topics.topic_descriptor(TOPIC) == (2, b"d2")
    assert db.topics.held_bytes(TOPIC) == 1
