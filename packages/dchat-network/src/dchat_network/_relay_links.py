"""A client's standing links to relays, in trio: one per owned mailbox, a pool for deposits.

Theory of operation
-------------------
:class:`MailboxLink` keeps one link open to the relay that holds a mailbox,
proven with the mailbox's key, and takes the mailbox's mail as the relay
pushes it: it sends a ``pull`` that the relay holds until mail arrives (or
``wait`` seconds pass), hands the batch to ``handle`` (which returns only
once every envelope in it is durably processed), and acknowledges the batch
in its next ``pull``. The handled entries are also owed a delivery receipt
signed with the mailbox key (:mod:`._receipts`), which the relay claims
rewards with: one receipt covers up to :data:`~dchat_network.lowlevel.MAX_IDS`
entries, given once that many are owed or :data:`RECEIPT_EVERY` seconds after
the oldest owed batch (a pull waits no longer than that while some are owed),
so a busy link signs and asks once per 64 envelopes, not once per batch, and
the next batch's pull never waits for a receipt's round trip. A relay that
keeps none (or refuses one) is not offered more; entries owed when a link
drops go unreceipted (the relay loses that reward, nothing else).
A crash or a lost link before that acknowledgement
means the batch is handed over again (receivers deduplicate); nothing is
ever lost. A link that fails is reopened after a backoff with jitter
(:class:`ReconnectPolicy`); its state (``connecting``, ``connected``,
``waiting``, ``stopped``) and last error are kept for status pages.

:class:`RelayPool` holds the links a client deposits envelopes and fetches
prekey bundles over: one per relay, reused, each proving a random key made
for that link (so deposits on one link are linkable to each other, as they
are by the connection's address anyway, but not to any mailbox). With
``unlinkable=True`` every request gets a link and key of its own instead
(a handshake per request: slower, but a relay cannot group deposits even by
link). A pooled link the relay dropped while idle is reopened once.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

import trio

from dchat_core import DchatError, InvalidRelayAddressError, MailboxId, NodeId, RelayAddress
from dchat_crypto import SigningKey
from dchat_privacy import ContactSecret

from . import tracing
from ._errors import LinkClosedError, RelayBusyError, RelayProtocolError
from ._put_auth import PowChallenge, PutAuthClient, auth_pow, solve_pow
from ._put_proofs import prove_deposits
from ._receipts import MAX_IDS, DeliveryReceipt
from ._relay_limits import entry_id_of
from ._session import RelaySession, relay_session
from ._trio import connect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

__all__ = ("MailboxLink", "ReconnectPolicy", "RelayPool", "links_state")

_log = logging.getLogger("dchat.links")
_R = TypeVar("_R")
RECEIPT_EVERY: Final = 1.0
"""Seconds the oldest owed delivery receipt may wait for more entries to cover."""
PULL_WAIT: Final = 20.0
"""How long the relay may hold a pull (seconds): the link's keep-alive period."""


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Wait ``base * 2**failures`` seconds, at most ``cap``, times U(0.5, 1), before redialling."""

    base: float = 0.2
    cap: float = 30.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (counting from 1)."""
        growth = float(2 ** min(max(failures - 1, 0), 16))
        return min(self.cap, self.base * growth) * rng.uniform(0.5, 1.0)


