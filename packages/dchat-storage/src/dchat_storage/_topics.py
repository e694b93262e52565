"""The relay's broadcast channel topics: posts numbered per relay, the newest descriptor.

Theory of operation: each post is one row of ``relay_topic_posts``; its
autoincrement ``seq`` is the number readers page by (increasing, never
reused, shared by all topics). Unique keys make a post stored once per topic
(by its id) and a publisher's counter taken once, even with several
processes on one database: the insert is ``ON CONFLICT DO NOTHING`` and what
it did is read back. ``relay_topics`` keeps each topic's post bytes, so the
quota check costs one row, and the newest descriptor. Trimming blanks the
oldest posts (``post`` NULL) rather than deleting their rows, so an evicted
post sent again is still known. The relay checks posts before they get here
(``dchat_network``'s topic rules); this is a ``dchat_network.TopicStore``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from ._access import insert_ignore
from ._schema import TopicPostRow, TopicRow

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ._access import Access

__all__ = ("TopicRepo",)

_TRIM_PAGE = 256


class TopicRepo:
    """Topics hosted by the relay role. Obtain it as :attr:`Database.topics`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def topic_publish(
        self, topic: bytes, post_id: bytes, publisher: bytes, pseq: int, post: bytes, now: float
    ) -> tuple[int, bool] | None:
        """Store a post once: ``(seq, created)``; None if ``(publisher, pseq)`` is another's."""
        row = {
            "topic": topic,
            "post_id": post_id,
            "publisher": publisher,
            "pseq": pseq,
            "post": post,
            "stored_at": now,
        }
        by_id = select(TopicPostRow.seq).where(
            TopicPostRow.topic == topic, TopicPostRow.post_id == post_id
        )
        with self._access.write("publish post") as conn:
            created = insert_ignore(conn, TopicPostRow, row)
            seq = conn.execute(by_id).scalar_one_or_none()
            if seq is None:
                return None
            if created:
                _add_held(conn, topic, len(post))
            return int(seq), created

    def topic_read(self, topic: bytes, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` held posts with ``seq > after``, oldest first."""
        query = (
            select(TopicPostRow.seq, TopicPostRow.post)
            .where(
                TopicPostRow.topic == topic,
                TopicPostRow.seq > after,
                TopicPostRow.post.is_not(None),
            )
            .order_by(TopicPostRow.seq)
            .limit(limit)
        )
        with self._access.read("read topic") as conn:
            return [(int(r.seq), bytes(r.post)) for r in conn.execute(query)]

    def topic_descriptor(self, topic: bytes) -> tuple[int, bytes] | None:
        """The held descriptor's version and bytes, if any."""
        query = select(TopicRow.desc_version, TopicRow.descriptor).where(TopicRow.topic == topic)
        with self._access.read("topic descriptor") as conn:
            row = conn.execute(query).first()
        if row is None or row.descriptor is None:
            return None
        return int(row.desc_version), bytes(row.descriptor)

    def topic_set_descriptor(self, topic: bytes, version: int, descriptor: bytes) -> None:
        """Replace the held descriptor."""
        with self._access.write("set topic descriptor") as conn:
            _ensure(conn, topic)
            values = {"desc_version": version, "descriptor": descriptor}
            conn.execute(update(TopicRow).where(TopicRow.topic == topic).values(values))

    def topic_trim(self, topic: bytes, max_bytes: int, before: float) -> int:
        """Blank the oldest posts past ``max_bytes`` (0: no quota) or stored before ``before``."""
        held_q = select(TopicRow.held).where(TopicRow.topic == topic)
        oldest = (
            select(TopicPostRow.seq, func.length(TopicPostRow.post).label("size"))
            .add_columns(TopicPostRow.stored_at)
            .where(TopicPostRow.topic == topic, TopicPostRow.post.is_not(None))
            .order_by(TopicPostRow.seq)
            .limit(_TRIM_PAGE)
        )
        dropped = 0
        with self._access.write("trim topic") as conn:
            held = conn.execute(held_q).scalar_one_or_none() or 0
            while rows := conn.execute(oldest).all():
                gone = []
                for row in rows:
                    if not ((max_bytes and held > max_bytes) or row.stored_at < before):
                        break
                    gone.append(row.seq)
                    held -= int(row.size)
                if gone:
                    blank = update(TopicPostRow).where(TopicPostRow.seq.in_(gone))
                    conn.execute(blank.values(post=None))
                    dropped += len(gone)
                if len(gone) < len(rows):
                    break
            if dropped:
                conn.execute(update(TopicRow).where(TopicRow.topic == topic).values(held=held))
        return dropped

    def topic_total(self) -> int:
        """The post bytes all topics hold (the relay's disk budget counts them)."""
        with self._access.read("topics total") as conn:
            total = conn.execute(select(func.coalesce(func.sum(TopicRow.held), 0)))
            return int(total.scalar_one())

    def held_bytes(self, topic: bytes) -> int:
        """The post bytes ``topic`` holds."""
        with self._access.read("topic bytes") as conn:
            held = conn.execute(select(TopicRow.held).where(TopicRow.topic == topic))
            return int(held.scalar_one_or_none() or 0)


def _ensure(conn: Connection, topic: bytes) -> None:
    insert_ignore(conn, TopicRow, {"topic": topic, "held": 0, "desc_version": 0})


def _add_held(conn: Connection, topic: bytes, size: int) -> None:
    _ensure(conn, topic)
    grown = update(TopicRow).where(TopicRow.topic == topic).values(held=TopicRow.held + size)
    conn.execute(grown)
