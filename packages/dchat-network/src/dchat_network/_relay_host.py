"""Serving the relay protocol on links, in trio, around the sans-IO :class:`RelayServer`.

Theory of operation
-------------------
:class:`RelayHost` serves each accepted link in its own task: it reads one
request, has the server triage it in the event loop
(:meth:`RelayServer.triage`: decode it, charge its rate; a malformed or
over-rate request is answered there, at no cost to the store), then answer
it in the caller's worker (``run``: the relay node runs it in its database
thread, inside one transaction, so a ``put_many`` costs one commit and a
reply always follows its commit), and sends the reply. Requests on one link
are served one at a time, in order.

Which requests the worker gets, and when, is the sans-IO
:class:`~dchat_network.lowlevel.WorkQueue` (:attr:`RelayHost.queue`): at
most :data:`WORK_SLOTS` at once, of them at most ``anonymous_work`` (a
limit) anonymous; authorised work (put-token deposits, the links of
mailboxes that have put tokens) first, then anonymous work, the sources
taking turns within each. A flood of anonymous requests therefore waits
in this queue instead of in the worker's, and an authorised request is
never behind more than ``anonymous_work`` of them. In the worker, anonymous
work may run in a lane of its own (``run_later``; the relay node's group
commit keeps it out of authorised work's transactions and commits it only
when no authorised work waits), so an authorised deposit's commit never
carries strangers' envelopes and waits at most for one small one of theirs.

A topic read (``tp_read`` with a ``wait``) that finds nothing new is parked
the same way, on its topic: the host watches the topic while the read is
held, and a stored post (``notify`` names its topic) wakes it. So a
subscriber gets each post pushed on its open link, like a mailbox owner.

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
that sends nothing for ``idle_timeout`` seconds (its first request: for
``first_request_timeout``) is told so (an ``error`` ``idle`` with ``rid`` 0,
which :class:`RelayClient` reads as the link closing) and closed.

Abuse limits: the host is the listener's :class:`ConnectionGate`
(:func:`serve_links` ``gate=host``), which asks its :class:`RelayGuard` to
admit each connection; a connection over a cap is refused before its
handshake (a refusal frame with the reason, ``connections``,
``source_connections`` or ``source_rate``, and the retry-after; the dialer raises
:class:`RelayBusyError`), so refusing costs the relay no public-key work. Each
admitted link gets a :class:`PutBudget` (its own buckets and its source's),
which the server charges for deposits, in the worker that runs it. After a
``busy`` answer the host reads nothing more from that link until the
retry-after has passed, so a client that ignores backpressure is slowed by
TCP flow control rather than served refusals as fast as it can ask.

Each request and each parked pull's answer runs in a ``dchat.relay.request``
or ``dchat.relay.push`` span when the process traces (:mod:`.tracing`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import DchatError, MailboxId

from . import tracing
from ._errors import LinkClosedError, LinkTimeoutError, RelayProtocolError
from ._link_stats import LinkStats
from ._relay import RelayBusy, RelayError, decode_relay_message, encode_relay_message
from ._relay_limits import RelayGuard, RelayLimits, retry_ms, source_of
from ._relay_observe import ObserveLog, digest, named_mailboxes
from ._relay_onion_host import OnionHosting
from ._relay_onion_wire import OnionFetchPut, OnionKeyQuery, OnionPut
from ._relay_queue import WorkQueue
from ._relay_server import RelayReply, RelayWork
from ._relay_token_wire import TokenBuy
from ._relay_topic_wire import TopicRead
from ._relay_wakeups import PullWakeups
from ._token_shop import decode_purchase, purchase_ref
from ._trio import serve_links

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from opentelemetry.trace import Span

    from dchat_crypto import SigningKey

    from ._relay import RelayPull
    from ._relay_server import RelayServer
    from ._trio import Link

__all__ = ("RelayHost",)

_log = logging.getLogger("dchat.relay")
IDLE_TIMEOUT: Final = 300.0
FIRST_REQUEST_TIMEOUT: Final = 20.0
WORK_SLOTS: Final = 64
"""The most requests handed to the worker at once (one group commit's worth)."""


class RelayHost(OnionHosting):
    """Serves :class:`RelayServer` on links (and peels onions: :class:`OnionHosting`).

    Args:
        server: The sans-IO relay server.
        run: Runs a call (``server.serve`` with its arguments bound) where the
            server's store may be used, e.g. in the database worker inside one
            transaction, and returns its result.
        now: The wall clock (seconds since the epoch) for stored entries.
        idle_timeout: Close a link silent this long (default: the limits', else 300 s).
        read: Like ``run``, for a request that only reads (a parked pull's
            answer); default ``run``.
        limits: The abuse limits (connection caps, rates); None: none (the
            work queue's ``anonymous_work`` is then the default's).
        first_request_timeout: Close a link that sends no first request this long
            (default: the limits', else 20 s).
        run_later: Like ``run``, for anonymous work, e.g. in a background lane
            that never commits it together with authorised work (the relay node's
            ``AsyncStore.run_grouped_later``); default ``run``.
    """

    def __init__(
        self,
        server: RelayServer,
        run: Callable[[Callable[[], RelayReply]], Awaitable[RelayReply]],
        now: Callable[[], float],
        *,
        idle_timeout: float | None = None,
        read: Callable[[Callable[[], RelayReply]], Awaitable[RelayReply]] | None = None,
        limits: RelayLimits | None = None,
        first_request_timeout: float | None = None,
        run_later: Callable[[Callable[[], RelayReply]], Awaitable[RelayReply]] | None = None,
    ) -> None:
        self.server = server
        self.guard = RelayGuard(limits) if limits is not None else None
        """The connection caps and rate buckets (None: unlimited)."""
        self.limits = limits or RelayLimits(
            idle_timeout=IDLE_TIMEOUT, first_request_timeout=FIRST_REQUEST_TIMEOUT
        )
        self._first = first_request_timeout or self.limits.first_request_timeout
        self._run = run
        self._run_later = run_later or run
        self._read = read or run
        self._now = now
        self._idle = idle_timeout or self.limits.idle_timeout
        self.queue: WorkQueue[trio.Event] = WorkQueue(
            WORK_SLOTS, self.limits.anonymous_work or WORK_SLOTS
        )
        """Which requests the worker runs now (authorised first, sources in turn)."""
        self._wakeups = PullWakeups()
        self._events: dict[bytes, trio.Event] = {}  # of each watched mailbox's next bump
        self.parked = 0
        """Pulls waiting for mail right now."""
        self.links = LinkStats()
        """The listener's counters (pass it to :func:`serve_links` as ``stats``)."""
        log = self.limits.observe_log
        self.observer = ObserveLog(log, now) if log else None
        """The debug record of all this relay sees (``observe_log``; None: off)."""
        self.payments: Callable[[bytes], Awaitable[tuple[bytes, int] | None]] | None = None
        """Reads the proven currency-chain payment of a reference: ``(payee, amount)`` or None.

        Set with :attr:`RelayServer.tokens` to sell tokens (``tk_buy``); it may raise
        :class:`~dchat_core.DchatError` when the chain cannot be read.
        """

    async def serve(
        self,
        host: str,
        port: int,
        node_key: SigningKey,
        *,
        task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` and serve every link (:func:`serve_links` with this gate).

        ``node_key`` also answers validators' probes (:attr:`RelayServer.node_key`).
        """
        self.server.node_key = node_key
        self.start_onions(node_key)
        try:
            await serve_links(
                self.handle,
                host,
                port,
                node_key=node_key,
                handshake_timeout=self.limits.handshake_timeout,
                stats=self.links,
                gate=self,
                task_status=task_status,
            )
        finally:
            if self.observer is not None:
                self.observer.close()
            if self.forwarder is not None:
                with trio.CancelScope(shield=True):  # the next hops' links
                    await self.forwarder.aclose()

    def connect(self, address: str) -> str | None:
        """The :class:`ConnectionGate` check: admit a connection from ``address``?"""
        return None if self.guard is None else self.guard.connect(address, self._now())

    def retry_ms(self, address: str, verdict: str) -> int:
        """The :class:`ConnectionGate` wait asked of a refused connection."""
        assert self.guard is not None
        return retry_ms(self.guard.retry_after(address, verdict, self._now()))

    def disconnect(self, address: str, verdict: str | None) -> None:
        """The :class:`ConnectionGate` close: a connection :meth:`connect` answered ended."""
        if self.guard is not None:
            self.guard.disconnect(address, verdict, self._now())

    async def handle(self, link: Link) -> None:
        """Serve requests on ``link`` until it closes, idles out or misbehaves."""
        owner = bytes(MailboxId.derive(link.peer_key.to_bytes()))
        if self.observer is not None:
            self.observer.write("connect", peer=link.source, link=owner.hex()[:16])
        self._watch(owner)
        try:
            await self._serve(link, owner)
        finally:
            self._unwatch(owner)

    def _watch(self, key: bytes) -> None:
        """Watch a mailbox (its owner's link is open) or a topic (a read is held on it)."""
        self._wakeups.opened(key)
        self._events.setdefault(key, trio.Event())

    def _unwatch(self, key: bytes) -> None:
        if self._wakeups.closed(key):
            del self._events[key]

    async def _idle_out(self, link: Link, why: str) -> None:
        """Tell a silent link it is closed (best effort), and count it."""
        if self.guard is not None:
            self.guard.refusals[why] += 1
        error = RelayError(0, "idle", "closed after a silence")
        with contextlib.suppress(LinkClosedError):
            await link.send(encode_relay_message(error), timeout=5.0)

    async def _serve(self, link: Link, owner: bytes) -> None:
        budget = self.guard.budget(link.source, self._now()) if self.guard else None
        timeout, why = self._first, "first_request_timeout"
        while True:
            try:
                data = await link.receive(timeout=timeout)
            except LinkTimeoutError:
                await self._idle_out(link, why)
                return
            except LinkClosedError:
                return
            timeout, why = self._idle, "idle_timeout"
            now = self._now()
            with tracing.active.span("dchat.relay.request") as span:
                work = self.server.triage(owner, data, now, budget)
                if self.observer is not None:
                    self._observe(link.source, owner, data, work)
                # A topic read that may be held watches its topic, from before the server looks.
                key = _held_topic(work) or owner
                if key != owner:
                    self._watch(key)
                seen = self._wakeups.version(key)
                try:
                    if isinstance(work, RelayWork) and isinstance(
                        work.request, OnionKeyQuery | OnionPut | OnionFetchPut
                    ):
                        reply = await self.answer_onion(work.request, link.source, now)
                    elif isinstance(work, RelayWork) and isinstance(work.request, TokenBuy):
                        reply = await self._sell(work, link.source, now)
                    elif isinstance(work, RelayWork):
                        call = functools.partial(self.server.serve, owner, work.request, now)
                        reply = await self._in_turn(call, link.source, work.authorised)
                    else:
                        reply = work  # refused without a turn in the worker
                    if span is not None:
                        _traced(span, reply)
                    self._wake(reply.notify)
                    if reply.park is not None:
                        reply = await self._parked(reply.park, key, seen)
                finally:
                    if key != owner:
                        self._unwatch(key)
            await link.send(reply.data)
            if reply.close:
                assert isinstance(reply.message, RelayError)
                raise RelayProtocolError(f"request refused: {reply.message.code}")
            if isinstance(reply.message, RelayBusy) and reply.message.reason != "tokens":
                # Read nothing more from this link before its retry-after: a client
                # that ignores backpressure is paced by TCP instead of costing the
                # relay a decryption and a decode per refused request. (A spent
                # token budget refuses an owner's registration, not a deposit: its
                # mailbox link goes on.)
                await trio.sleep(min(reply.message.retry_ms / 1000, self._idle))
            _log.debug("relay request served", extra={"reply": type(reply.message).__name__})

    def _observe(
        self, source: str, owner: bytes, data: bytes, work: RelayReply | RelayWork
    ) -> None:
        """Record a request in the observe log (what this relay could keep about it)."""
        assert self.observer is not None
        request = work.request if isinstance(work, RelayWork) else work.message
        onion = request if isinstance(request, OnionPut | OnionFetchPut) else None
        packet = {"pkt": digest(onion.packet)} if onion is not None else {}
        self.observer.write(
            "request",
            peer=source,
            link=owner.hex()[:16],
            op=type(request).__name__,
            mb=named_mailboxes(request),
            size=len(data),
            digest=digest(data),
            **packet,
        )

    async def _sell(self, work: RelayWork, address: str, now: float) -> RelayReply:
        """A ``tk_buy``: read its payment from the chain here, then sell in the worker."""
        buy = work.request
        assert isinstance(buy, TokenBuy)
        paid: tuple[bytes, int] | None = None
        if self.payments is not None and self.server.tokens is not None:
            try:
                paid = await self.payments(purchase_ref(decode_purchase(buy.request)))
            except DchatError as exc:  # a malformed request, or the chain is unreachable
                code = getattr(exc, "code", None) or "chain_unreachable"
                error = RelayError(buy.rid, str(code), type(exc).__name__)
                return RelayReply(encode_relay_message(error), error, True)
        call = functools.partial(self.server.sell, buy, paid, now)
        return await self._in_turn(call, address, work.authorised)

    async def _in_turn(
        self, call: Callable[[], RelayReply], address: str, authorised: bool
    ) -> RelayReply:
        """Run ``call`` in the worker once :attr:`queue` gives it a slot."""
        wake = trio.Event()
        if not self.queue.arrive(wake, source_of(address), authorised):
            try:
                await wake.wait()
            except BaseException:
                if not self.queue.withdraw(wake):  # it was given a slot meanwhile: hand it on
                    self._hand_on(authorised)
                raise
        try:
            return await (self._run if authorised else self._run_later)(call)
        finally:
            self._hand_on(authorised)

    def _hand_on(self, authorised: bool) -> None:
        for wake in self.queue.finish(authorised):
            wake.set()

    async def _parked(self, pull: RelayPull | TopicRead, key: bytes, seen: int) -> RelayReply:
        self.parked += 1
        try:
            with trio.move_on_after(pull.wait_ms / 1000):
                while not self._wakeups.changed(key, seen):
                    await self._events[key].wait()
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


def _held_topic(work: RelayReply | RelayWork) -> bytes | None:
    """The topic of a read the server may hold, else None."""
    if isinstance(work, RelayWork) and isinstance(work.request, TopicRead):
        return work.request.topic if work.request.wait_ms > 0 else None
    return None


def _rid(data: bytes) -> int:
    """The request id of ``data`` if it parses, else 0 (for an answer that is not served)."""
    try:
        return int(getattr(decode_relay_message(data), "rid", 0))
    except RelayProtocolError:
        return 0
