"""Broadcast channels of one user node: create, subscribe, post, receive (sans-IO).

Theory of operation
-------------------
:class:`Channels` (``UserMessaging.channels``) keeps each channel as sealed
state of the node's store (canonical CBOR under ``channel.<topic hex>``, its
newest posts under ``channel.log.<topic hex>``, posts not yet on every relay
under ``channel.uploads``). Every call is synchronous, inside the caller's
store transaction, with ``now`` passed in.

* **Publishing.** The creator holds the channel key; anyone else publishes
  with a key of their own once the channel's descriptor lists it
  (:meth:`Channels.add_publisher`, which also posts a notice so readers see
  who was added). A post is encrypted once under the channel's content key,
  signed with the publisher's next counter, and queued once per relay of the
  channel (:meth:`Channels.pending`; the shell uploads each and calls
  :meth:`Channels.uploaded`). The relay fans it out; the publisher never
  encrypts or sends per subscriber.
* **Receiving.** The shell reads each relay's topic from the channel's cursor
  there and hands the posts over (:meth:`Channels.receive`). A post counts
  only if it verifies, names this channel, is signed by the channel key or a
  listed publisher, and opens; a counter seen before is a duplicate (the same
  post through another relay: dropped quietly) or a replay (another post:
  refused and counted). Counters skipped over are kept as gaps until they
  arrive. Accepted posts reach the event log as ``channel_post``.

Errors: our own calls that do not fit raise :class:`ChannelError` with a code
(``unknown_channel``, ``not_publisher``, ``bad_link``, ...); received posts
that are refused are counted, never raised, so one bad post does not stop a
batch.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import SigningKey
from dchat_crypto.hazmat import ChannelDescriptor, ChannelPost, ChannelRecordError, topic_of

from ._channel_wire import MAX_RELAYS, MAX_TITLE, ChannelLink, open_body, seal_body
from ._errors import ChannelError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._contacts import UserStore

__all__ = ("MAX_CHANNEL_LOG", "Channels")

MAX_CHANNEL_LOG: Final = 500
"""Posts kept per channel (the newest)."""
MAX_GAPS: Final = 256
_INDEX: Final = "channel.index"
_UPLOADS: Final = "channel.uploads"
_LIMITS: Final = DecodeLimits(max_size=32 << 20, max_depth=5, max_items=1 << 20)
_RECORD: Final = frozenset({"ck", "cs", "t", "r", "sk", "me", "q", "d", "cur", "pub", "rej"})


def _load(data: bytes | None, what: str) -> list[Any]:
    if data is None:
        return []
    try:
        value = canonical_decode(data, _LIMITS)
    except DchatError:
        value = None
    if not isinstance(value, list):
        raise ChannelError("corrupt_state", f"the stored {what} is malformed")
    return value


@dataclass(slots=True)
class _Record:
    """One channel as this node holds it (``channel.<topic hex>``)."""

    ck: bytes
    secret: bytes
    title: str
    relays: list[str]
    me: SigningKey
    owner: SigningKey | None = None
    seq: int = 0
    desc: bytes | None = None
    cursors: dict[str, int] = field(default_factory=dict)
    seen: dict[bytes, tuple[int, list[int]]] = field(default_factory=dict)
    refused: int = 0

    @property
    def descriptor(self) -> ChannelDescriptor | None:
        return None if self.desc is None else ChannelDescriptor.from_bytes(self.desc)

    def allows(self, publisher: bytes) -> bool:
        desc = self.descriptor
        return publisher == self.ck or (desc is not None and desc.allows(publisher))

    def encode(self) -> bytes:
        value: dict[str, object] = {
            "ck": self.ck, "cs": self.secret, "t": self.title, "r": self.relays,
            "me": self.me.to_bytes(), "q": self.seq, "cur": sorted(self.cursors.items()),
            "pub": sorted([pk, hi, gaps] for pk, (hi, gaps) in self.seen.items()),
            "rej": self.refused,
        }  # fmt: skip
        if self.owner is not None:
            value["sk"] = self.owner.to_bytes()
        if self.desc is not None:
            value["d"] = self.desc
        return canonical_encode(value)

    @classmethod
    def decode(cls, data: bytes) -> _Record:
        try:
            f = Fields(canonical_decode(data, _LIMITS), "channel", _RECORD)
            owner = SigningKey.from_bytes(f.get_bytes("sk", size=32)) if f.has("sk") else None
            return cls(
                f.get_bytes("ck", size=32), f.get_bytes("cs", size=32),
                f.get_str("t", max_len=MAX_TITLE), [str(r) for r in f.get_list("r")],
                SigningKey.from_bytes(f.get_bytes("me", size=32)), owner, f.get_int("q"),
                f.get_bytes("d") if f.has("d") else None,
                {str(r): int(s) for r, s in f.get_list("cur")},
                {bytes(k): (int(hi), [int(g) for g in gs]) for k, hi, gs in f.get_list("pub")},
                f.get_int("rej"),
            )  # fmt: skip
        except (DchatError, ValueError, TypeError):
            raise ChannelError("corrupt_state", "the stored channel is malformed") from None


class Channels:
    """The broadcast channels of one user node (see the module docstring)."""

    def __init__(self, store: UserStore) -> None:
        self._store = store

    # -- stored state ---------------------------------------------------------------

    def _ids(self) -> list[bytes]:
        return [bytes(t) for t in _load(self._store.get_state(_INDEX), "channel index")]

    def _get(self, topic: bytes) -> _Record | None:
        data = self._store.get_state(f"channel.{topic.hex()}")
        return None if data is None else _Record.decode(data)

    def _put(self, topic: bytes, record: _Record) -> None:
        self._store.put_state(f"channel.{topic.hex()}", record.encode())
        ids = self._ids()
        if topic not in ids:
            self._store.put_state(_INDEX, canonical_encode([*ids, topic]))

    def _log(self, topic: bytes) -> list[list[Any]]:
        return _load(self._store.get_state(f"channel.log.{topic.hex()}"), "channel log")

    def _uploads(self) -> list[list[Any]]:
        return _load(self._store.get_state(_UPLOADS), "channel uploads")

    def find(self, ref: str) -> tuple[bytes, _Record]:
        """A channel by id (hex, or a unique prefix of 8+ digits) or exact title."""
        found = []
        for topic in self._ids():
            record = self._get(topic)
            hex_id = topic.hex()
            if record is not None and (
                ref == hex_id or (len(ref) >= 8 and hex_id.startswith(ref)) or ref == record.title
            ):
                found.append((topic, record))
        if len(found) != 1:
            why = "no channel" if not found else "more than one channel"
            raise ChannelError("unknown_channel", f"{why} matches {ref!r}")
        return found[0]

    # -- our actions ----------------------------------------------------------------

    def create(self, title: str, relays: list[str], *, now: float) -> dict[str, object]:
        """A new channel we own: its id and invite link."""
        _check(title, relays)
        key = SigningKey.generate()
        record = _Record(
            key.public_key.to_bytes(), os.urandom(32), title, list(relays), key, owner=key
        )
        topic = topic_of(record.ck)
        with self._store.transaction():
            self._put(topic, record)
            self._event("channel_update", topic, now, op="create", title=title)
        return {"channel_id": topic.hex(), "link": _link(record)}

    def link(self, ref: str) -> str:
        """The invite link of a channel (readers only: it grants no right to publish)."""
        return _link(self.find(ref)[1])

    def subscribe(self, text: str, *, now: float) -> str:
        """Follow the channel of an invite link; returns its id (the same again: a no-op)."""
        link = ChannelLink.decode(text)
        topic = topic_of(link.channel_key)
        with self._store.transaction():
            if self._get(topic) is None:
                me = SigningKey.generate()  # ours, to publish with if the owner lists it
                record = _Record(link.channel_key, link.secret, link.title, list(link.relays), me)
                self._put(topic, record)
                self._event("channel_update", topic, now, op="subscribe", title=link.title)
        return topic.hex()

    def unsubscribe(self, ref: str, *, now: float) -> str:
        """Stop following (or drop our own) channel: its state, posts and pending uploads."""
        topic, _ = self.find(ref)
        with self._store.transaction():
            self._store.delete_state(f"channel.{topic.hex()}")
            self._store.delete_state(f"channel.log.{topic.hex()}")
            self._store.put_state(_INDEX, canonical_encode([t for t in self._ids() if t != topic]))
            kept = [u for u in self._uploads() if u[0] != topic]
            self._store.put_state(_UPLOADS, canonical_encode(kept))
            self._event("channel_update", topic, now, op="unsubscribe")
        return topic.hex()

    def synced(self, links: Mapping[str, object], *, now: float) -> bool:
        """Follow what our other devices follow: ``{channel id: link, "" once dropped}``.

        A channel we own is never dropped this way (its key lives only here).
        Returns whether anything changed.
        """
        changed = False
        held = {topic.hex(): self._get(topic) for topic in self._ids()}
        for cid, link in links.items():
            record = held.get(cid)
            if isinstance(link, str) and link and cid not in held:
                with contextlib.suppress(ChannelError):  # a bad link changes nothing
                    changed |= self.subscribe(link, now=now) == cid
            elif link == "" and record is not None and record.owner is None:
                self.unsubscribe(cid, now=now)
                changed = True
        return changed

    def post(self, ref: str, text: str, *, now: float) -> str:
        """Encrypt and sign ``text`` once, queue it for each relay; returns the post id (hex)."""
        topic, record = self.find(ref)
        if not record.allows(record.me.public_key.to_bytes()):
            raise ChannelError("not_publisher", "the channel does not list our key as a publisher")
        with self._store.transaction():
            return self._post(topic, record, text, now)

    def _post(self, topic: bytes, record: _Record, text: str, now: float) -> str:
        record.seq += 1
        pk = record.me.public_key.to_bytes()
        body = seal_body(record.secret, topic, pk, record.seq, text)
        post = ChannelPost.sign(record.me, topic, record.seq, int(now * 1000), body)
        self._remember(record, pk, record.seq)
        self._put(topic, record)
        uploads = [*self._uploads(), [topic, post.to_bytes(), record.desc, list(record.relays)]]
        self._store.put_state(_UPLOADS, canonical_encode(uploads))
        self._keep(topic, [post.post_id.hex(), pk.hex(), record.seq, int(now * 1000), text, "out"])
        detail = {"publisher": pk.hex(), "q": record.seq, "text": text, "out": True}
        self._event("channel_post", topic, now, **detail)
        return post.post_id.hex()

    def add_publisher(self, ref: str, publisher: str, *, now: float) -> int:
        """List ``publisher`` (an Ed25519 key, hex) in our channel's descriptor; its version.

        The change is announced in a post of ours, which carries the new
        descriptor to the relays (and so to the new publisher's node).
        """
        topic, record = self.find(ref)
        if record.owner is None:
            raise ChannelError("not_owner", "only the channel's creator lists publishers")
        old = record.descriptor
        pubs, version = ((), 1) if old is None else (old.publishers, old.version + 1)
        try:
            pk = bytes.fromhex(publisher)
            listed = pubs if pk in pubs else (*pubs, pk)
            desc = ChannelDescriptor.sign(record.owner, version, listed)
        except (ValueError, ChannelRecordError) as exc:
            raise ChannelError("bad_key", f"not a publisher key: {exc}") from None
        record.desc = desc.to_bytes()
        with self._store.transaction():
            self._post(topic, record, f"added a publisher: {pk.hex()[:16]}", now)
        return desc.version

    # -- uploads ------------------------------------------------------------------------

    def pending(self) -> list[tuple[bytes, bytes, bytes | None, str]]:
        """Posts not yet on a relay: ``(topic, post, descriptor, relay)``, oldest first."""
        return [(u[0], u[1], u[2], str(r)) for u in self._uploads() for r in u[3]]

    def uploaded(self, post: bytes, relay: str) -> None:
        """``relay`` holds ``post`` (it answered the upload)."""
        uploads = []
        for u in self._uploads():
            if u[1] == post:
                u[3] = [r for r in u[3] if r != relay]
            if u[3]:
                uploads.append(u)
        self._store.put_state(_UPLOADS, canonical_encode(uploads))

    # -- receiving ------------------------------------------------------------------------

    def follows(self) -> list[tuple[bytes, str, int, int]]:
        """What to read: ``(topic, relay, cursor, descriptor version)`` per channel and relay."""
        rows = []
        for topic in self._ids():
            record = self._get(topic)
            if record is not None:
                desc = record.descriptor
                dn = 0 if desc is None else desc.version
                rows += [(topic, r, record.cursors.get(r, 0), dn) for r in record.relays]
        return rows

    def receive(
        self,
        topic: bytes,
        relay: str,
        items: list[tuple[int, bytes]],
        desc: bytes | None,
        *,
        now: float,
    ) -> int:
        """Take a relay's posts (after our cursor there); returns how many were new."""
        with self._store.transaction():
            record = self._get(topic)
            if record is None:
                return 0
            if desc is not None:
                self._adopt(record, desc)
            rows = [row for _, post in items if (row := self._one(topic, record, post, now))]
            record.cursors[relay] = max([record.cursors.get(relay, 0), *(s for s, _ in items)])
            self._put(topic, record)
            if rows:
                self._keep(topic, *rows)  # one write of the log per batch
        return len(rows)

    @staticmethod
    def _adopt(record: _Record, data: bytes) -> None:
        try:
            desc = ChannelDescriptor.from_bytes(data)
        except ChannelRecordError:
            record.refused += 1
            return
        held = record.descriptor
        if desc.channel_key == record.ck and (held is None or desc.version > held.version):
            record.desc = data

    def _one(self, topic: bytes, record: _Record, data: bytes, now: float) -> list[object]:
        """A received post's log row if it is new and valid, else ``[]`` (refusals counted)."""
        try:
            post = ChannelPost.from_bytes(data)
            if post.topic != topic or not record.allows(post.publisher):
                raise ChannelError("forged", "not a post of this channel")
            hi, gaps = record.seen.get(post.publisher, (0, []))
            if post.seq <= hi and post.seq not in gaps:
                if self._known(topic, post.publisher, post.seq) not in (None, post.post_id.hex()):
                    raise ChannelError("replayed", "another post has this counter")
                return []  # the same post again (another relay, a re-read)
            text = open_body(record.secret, topic, post.publisher, post.seq, post.body)
        except (ChannelRecordError, ChannelError):
            record.refused += 1
            return []
        self._remember(record, post.publisher, post.seq)
        detail = {"publisher": post.publisher.hex(), "q": post.seq, "text": text, "out": False}
        self._event("channel_post", topic, now, **detail)
        return [post.post_id.hex(), post.publisher.hex(), post.seq, post.time_ms, text, "in"]

    @staticmethod
    def _remember(record: _Record, publisher: bytes, seq: int) -> None:
        """Note ``publisher``'s counter ``seq``: the ones skipped over are gaps until they come."""
        hi, gaps = record.seen.get(publisher, (0, []))
        if seq > hi:
            gaps, hi = [*gaps, *range(max(hi + 1, seq - MAX_GAPS), seq)][-MAX_GAPS:], seq
        else:
            gaps = [g for g in gaps if g != seq]
        record.seen[publisher] = (hi, gaps)

    def _known(self, topic: bytes, publisher: bytes, seq: int) -> str | None:
        for row in self._log(topic):
            if row[1] == publisher.hex() and row[2] == seq:
                return str(row[0])
        return None

    def _keep(self, topic: bytes, *rows: list[object]) -> None:
        log = [*self._log(topic), *rows][-MAX_CHANNEL_LOG:]
        self._store.put_state(f"channel.log.{topic.hex()}", canonical_encode(log))

    def _event(self, kind: str, topic: bytes, now: float, **detail: object) -> None:
        self._store.log_event(kind, {"channel": topic.hex(), **detail}, now)

    # -- reading --------------------------------------------------------------------------

    def listing(self) -> list[dict[str, object]]:
        """Every channel: id, title, role, relays, posts kept."""
        rows = []
        for topic in self._ids():
            record = self._get(topic)
            if record is not None:
                rows.append(self._summary(topic, record))
        return rows

    def _summary(self, topic: bytes, record: _Record) -> dict[str, object]:
        if record.owner is not None:
            role = "owner"
        else:
            role = "publisher" if record.allows(record.me.public_key.to_bytes()) else "subscriber"
        return {
            "channel_id": topic.hex(),
            "title": record.title,
            "role": role,
            "relays": list(record.relays),
            "posts": len(self._log(topic)),
        }

    def show(self, ref: str) -> dict[str, object]:
        """One channel: its summary, keys, publishers, gaps and refused posts."""
        topic, record = self.find(ref)
        desc = record.descriptor
        return {
            **self._summary(topic, record),
            "channel_key": record.ck.hex(),
            "publisher_key": record.me.public_key.to_bytes().hex(),
            "publishers": [p.hex() for p in desc.publishers] if desc else [],
            "gaps": sum(len(gaps) for _, gaps in record.seen.values()),
            "refused": record.refused,
        }

    def links(self) -> dict[str, str]:
        """Every channel's invite link, by id (what our other devices should follow)."""
        held = ((topic, self._get(topic)) for topic in self._ids())
        return {topic.hex(): _link(record) for topic, record in held if record is not None}

    def posts(self, ref: str, limit: int = 100) -> list[dict[str, object]]:
        """The newest ``limit`` posts, oldest first."""
        topic, _ = self.find(ref)
        keys = ("post_id", "publisher", "q", "ms", "text", "dir")
        return [dict(zip(keys, row, strict=True)) for row in self._log(topic)[-limit:]]


def _check(title: str, relays: list[str]) -> None:
    if not 0 < len(title) <= MAX_TITLE:
        raise ChannelError("bad_title", f"a title is 1 to {MAX_TITLE} characters")
    if not 0 < len(relays) <= MAX_RELAYS:
        raise ChannelError("no_relays", f"a channel needs 1 to {MAX_RELAYS} relays")


def _link(record: _Record) -> str:
    return ChannelLink(record.ck, record.secret, record.title, tuple(record.relays)).encode()