class MailboxLink:
    """Keeps a mailbox's link open and hands its mail to ``handle`` as it arrives.

    Args:
        host: The relay's host.
        port: The relay's link port.
        key: The mailbox's key (the link proves it; the mailbox is derived from it).
        handle: Called with each batch of ``(entry id, envelope)``; returns once
            all are durably processed. If it raises, the batch is not
            acknowledged and the link is reopened after a backoff.
        on_connect: Called with the session after each (re)connection, before
            the first pull (e.g. to publish prekeys).
        on_idle: Called with the session when a pull ended without mail.
        after_batch: Called with the session after each handled batch.
        expected_peer: The relay's pinned node id, if known.
        wait: How long a pull may be held (``None``: :data:`PULL_WAIT`; 0: never).
        policy: Backoff between reconnections.
        rng: Jitter source.
        on_state: Called with the new :attr:`state` each time it changes.
        receipts: Sign and send a delivery receipt for each handled batch.
    """

    def __init__(
        self,
        host: str,
        port: int,
        key: SigningKey,
        handle: Callable[[list[tuple[bytes, bytes]]], Awaitable[None]],
        *,
        on_connect: Callable[[RelaySession], Awaitable[None]] | None = None,
        on_idle: Callable[[RelaySession], Awaitable[None]] | None = None,
        after_batch: Callable[[RelaySession], Awaitable[None]] | None = None,
        expected_peer: NodeId | None = None,
        wait: float | None = PULL_WAIT,
        policy: ReconnectPolicy | None = None,
        rng: random.Random | None = None,
        on_state: Callable[[str], None] | None = None,
        receipts: bool = True,
    ) -> None:
        self.relay = f"{host}:{port}"
        self.receipts = receipts
        """Whether batches are receipted (turned off when the relay refuses a receipt)."""
        self.mailbox = bytes(MailboxId.derive(key.public_key.to_bytes()))
        self._dial = (host, port, key, expected_peer)
        self._handle, self._on_connect = handle, on_connect
        self._on_idle, self._after_batch = on_idle, after_batch
        self._wait = PULL_WAIT if wait is None else wait
        self._policy = policy or ReconnectPolicy()
        self._rng = rng or random.Random()
        self._cancel = trio.CancelScope()
        self._on_state = on_state
        self._state = "connecting"
        self.last_error: str | None = None
        self.failures = 0
        """Consecutive failed attempts (0 while connected)."""
        self.received = 0
        """Envelopes handed to ``handle``."""
        self.errors: Counter[str] = Counter()
        """Failed attempts (dial, handshake, or a link that broke), by error class."""

    async def run(self) -> None:
        """Keep the link up until :meth:`stop` (or cancellation)."""
        with self._cancel:
            while True:
                try:
                    await self._connected()
                except (DchatError, trio.TooSlowError) as exc:
                    self.failures += 1
                    self.last_error = type(exc).__name__
                    self.errors[self.last_error] += 1
                    self.state = "waiting"
                    delay = self._policy.delay(self.failures, self._rng)
                    if isinstance(exc, RelayBusyError):  # the relay said when to come back
                        delay = max(delay, exc.retry_after)
                    level = logging.WARNING if self.failures == 1 else logging.INFO
                    what = self.relay, self.last_error, delay
                    _log.log(level, "relay %s unreachable (%s); retrying in %.1f s", *what)
                    await trio.sleep(delay)
                    self.state = "connecting"
        self.state = "stopped"

    @property
    def state(self) -> str:
        """``connecting``, ``connected``, ``waiting`` (to retry) or ``stopped``."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        changed, self._state = value != self._state, value
        if changed and self._on_state is not None:
            self._on_state(value)

    def status(self) -> dict[str, object]:
        """The link's state for a status page (no mailbox id: it would name the owner)."""
        return {
            "relay": self.relay,
            "state": self.state,
            "failures": self.failures,
            "last_error": self.last_error,
            "received": self.received,
        }

    def stop(self) -> None:
        """Close the link and end :meth:`run`."""
        self._cancel.cancel()

    async def _connected(self) -> None:
        host, port, key, expected = self._dial
        async with relay_session(host, port, node_key=key, expected_peer=expected) as session:
            if self._on_connect is not None:
                await self._on_connect(session)
            self.state, self.failures = "connected", 0
            ack: list[bytes] = []
            owed: list[bytes] = []  # handled entries not yet in a receipt
            owed_since = 0.0
            while True:
                wait = self._wait
                if owed:
                    wait = min(wait, max(0.0, owed_since + RECEIPT_EVERY - trio.current_time()))
                batch = await session.pull(self.mailbox, ack, wait=wait)
                ack = [entry_id for entry_id, _ in batch]
                hook = self._on_idle
                if batch:
                    with tracing.active.span("dchat.receive") as span:
                        await self._handle(batch)
                        if span is not None:
                            span.set_attribute("dchat.envelopes", len(batch))
                    self.received += len(batch)
                    if self.receipts:
                        owed_since = owed_since if owed else trio.current_time()
                        owed += ack
                    hook = self._after_batch
                due = bool(owed) and trio.current_time() >= owed_since + RECEIPT_EVERY
                while self.receipts and (len(owed) >= MAX_IDS or (owed and due)):
                    await self._receipt(session, owed[:MAX_IDS])
                    del owed[:MAX_IDS]
                    owed_since = trio.current_time()
                if hook is not None:
                    await hook(session)

    async def _receipt(self, session: RelaySession, entry_ids: list[bytes]) -> None:
        relay = bytes(NodeId.derive(session.link.peer_key.to_bytes()))
        receipt = DeliveryReceipt.sign(self._dial[2], relay, entry_ids)
        try:
            kept = await session.send_receipt(receipt.to_bytes())
        except RelayProtocolError:
            self.receipts = False  # a relay that refuses receipts: the next link offers none
            raise
        self.receipts = kept > 0  # 0: this relay keeps none


