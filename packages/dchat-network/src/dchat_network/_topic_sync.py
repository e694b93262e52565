"""A user node's broadcast channels on the relays, in trio: uploads and standing topic reads.

Theory of operation
-------------------
:class:`TopicSync` is the I/O half of a node's channels; the decisions are
the caller's (``dchat_messaging``'s channel book), reached through four
callables that run in the caller's database worker:

* ``pending()`` lists the posts not yet on a relay, ``(topic, post,
  descriptor, relay)``; each is uploaded once to its relay over the pooled
  deposit links (:meth:`RelayPool.publish`) and ``uploaded(post, relay)``
  records it. One post costs one upload per relay, whatever the number of
  readers. What could not be uploaded (a relay down, busy or refusing) stays
  pending and is tried again after a backoff, or at the next wake-up.
* ``follows()`` lists what to read, ``(topic, relay, cursor, descriptor
  version)``. Each pair of topic and relay gets one standing link of its own
  (a fresh random key: a reader proves nothing and the relay cannot tie one
  subscription to another) that keeps one read held (``tp_read`` with a
  wait), so each post is pushed as it is stored. ``receive(topic, relay,
  items, descriptor)`` takes every answer; the reader goes on from the
  newest sequence number it was handed, and reopens from the stored cursor
  after a failure.

:meth:`TopicSync.wake` re-reads both lists (after a post, a subscription or
an unsubscription).
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import DchatError, RelayAddress
from dchat_crypto.hazmat import ChannelDescriptor, ChannelRecordError

from ._relay_links import ReconnectPolicy
from ._session import relay_session

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._relay_links import RelayPool

__all__ = ("TopicSync",)

_log = logging.getLogger("dchat.channels")
READ_WAIT: Final = 25.0
"""How long a topic read is held by the relay (its cap is 30 s)."""

Upload = tuple[bytes, bytes, bytes | None, str]
Follow = tuple[bytes, str, int, int]


class TopicSync:
    """Uploads a node's channel posts and keeps its topic reads standing (module docstring)."""

    def __init__(
        self,
        pool: RelayPool,
        *,
        pending: Callable[[], Awaitable[list[Upload]]],
        uploaded: Callable[[bytes, str], Awaitable[None]],
        follows: Callable[[], Awaitable[list[Follow]]],
        receive: Callable[[bytes, str, list[tuple[int, bytes]], bytes | None], Awaitable[None]],
        policy: ReconnectPolicy | None = None,
    ) -> None:
        self._pool = pool
        self._pending, self._uploaded = pending, uploaded
        self._follows, self._receive = follows, receive
        self._policy = policy or ReconnectPolicy()
        self._rng = random.Random()
        self._wake = trio.Event()
        self._readers: dict[tuple[bytes, str], trio.CancelScope] = {}
        self.uploads = 0
        """Posts uploaded (one per post and relay)."""
        self.received = 0
        """Posts handed to ``receive`` (a post from two relays counts twice)."""

    def wake(self) -> None:
        """Re-read what to upload and what to follow."""
        self._wake.set()

    async def run(self) -> None:
        """Upload and follow until cancelled."""
        async with trio.open_nursery() as nursery:
            while True:
                self._wake = trio.Event()  # armed before reading: no wake-up is lost
                self._reconcile(nursery, await self._follows())
                failed = await self._upload_all()
                with trio.move_on_after(self._policy.delay(failed, self._rng) if failed else 3600):
                    await self._wake.wait()

    async def _upload_all(self) -> int:
        """Upload every pending post; how many could not be (kept for a retry)."""
        failed = 0
        for topic, post, desc, relay in await self._pending():
            try:
                address = RelayAddress.parse(relay)
                with trio.fail_after(30.0):
                    await self._pool.publish(address.host, address.port, topic, post, desc)
            except (DchatError, ValueError, trio.TooSlowError) as exc:
                failed += 1
                _log.info("channel post not uploaded to %s (%s)", relay, type(exc).__name__)
                continue
            self.uploads += 1
            await self._uploaded(post, relay)
        return failed

    def _reconcile(self, nursery: trio.Nursery, follows: list[Follow]) -> None:
        wanted = {(topic, relay): (cursor, dn) for topic, relay, cursor, dn in follows}
        for key in [k for k in self._readers if k not in wanted]:
            self._readers.pop(key).cancel()
        for key, (cursor, dn) in wanted.items():
            if key not in self._readers:
                scope = self._readers[key] = trio.CancelScope()
                nursery.start_soon(self._read, scope, key[0], key[1], cursor, dn)

    async def _read(
        self, scope: trio.CancelScope, topic: bytes, relay: str, cursor: int, dn: int
    ) -> None:
        failures, at = 0, [cursor, dn]  # where the reads are: kept across reconnections
        with scope:
            while True:
                try:
                    await self._standing(topic, relay, at)
                except (DchatError, ValueError, trio.TooSlowError) as exc:
                    failures += 1
                    _log.info("channel read at %s failed (%s)", relay, type(exc).__name__)
                    await trio.sleep(self._policy.delay(failures, self._rng))

    async def _standing(self, topic: bytes, relay: str, at: list[int]) -> None:
        """One link's reads, each held until a post comes (``at``: cursor, descriptor version)."""
        address = RelayAddress.parse(relay)
        async with relay_session(address.host, address.port) as session:  # a fresh random key
            while True:
                answer = await session.read_topic(topic, at[0], wait=READ_WAIT, desc=at[1])
                if answer.items or answer.desc is not None:
                    await self._receive(topic, relay, list(answer.items), answer.desc)
                    self.received += len(answer.items)
                at[0] = max([at[0], *(seq for seq, _ in answer.items)])
                if answer.desc is not None:
                    try:  # not asked for again (a forged one was counted by ``receive``)
                        at[1] = max(at[1], ChannelDescriptor.from_bytes(answer.desc).version)
                    except ChannelRecordError:
                        at[1] += 1
