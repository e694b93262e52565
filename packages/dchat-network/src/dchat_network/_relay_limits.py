"""A relay's abuse limits, sans-IO: connection caps, token buckets, the replay window.

Theory of operation
-------------------
A relay accepts deposits from anyone (a sender proves only a random key), so
what it can bound is *how much* one connection, one source address and all
of them together may cost it. :class:`RelayGuard` keeps that book; the trio
shell (:class:`~dchat_network.RelayHost`, :func:`~dchat_network.serve_links`)
asks it and acts, and the sans-IO :class:`~dchat_network.RelayServer` asks it
per request. Nothing here reads a clock: every call takes ``now``.

* **Connections.** :meth:`RelayGuard.connect` is asked when a TCP connection
  is accepted, before the handshake. Up to ``max_connections`` in all and
  ``max_connections_per_source`` per source are admitted, and a source may
  start at most ``source_handshakes`` per second (a token bucket holding
  ``burst`` seconds' worth): the handshake is the dearest thing a stranger can
  make a relay do. Past a cap or that rate the connection is still
  *answered*, before any handshake work: a refusal frame with the reason
  (``connections``, ``source_connections``, ``source_rate``) and the wait
  (:meth:`RelayGuard.retry_after`), so a client learns why and when to come
  back. Only while more than ``max_refusing`` such refusals are under way at
  once is a connection closed without an answer (``overflow``), so a flood
  cannot make the relay spend without bound on refusing it.
* **Rates.** Each link and each source address has two token buckets (puts
  per second and envelope bytes per second, each holding ``burst`` seconds'
  worth). A ``put``/``put_many``/``pk_put``/``pk_get`` costs its items and
  bytes from both of its buckets, or, if either lacks them, is answered
  ``busy`` (``rate``) with the time until both will hold them, and costs
  nothing. An owner's ``pull``, ``fetch`` and ``ack`` are free: they touch
  only the mailbox the link proved. A source's buckets outlive its
  connections (a reconnect does not refill them) until they are full again.
* **Replay window.** :class:`DeliveredSet` remembers the envelopes owners
  acknowledged (deleted) within ``replay_window`` seconds, at most
  ``replay_entries`` of them, oldest forgotten first; the server refuses a
  re-put of one (``delivered``) instead of storing it again.

Source addresses are IPv4 addresses, or IPv6 /64 prefixes (one host usually
holds a whole /64). Nothing about a source is published: the metrics count
refusals by reason only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, fields
from typing import Final

from ._put_auth import MAX_POW_BITS, PutAuthorizer
from ._relay import MAX_BATCH_BYTES, MAX_RETRY_MS

__all__ = (
    "DeliveredSet",
    "PutBudget",
    "RelayGuard",
    "RelayLimits",
    "TokenBucket",
    "entry_id_of",
    "retry_ms",
    "source_of",
)

_OVERFLOW: Final = "overflow"
_MAX_RATE_SOURCES: Final = 65536  # connection-rate buckets kept before refilled ones are pruned


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """Every abuse limit of a relay (0 turns a rate or cap off where said).

    Attributes:
        max_connections: Connections open at once, in all (0: no cap).
        max_connections_per_source: Connections open at once from one source (0: no cap).
        max_refusing: Over-cap connections being answered ``busy`` at once;
            past it they are closed unanswered.
        source_handshakes: Connections per second one source may start (0: no
            limit); a bucket holds ``burst`` seconds' worth, at least one.
        link_puts: Put items per second one link may send (0: no limit).
        link_bytes: Envelope bytes per second one link may send (0: no limit).
        source_puts: Put items per second one source address may send (0: no limit).
        source_bytes: Envelope bytes per second one source may send (0: no limit).
        burst: Seconds of rate a bucket holds (bytes buckets hold at least one
            largest request, :data:`~dchat_network.lowlevel.MAX_BATCH_BYTES`).
        connection_retry: The ``retry`` of a refusal of an over-cap connection
            (one over ``source_handshakes`` is told when its source's bucket refills).
        disk_budget: The most envelope bytes all mailboxes together may hold (0: no budget).
        disk_retry: The ``retry`` of a ``busy`` answer for a full disk budget.
        replay_window: Seconds a delivered envelope's re-put is refused (0: off).
        replay_entries: The most delivered envelopes remembered (the memory bound).
        mailbox_quota: The most envelope bytes one mailbox may hold.
        handshake_timeout: Seconds a connection may take to finish its handshake.
        first_request_timeout: Seconds from the handshake to the first request.
        idle_timeout: Seconds an established link may stay silent.
        pow_free_relay: Strangers' puts (no valid put token) per ``pow_window`` the
            whole relay serves without proof of work.
        pow_free_mailbox: Strangers' puts per ``pow_window`` one mailbox gets without work.
        pow_free_relay_bytes: Strangers' envelope bytes per ``pow_window`` the whole
            relay stores without proof of work (many sources together included).
        pow_min_bits: Zero bits asked once a load passes its allowance.
        pow_step_bits: Bits added per doubling of the load past the allowance.
        pow_max_bits: The most bits asked (0: proof of work off, every put served).
        pow_window: Seconds over which the load is measured (a decaying count).
        max_put_tokens: Put-token hashes all mailboxes together may register.
        anonymous_work: Anonymous requests (not authorised by a put token, see
            :class:`~dchat_network.lowlevel.WorkQueue`) in the database worker at
            once; more wait their turn, behind authorised ones (0: no cap).
        topic_quota: The most post bytes one channel topic holds; a new post
            past it evicts the topic's oldest posts (0: no quota).
        topic_retention: Seconds a topic's post is kept (0: until evicted).
        onion_period: Seconds per onion-key epoch (a fresh onion key each; the
            previous one still peels for one more epoch).
        observe_log: Debug only: append every connection, request, onion
            forward and deposit this relay sees (peer address, link key id,
            mailbox, size, digest, time) to this file as JSON lines ("": off).
            For adversarial tests of metadata privacy, never for production.
    """

    max_connections: int = 16384
    max_connections_per_source: int = 1024
    max_refusing: int = 1024
    source_handshakes: float = 50.0
    link_puts: float = 2000.0
    link_bytes: float = 16 * 1024 * 1024
    source_puts: float = 4000.0
    source_bytes: float = 32 * 1024 * 1024
    burst: float = 2.0
    connection_retry: float = 1.0
    disk_budget: int = 8 * 1024**3
    disk_retry: float = 60.0
    replay_window: float = 24 * 3600.0
    replay_entries: int = 65536
    mailbox_quota: int = 64 * 1024 * 1024
    handshake_timeout: float = 10.0
    first_request_timeout: float = 20.0
    idle_timeout: float = 300.0
    pow_free_relay: float = 6000.0
    pow_free_mailbox: float = 60.0
    pow_free_relay_bytes: float = 256.0 * 1024 * 1024
    pow_min_bits: int = 8
    pow_step_bits: int = 2
    pow_max_bits: int = 22
    pow_window: float = 60.0
    max_put_tokens: int = 262144
    anonymous_work: int = 16
    topic_quota: int = 16 * 1024 * 1024
    topic_retention: float = 30 * 24 * 3600.0
    onion_period: float = 3600.0
    observe_log: str = ""

    def __post_init__(self) -> None:
        for name, value in ((f.name, getattr(self, f.name)) for f in fields(self)):
            if name == "observe_log":
                continue
            positive = name in ("burst", "pow_window", "onion_period") or name.endswith("timeout")
            if isinstance(value, bool) or value < 0 or (positive and value == 0):
                raise ValueError(f"{name} must be {'above' if positive else 'at least'} 0")
        if self.pow_max_bits > MAX_POW_BITS or self.pow_min_bits > MAX_POW_BITS:
            raise ValueError(f"pow bits must be at most {MAX_POW_BITS}")

    def authorizer(self) -> PutAuthorizer:
        """A relay's put-authorization book under these limits."""
        return PutAuthorizer(
            free_relay=self.pow_free_relay,
            free_mailbox=self.pow_free_mailbox,
            free_relay_bytes=self.pow_free_relay_bytes,
            min_bits=self.pow_min_bits,
            step_bits=self.pow_step_bits,
            max_bits=self.pow_max_bits,
            window=self.pow_window,
            max_tokens=self.max_put_tokens,
        )


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; starts full.

    A rate of 0 means unlimited: every take succeeds.
    """

    __slots__ = ("_at", "_level", "capacity", "rate")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self._level = capacity
        self._at = now

    def level(self, now: float) -> float:
        """Tokens held at ``now`` (time going backwards adds nothing)."""
        if now > self._at:
            self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
            self._at = now
        return self._level

    def wait(self, tokens: float, now: float) -> float:
        """Seconds until ``tokens`` are held (0: now); takes nothing."""
        if self.rate <= 0:
            return 0.0
        missing = min(tokens, self.capacity) - self.level(now)
        return max(0.0, missing / self.rate)

    def take(self, tokens: float, now: float) -> None:
        """Remove ``tokens`` (the caller checked :meth:`wait` first)."""
        if self.rate > 0:
            self._level = self.level(now) - min(tokens, self.capacity)

    def full(self, now: float) -> bool:
        """Whether the bucket is full again (it then remembers nothing).

        Only reads: the listener asks from its own thread while the server
        charges the bucket in the database worker.
        """
        return self.rate <= 0 or self._level + (now - self._at) * self.rate >= self.capacity


def _buckets(puts: float, size: float, limits: RelayLimits, now: float) -> list[TokenBucket]:
    byte_capacity = max(size * limits.burst, float(MAX_BATCH_BYTES))
    puts_capacity = max(puts * limits.burst, 1.0)
    return [TokenBucket(puts, puts_capacity, now), TokenBucket(size, byte_capacity, now)]


@dataclass(slots=True)
class PutBudget:
    """The buckets one link's deposits are charged to: its own and its source's."""

    buckets: list[TokenBucket] = field(default_factory=list)
    """``[link puts, link bytes, source puts, source bytes]``."""

    def charge(self, items: int, size: int, now: float) -> float:
        """Charge ``items`` puts of ``size`` bytes: 0 if done, else seconds to wait (uncharged)."""
        costs = (items, size) * (len(self.buckets) // 2)
        wait = max((b.wait(c, now) for b, c in zip(self.buckets, costs, strict=True)), default=0.0)
        if wait > 0:
            return wait
        for bucket, cost in zip(self.buckets, costs, strict=True):
            bucket.take(cost, now)
        return 0.0


def source_of(address: str) -> str:
    """The source an address is counted under: itself (IPv4), its /64 (IPv6), else as is.

    Asked at every connect and disconnect, so recent answers are kept (parsing an
    address with :mod:`ipaddress` cost more than the rest of admitting the
    connection).
    """
    source = _SOURCES.get(address)
    if source is None:
        if len(_SOURCES) >= _MAX_RATE_SOURCES:
            _SOURCES.clear()
        source = _SOURCES[address] = _source_of(address)
    return source


_SOURCES: dict[str, str] = {}


def _source_of(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)


class RelayGuard:
    """The connection caps and rate buckets of one relay (see the module docstring)."""

    def __init__(self, limits: RelayLimits | None = None) -> None:
        self.limits = limits or RelayLimits()
        self.connections = 0
        """Admitted connections open now."""
        self.refusing = 0
        """Over-cap connections being answered ``busy`` now."""
        self._per_source: Counter[str] = Counter()
        self._source_buckets: dict[str, list[TokenBucket]] = {}
        self._handshakes: dict[str, TokenBucket] = {}  # each source's connection rate
        self.refusals: Counter[str] = Counter()
        """Connections and requests refused here, by reason (a fixed set)."""

    def connect(self, address: str, now: float) -> str | None:
        """A connection from ``address`` was accepted: None (admitted) or why not.

        ``connections``, ``source_connections`` or ``source_rate``: refuse it
        (answered, before the handshake); ``overflow``: close at once. Every call
        is paired with :meth:`disconnect` with the same answer.
        """
        source, limits = source_of(address), self.limits
        over_total = limits.max_connections and self.connections >= limits.max_connections
        per_source = limits.max_connections_per_source
        over_source = per_source and self._per_source[source] >= per_source
        over_rate = False
        if not (over_total or over_source) and limits.source_handshakes:
            bucket = self._handshake_bucket(source, now)
            over_rate = bucket.wait(1, now) > 0
            if not over_rate:
                bucket.take(1, now)
        if not (over_total or over_source or over_rate):
            self.connections += 1
            self._per_source[source] += 1
            return None
        if over_total:
            reason = "connections"
        else:
            reason = "source_connections" if over_source else "source_rate"
        if self.refusing >= limits.max_refusing:
            reason = _OVERFLOW
        else:
            self.refusing += 1
        self.refusals[reason] += 1
        return reason

    def retry_after(self, address: str, verdict: str, now: float) -> float:
        """Seconds a connection refused for ``verdict`` is asked to wait."""
        bucket = self._handshakes.get(source_of(address))
        if verdict == "source_rate" and bucket is not None:
            return max(bucket.wait(1, now), 0.001)
        return self.limits.connection_retry

    def _handshake_bucket(self, source: str, now: float) -> TokenBucket:
        bucket = self._handshakes.get(source)
        if bucket is None:
            if len(self._handshakes) >= _MAX_RATE_SOURCES:  # forget the sources refilled since
                self._handshakes = {s: b for s, b in self._handshakes.items() if not b.full(now)}
            rate = self.limits.source_handshakes
            bucket = self._handshakes[source] = TokenBucket(
                rate, max(rate * self.limits.burst, 1.0), now
            )
        return bucket

    def disconnect(self, address: str, admitted: str | None, now: float) -> None:
        """The connection :meth:`connect` answered ``admitted`` closed."""
        source = source_of(address)
        if admitted is not None:
            self.refusing -= admitted != _OVERFLOW
        else:
            self.connections -= 1
            self._per_source[source] -= 1
        if self._per_source[source] > 0:
            return
        self._per_source.pop(source, None)
        buckets = self._source_buckets.get(source)
        if buckets is not None and all(b.full(now) for b in buckets):
            del self._source_buckets[source]
        handshakes = self._handshakes.get(source)
        if handshakes is not None and handshakes.full(now):
            del self._handshakes[source]

    def budget(self, address: str, now: float) -> PutBudget:
        """The buckets a new link from ``address`` is charged to."""
        limits, source = self.limits, source_of(address)
        shared = self._source_buckets.get(source)
        if shared is None:
            shared = _buckets(limits.source_puts, limits.source_bytes, limits, now)
            self._source_buckets[source] = shared
        return PutBudget([*_buckets(limits.link_puts, limits.link_bytes, limits, now), *shared])

    def sources(self) -> int:
        """Source addresses with connections or unrefilled buckets (bounded by the caps)."""
        return len(self._source_buckets.keys() | self._per_source.keys() | self._handshakes.keys())


def entry_id_of(envelope: bytes) -> bytes:
    """An envelope's entry id (protocol §5): BLAKE2b-256, personalised ``dchat-envelope``."""
    return hashlib.blake2b(envelope, digest_size=32, person=b"dchat-envelope").digest()


def retry_ms(seconds: float) -> int:
    """A wait in seconds as a ``busy`` answer's ``retry`` (at least 1 ms, at most the cap)."""
    return max(1, min(MAX_RETRY_MS, math.ceil(seconds * 1000)))


class DeliveredSet:
    """Recently delivered envelopes, remembered by a salted 64-bit digest, bounded.

    Memory: one ordered-dict entry per envelope (an int key and a float),
    measured at about 110 bytes each in CPython 3 (tests/test_relay_limits.py
    pins it below 200), so the default ``capacity`` of 65,536 costs about
    7 MiB (at most 12.5 MiB). Keys are
    salted with a random per-process secret, so nobody can craft two envelopes
    that collide; an accidental collision (chance about n / 2**64) would only
    refuse one re-put as ``delivered``.

    Args:
        capacity: The most envelopes remembered; the oldest is forgotten first.
        window: Seconds an envelope is remembered after its delivery.
    """

    def __init__(self, capacity: int, window: float, *, salt: bytes | None = None) -> None:
        self.capacity = capacity
        self.window = window
        self._salt = os.urandom(16) if salt is None else salt
        self._seen: OrderedDict[int, float] = OrderedDict()  # in delivery order

    def __len__(self) -> int:
        return len(self._seen)

    def _key(self, mailbox: bytes, entry_id: bytes) -> int:
        digest = hashlib.blake2b(mailbox + entry_id, digest_size=8, key=self._salt).digest()
        return int.from_bytes(digest, "big")

    def add(self, mailbox: bytes, entry_ids: list[bytes] | tuple[bytes, ...], now: float) -> None:
        """The owner of ``mailbox`` acknowledged ``entry_ids`` at ``now``."""
        if self.capacity <= 0 or self.window <= 0:
            return
        for entry_id in entry_ids:
            key = self._key(mailbox, entry_id)
            self._seen[key] = now
            self._seen.move_to_end(key)
        self._expire(now)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def __contains__(self, item: tuple[bytes, bytes, float]) -> bool:
        mailbox, entry_id, now = item
        if not self._seen:
            return False
        at = self._seen.get(self._key(mailbox, entry_id))
        return at is not None and now - at < self.window

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen:
            key, at = next(iter(seen.items()))
            if now - at < self.window:
                return
            del seen[key]
