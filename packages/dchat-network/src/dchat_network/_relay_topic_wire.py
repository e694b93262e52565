"""Relay protocol messages for broadcast channel topics (protocol §31, "Relay topics").

::

    tp_pub   {"t": "tp_pub", "rid": n, "tp": topic(32), "post": post, ?"desc": descriptor}
             -> {"t": "tp_ok", "rid": n, "seq": 1.., "new": 0 | 1}
    tp_read  {"t": "tp_read", "rid": n, "tp": topic(32), "after": seq, "max": 1..64,
              "wait": 0..30000, "dn": descriptor version held (0: none)}
             -> {"t": "tp_posts", "rid": n, "items": [[seq, post], ...], ?"desc": descriptor}

``post`` and ``descriptor`` are the signed records of :mod:`dchat_crypto`
(:class:`~dchat_crypto.ChannelPost`, :class:`~dchat_crypto.ChannelDescriptor`),
checked by the server, not here. ``seq`` is the relay's own sequence number
of the post in the topic (1, 2, ...; never reused), ``new`` says whether this
request stored it (0: the same post was held already). A ``tp_read`` returns
posts with ``seq > after``, oldest first; with ``wait`` and nothing to return,
the relay holds the answer until a post arrives (a subscription: one read
outstanding per topic, re-sent with the last ``seq`` seen). ``desc`` is in the
answer when the relay holds a descriptor newer than ``dn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, Fields

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "MAX_DESCRIPTOR",
    "MAX_POST",
    "MAX_TOPIC_WAIT_MS",
    "TOPIC_DECODERS",
    "TopicPosts",
    "TopicPublish",
    "TopicPublished",
    "TopicRead",
)

MAX_POST: Final = 64 * 1024 + 256
"""The largest encoded post (a body of at most 64 KiB and its fields)."""
MAX_DESCRIPTOR: Final = 1024
MAX_TOPIC_WAIT_MS: Final = 30_000
_MAX_BATCH: Final = 64
_MAX_SEQ: Final = 2**63 - 1
_ID: Final = 32


@dataclass(frozen=True, slots=True)
class TopicPublish:
    """Store ``post`` in ``topic`` (``desc``: a descriptor naming its publisher, if needed)."""

    rid: int
    topic: bytes
    post: bytes
    desc: bytes | None = None

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        body: dict[str, object] = {"t": "tp_pub", "tp": self.topic, "post": self.post}
        if self.desc is not None:
            body["desc"] = self.desc
        return body


@dataclass(frozen=True, slots=True)
class TopicPublished:
    """The post is held as ``seq`` of its topic (``new``: stored by this request)."""

    rid: int
    seq: int
    new: bool

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "tp_ok", "seq": self.seq, "new": int(self.new)}


@dataclass(frozen=True, slots=True)
class TopicRead:
    """Posts of ``topic`` after ``after``, at most ``limit``; hold up to ``wait_ms`` for one."""

    rid: int
    topic: bytes
    after: int
    limit: int
    wait_ms: int = 0
    desc_version: int = 0

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {
            "t": "tp_read",
            "tp": self.topic,
            "after": self.after,
            "max": self.limit,
            "wait": self.wait_ms,
            "dn": self.desc_version,
        }


@dataclass(frozen=True, slots=True)
class TopicPosts:
    """``items``: ``(seq, post)`` oldest first; ``desc``: a newer descriptor than asked."""

    rid: int
    items: tuple[tuple[int, bytes], ...]
    desc: bytes | None = None

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        body: dict[str, object] = {"t": "tp_posts", "items": [list(i) for i in self.items]}
        if self.desc is not None:
            body["desc"] = self.desc
        return body


def _fields(value: object, *names: str) -> tuple[Fields, int]:
    fields = Fields(value, "relay message", frozenset({"t", "rid", *names}))
    return fields, fields.get_int("rid", hi=_MAX_SEQ)


def _desc(f: Fields) -> bytes | None:
    return f.get_bytes("desc", max_size=MAX_DESCRIPTOR) if f.has("desc") else None


def _publish(value: object) -> TopicPublish:
    f, rid = _fields(value, "tp", "post", "desc")
    post = f.get_bytes("post", max_size=MAX_POST)
    return TopicPublish(rid, f.get_bytes("tp", size=_ID), post, _desc(f))


def _published(value: object) -> TopicPublished:
    f, rid = _fields(value, "seq", "new")
    return TopicPublished(rid, f.get_int("seq", lo=1), bool(f.get_int("new", hi=1)))


def _read(value: object) -> TopicRead:
    f, rid = _fields(value, "tp", "after", "max", "wait", "dn")
    return TopicRead(
        rid,
        f.get_bytes("tp", size=_ID),
        f.get_int("after"),
        f.get_int("max", lo=1, hi=_MAX_BATCH),
        f.get_int("wait", hi=MAX_TOPIC_WAIT_MS),
        f.get_int("dn"),
    )


def _posts(value: object) -> TopicPosts:
    f, rid = _fields(value, "items", "desc")
    items = []
    for item in f.get_list("items", max_len=_MAX_BATCH):
        if not isinstance(item, list) or len(item) != 2:
            raise DecodeError("a topic item is [seq, post]")
        seq, post = item
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= _MAX_SEQ:
            raise DecodeError("a topic item's seq is out of range")
        if not isinstance(post, bytes) or len(post) > MAX_POST:
            raise DecodeError("a topic item's post is not a bounded byte string")
        items.append((seq, post))
    return TopicPosts(rid, tuple(items), _desc(f))


TOPIC_DECODERS: Final[dict[str, Callable[[object], object]]] = {
    "tp_pub": _publish,
    "tp_ok": _published,
    "tp_read": _read,
    "tp_posts": _posts,
}
