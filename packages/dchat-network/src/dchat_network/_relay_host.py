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
then asks the server again (:meth:`RelayServer.resume`, which only reads: it
runs in ``read`` when given, so it need not wait for a commit's turn). Wake-ups cannot be
lost: the versions are kept by the sans-IO :class:`PullWakeups` (shared with
the simulator's relay): each mailbox with an open owner link has one, bumped
after every commit that stored something in it (``RelayReply.notify``); the
task notes the version *before* the server looks at the mailbox and parks
only while the version is unchanged. On top of it, this host keeps one trio
event per watched mailbox, set and replaced at each bump.

A reply that is an error ends the link; other links are unaffected. A link
that sends nothing for ``idle_timeout`` seconds is closed.

Each request and each parked pull's answer runs in a ``dchat.relay.request``
or ``dchat.relay.push`` span when the process traces (:mod:`.tracing`).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import MailboxId

from . import tracing
from ._errors import LinkClosedError, RelayProtocolError
from ._link_stats import LinkStats
from ._relay import RelayError
from ._relay_wakeups import PullWakeups

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from opentelemetry.trace import Span

    from ._relay import RelayPull
    from ._relay_server import RelayReply, RelayServer
    from ._trio import Link

__all__ = ("RelayHost",)

_log = logging.getLogger("dchat.relay")
IDLE_TIMEOUT: Final = 300.0


class RelayHost:
    """Serves :class:`RelayServer` on links.

    Args:
        server: The sans-IO relay server.
        run: Runs a call (``server.handle`` or ``server.resume`` with its
            arguments bound) where the server's store may be used, e.g. in the
            database worker inside one transaction, and returns its result.
        now: The wall clock (seconds since the epoch) for stored entries.
        idle_timeout: Close a link silent this long.
        read: Like ``run``, for a request that only reads (a parked pull's
            answer); default ``run``.
    """

    def __init__(
        self,
        server: RelayServer,
        run: Callable[[Callable[[], RelayReply]], Awaitable[RelayReply]],
        now: Callable[[], float],
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        read: Callable[[Callable[[], RelayReply]], Awaitable[RelayReply]] | None = None,
    ) -> None:
        self.server = server
        self._run = run
        self._read = read or run
        self._now = now
        self._idle = idle_timeout
        self._wakeups = PullWakeups()
        self._events: dict[bytes, trio.Event] = {}  # of each watched mailbox's next bump
        self.parked = 0
        """Pulls waiting for mail right now."""
        self.links = LinkStats()
        """The listener's counters (pass it to :func:`serve_links` as ``stats``)."""

    async def handle(self, link: Link) -> None:
        """Serve requests on ``link`` until it closes, idles out or misbehaves."""
        owner = bytes(MailboxId.derive(link.peer_key.to_bytes()))
        self._wakeups.opened(owner)
        self._events.setdefault(owner, trio.Event())
        try:
            await self._serve(link, owner)
        finally:
            if self._wakeups.closed(owner):
                del self._events[owner]

    async def _serve(self, link: Link, owner: bytes) -> None:
        while True:
            try:
                data = await link.receive(timeout=self._idle)
            except LinkClosedError:
                return
            seen = self._wakeups.version(owner)
            call = functools.partial(self.server.handle, owner, data, self._now())
            with tracing.active.span("dchat.relay.request") as span:
                reply = await self._run(call)
                if span is not None:
                    _traced(span, reply)
            self._wake(reply.notify)
            if reply.park is not None:
                reply = await self._parked(reply.park, owner, seen)
            await link.send(reply.data)
            if reply.close:
                assert isinstance(reply.message, RelayError)
                raise RelayProtocolError(f"request refused: {reply.message.code}")
            _log.debug("relay request served", extra={"reply": type(reply.message).__name__})

    async def _parked(self, pull: RelayPull, owner: bytes, seen: int) -> RelayReply:
        self.parked += 1
        try:
            with trio.move_on_after(pull.wait_ms / 1000):
                while not self._wakeups.changed(owner, seen):
                    await self._events[owner].wait()
        finally:
            self.parked -= 1
        with tracing.active.span("dchat.relay.push") as span:
            reply = await self._read(functools.partial(self.server.resume, pull))
            if span is not None:
                _traced(span, reply)
        return reply

    def _wake(self, mailboxes: tuple[bytes, ...]) -> None:
        for mailbox in self._wakeups.bump(mailboxes):
            self._events[mailbox].set()
            self._events[mailbox] = trio.Event()


def _traced(span: Span, reply: RelayReply) -> None:
    """A relay step's span gets the reply's kind and size (never a mailbox or an address)."""
    span.set_attribute("dchat.relay.reply", type(reply.message).__name__)
    span.set_attribute("dchat.relay.reply_bytes", len(reply.data))
    span.set_attribute("dchat.relay.mailboxes_woken", len(reply.notify))
