"""Serving the relay protocol on links, in trio, around the sans-IO :class:`RelayServer`.

Theory of operation
-------------------
:class:`RelayHost` serves each accepted link in its own task: it reads one
request, has the server answer it in the caller's worker (``run``: the relay
node runs it in its database thread, inside one transaction, so a
``put_many`` costs one commit and a reply always follows its commit), and
sends the reply. Requests on one link are served one at a time, in order.

A ``pull`` that finds its mailbox empty is *parked*: the task holds the
reply until an envelope for that mailbox is stored or the pull's wait ends,
then asks the server again (:meth:`RelayServer.resume`). Wake-ups cannot be
lost: each mailbox with an open owner link has a version, bumped after every
commit that stored something in it (``RelayReply.notify``); the task notes
the version *before* the server looks at the mailbox and parks only while
the version is unchanged. A store that committed before the pull looked is
in the pull's answer; one that commits after it bumps the version after the
pull noted it, so the pull does not sleep through it. Versions are kept only
for mailboxes whose owner has a link open.

A reply that is an error ends the link; other links are unaffected. A link
that sends nothing for ``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import MailboxId

from ._errors import LinkClosedError, RelayProtocolError
from ._relay import RelayError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._relay import RelayPull
    from ._relay_server import RelayReply, RelayServer
    from ._trio import Link

__all__ = ("RelayHost",)

_log = logging.getLogger("dchat.relay")
IDLE_TIMEOUT: Final = 300.0


class _Watch:
    """The version of one mailbox whose owner has links open, and the event of its next bump."""

    __slots__ = ("event", "links", "version")

    def __init__(self) -> None:
        self.version = 0
        self.links = 0
        self.event = trio.Event()


class RelayHost:
    """Serves :class:`RelayServer` on links.

    Args:
        server: The sans-IO relay server.
        run: Runs a call (``server.handle`` or ``server.resume`` with its
            arguments bound) where the server's store may be used, e.g. in the
            database worker inside one transaction, and returns its result.
        now: The wall clock (seconds since the epoch) for stored entries.
        idle_timeout: Close a link silent this long.
    """

    def __init__(
        self,
        server: RelayServer,
        run: Callable[[Callable[[], RelayReply]], Awaitable[RelayReply]],
        now: Callable[[], float],
        *,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.server = server
        self._run = run
        self._now = now
        self._idle = idle_timeout
        self._watched: dict[bytes, _Watch] = {}
        self.parked = 0
        """Pulls waiting for mail right now."""

    async def handle(self, link: Link) -> None:
        """Serve requests on ``link`` until it closes, idles out or misbehaves."""
        owner = bytes(MailboxId.derive(link.peer_key.to_bytes()))
        watch = self._watched.setdefault(owner, _Watch())
        watch.links += 1
        try:
            await self._serve(link, owner, watch)
        finally:
            watch.links -= 1
            if watch.links == 0:
                del self._watched[owner]

    async def _serve(self, link: Link, owner: bytes, watch: _Watch) -> None:
        while True:
            try:
                data = await link.receive(timeout=self._idle)
            except LinkClosedError:
                return
            seen = watch.version
            reply = await self._run(functools.partial(self.server.handle, owner, data, self._now()))
            self._wake(reply.notify)
            if reply.park is not None:
                reply = await self._parked(reply.park, watch, seen)
            await link.send(reply.data)
            if reply.close:
                assert isinstance(reply.message, RelayError)
                raise RelayProtocolError(f"request refused: {reply.message.code}")
            _log.debug("relay request served", extra={"reply": type(reply.message).__name__})

    async def _parked(self, pull: RelayPull, watch: _Watch, seen: int) -> RelayReply:
        self.parked += 1
        try:
            with trio.move_on_after(pull.wait_ms / 1000):
                while watch.version == seen:
                    await watch.event.wait()
        finally:
            self.parked -= 1
        return await self._run(functools.partial(self.server.resume, pull))

    def _wake(self, mailboxes: tuple[bytes, ...]) -> None:
        for mailbox in mailboxes:
            watch = self._watched.get(mailbox)
            if watch is not None:
                watch.version += 1
                watch.event.set()
                watch.event = trio.Event()