def links_state(links: Iterable[MailboxLink], configured: bool) -> str:
    """One word for a client's mailbox links: what its status pages and events show.

    ``connected`` if any link is up; ``unreachable`` if there are links and
    none is up, or no relay is configured at all; ``connecting`` while the
    first links are being opened.
    """
    states = [link.state for link in links]
    if "connected" in states:
        return "connected"
    return "unreachable" if states or not configured else "connecting"


class RelayPool:
    """Links for deposits and bundle fetches, one per relay, each with a random key.

    Deposits are authorized by :class:`PutAuthClient` rules: once a relay asked
    for work, a contact proof (nonces and ring from ``zk_get``, proven in a
    worker thread) where we hold a contact secret, else a put token, else
    proof of work solved in a worker thread; an
    item whose work the relay asks is over ``max_bits`` keeps its
    ``pow`` refusal (the caller retries it later).

    Args:
        unlinkable: A fresh link and key for every request instead of reusing one.
        timeout: For each connection and handshake.
        tokens: The put token we hold for a mailbox, or None (default: none).
        max_bits: The most proof of work paid for one envelope.
        secrets: The contact secret we hold for a mailbox, or None (section 41).
    """

    def __init__(
        self,
        *,
        unlinkable: bool = False,
        timeout: float = 10.0,
        tokens: Callable[[bytes], bytes | None] | None = None,
        max_bits: int = 24,
        secrets: Callable[[bytes], ContactSecret | None] | None = None,
    ) -> None:
        self._unlinkable = unlinkable
        self._timeout = timeout
        self.auth = PutAuthClient(tokens, max_bits=max_bits, secrets=secrets)
        """How deposits are authorized."""
        self._links: dict[tuple[str, int], RelaySession] = {}
        self._dialling: dict[tuple[str, int], trio.Lock] = {}
        self.pins: dict[tuple[str, int], NodeId] = {}
        """Node ids the pooled links to these relays must prove (else any key)."""

    async def put_many(
        self, host: str, port: int, items: Sequence[tuple[bytes, bytes]]
    ) -> list[bytes | str]:
        """Deposit ``(mailbox, envelope)`` items at one relay; per item its entry id or refusal.

        Runs in a ``dchat.deposit`` span when the process traces (:mod:`.tracing`).
        """
        with tracing.active.deposit_span() as span:
            results = await self._authorized_deposit(host, port, items)
            if span is not None:
                span.set_attribute("dchat.envelopes", len(items))
                span.set_attribute("dchat.envelope_bytes", sum(len(e) for _, e in items))
                span.set_attribute(
                    "dchat.envelopes_refused", sum(isinstance(r, str) for r in results)
                )
        return results

    async def _authorized_deposit(
        self, host: str, port: int, items: Sequence[tuple[bytes, bytes]]
    ) -> list[bytes | str]:
        """Deposit ``items``, answering up to two rounds of ``pow`` refusals (token, then work).

        A failure after the first round fails only the items still refused
        (their result is the error's name); the ones stored stay stored.
        """
        relay = f"{host}:{port}"
        auth = self.auth.first(relay, [mailbox for mailbox, _ in items], trio.current_time())
        todo = list(range(len(items)))
        results: list[bytes | str] = ["pow"] * len(items)
        for attempt in range(3):
            batch = [items[i] for i in todo]
            sent = [auth[i] for i in todo]
            deposit = functools.partial(RelaySession.deposit, items=batch, auth=sent)
            try:
                reply = await self._call(host, port, deposit)
            except DchatError as exc:
                if attempt == 0:
                    raise
                for i in todo:  # what the first attempts stored stays stored
                    results[i] = type(exc).__name__
                break
            for i, result in zip(todo, reply.results, strict=True):
                results[i] = result
            todo = [i for i in todo if results[i] == "pow"]
            if reply.pow is None or not todo:
                break
            self.auth.asked(relay, trio.current_time())
            todo = await self._answer((host, port), reply.pow, items, auth, todo)
            if not todo:
                break
        return results

    async def _answer(
        self,
        relay: tuple[str, int],
        challenge: PowChallenge,
        items: Sequence[tuple[bytes, bytes]],
        auth: list[bytes | None],
        refused: list[int],
    ) -> list[int]:
        """Set a proof, token, paid token or solved stamp as ``auth`` of each refused item."""
        work: list[int] = []
        again: list[int] = []
        proofs: dict[bytes, list[int]] = {}
        name = f"{relay[0]}:{relay[1]}"  # as the paid tokens' wallet names the relay
        for i in refused:
            answer = self.auth.retry(items[i][0], auth[i], challenge, name)
            if isinstance(answer, ContactSecret):
                proofs.setdefault(items[i][0], []).append(i)
                continue
            if isinstance(answer, bytes):
                auth[i] = answer
                again.append(i)
            elif answer is not None:
                work.append(i)
        for mailbox, waiting in proofs.items():
            proven = await self._prove(relay, mailbox, len(waiting))
            for i, one in zip(waiting, proven, strict=False):
                auth[i] = one
                again.append(i)
            for i in waiting[len(proven) :]:  # no ring, or not ours: a token or work instead
                answer = self.auth.retry(mailbox, auth[i], challenge, name, prove=False)
                if isinstance(answer, bytes):
                    auth[i] = answer
                    again.append(i)
                elif answer is not None:
                    work.append(i)
        if work:
            seed, bits = challenge.seed, challenge.bits
            ids = [entry_id_of(items[i][1]) for i in work]
            nonces = await trio.to_thread.run_sync(
                lambda: [solve_pow(seed, entry, bits) for entry in ids], abandon_on_cancel=True
            )
            for i, nonce in zip(work, nonces, strict=True):
                if nonce is not None:
                    auth[i] = auth_pow(seed, nonce)
                    again.append(i)
        return sorted(again)

    async def _prove(self, relay: tuple[str, int], mailbox: bytes, count: int) -> list[bytes]:
        """Up to ``count`` contact-proof authorizations for ``mailbox`` at ``relay`` (or none)."""
        secret = self.auth.secrets(mailbox)
        if secret is None:  # pragma: no cover (retry returned it a moment ago)
            return []
        try:
            contexts = await self._call(*relay, lambda s: s.proof_contexts(mailbox, count))
        except DchatError:
            return []
        prove = functools.partial(prove_deposits, secret, mailbox, contexts)
        return await trio.to_thread.run_sync(prove, abandon_on_cancel=True)

    async def publish(
        self, host: str, port: int, topic: bytes, post: bytes, desc: bytes | None = None
    ) -> int:
        """Upload one channel post to the relay ``host:port``; the relay's number for it."""
        return await self._call(host, port, lambda session: session.publish(topic, post, desc))

    async def get_prekeys(self, host: str, port: int, mailbox: bytes) -> bytes:
        """One (wrapped) prekey bundle of ``mailbox`` at the relay ``host:port``."""
        return await self._call(host, port, lambda session: session.get_prekeys(mailbox))

    async def get_prekeys_from(self, relays: Sequence[str], mailbox: bytes) -> bytes:
        """A bundle of ``mailbox`` from the first of ``relays`` (address texts) that answers.

        A device with several home relays publishes at each: when one is down
        (or lost its bundles), the next one serves. Raises the last relay's error.
        """
        for number, text in enumerate(relays):
            try:
                relay = RelayAddress.parse(text)
                return await self.get_prekeys(relay.host, relay.port, mailbox)
            except DchatError:
                if number == len(relays) - 1:
                    raise
        raise InvalidRelayAddressError("no relay to fetch a prekey bundle from")

    @property
    def open_links(self) -> int:
        """Pooled links open now."""
        return len(self._links)

    async def aclose(self) -> None:
        """Close every pooled link."""
        links, self._links = self._links, {}
        for session in links.values():
            await session.aclose()

    async def _call(
        self, host: str, port: int, call: Callable[[RelaySession], Awaitable[_R]]
    ) -> _R:
        if self._unlinkable:
            async with relay_session(host, port, timeout=self._timeout) as session:
                return await call(session)
        address = (host, port)
        while True:
            session, fresh = await self._get(address)
            try:
                return await call(session)
            except LinkClosedError:
                await self._drop(address, session)
                if fresh:  # a stale pooled link is reopened once; a fresh one failing is final
                    raise
            except RelayBusyError as exc:
                if exc.reason == "connections" or exc.reason == "source_connections":
                    await self._drop(address, session)  # the relay closes an over-cap link
                raise  # answered in full: the link stays usable
            except BaseException:
                await self._drop(address, session)  # a failed or cut request may break the link
                raise

    async def _get(self, address: tuple[str, int]) -> tuple[RelaySession, bool]:
        async with self._dialling.setdefault(address, trio.Lock()):
            session = self._links.get(address)
            if session is not None:
                return session, False
            host, port = address
            key, pin = SigningKey.generate(), self.pins.get(address)
            link = await connect(host, port, node_key=key, expected_peer=pin, timeout=self._timeout)
            session = self._links[address] = RelaySession(link)
            return session, True

    async def _drop(self, address: tuple[str, int], session: RelaySession) -> None:
        if self._links.get(address) is session:
            del self._links[address]
        await session.aclose()
