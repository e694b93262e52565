"""Cover traffic for a user node: loop and drop envelopes, built, counted, recognised.

Theory of operation
-------------------
:class:`dchat_privacy.lowlevel.CoverScheduler` says *when* (two Poisson
streams within a byte budget); :class:`CoverTraffic` says *what* and
*where*, and keeps the books:

* A **drop** is a :class:`SealedEnvelope` of the size of a real short
  message (:func:`envelope_size` of the smallest padding bucket: texts,
  receipts and most controls) addressed to a fresh random 32-byte mailbox
  id, a *throwaway tag* (a real tag is a hash output too, so the relay cannot
  tell them apart at deposit), sealed to a fresh X25519 key nobody holds.
  It goes to a relay real mail went to lately, or a home relay. Nobody drains it;
  the relay expires it.
* A **loop** is the same shape, addressed to the node's own *cover tag* of
  the current epoch (:func:`dchat_privacy.lowlevel.tag_seed` of a secret
  kept under the ``cover`` state key, like a contact's tag) at one of its
  home relays, sealed to an X25519 key derived from that secret. The node
  drains its cover tags like any tag (:meth:`CoverTraffic.watch`, one
  standing link per live epoch and home relay, its put token registered),
  opens what arrives (:meth:`CoverTraffic.arrived`) and matches the loop id:
  the round trip is measured; a loop not back within :data:`LOOP_TIMEOUT`
  seconds is counted *missing* (a relay dropping or holding mail: a sign of
  an active attack).

Both carry, inside the sealed box, the cover payload (protocol section 42)::

    {"v": 1, "cov": 1 (loop) | 2 (drop), "id": 16 random bytes, "pad": zero bytes}

``pad`` is sized so the whole envelope is exactly as long as a real one.
Every real envelope the node deposits (:meth:`CoverTraffic.real_sent`, from
``UserMessaging.route``) takes a drop's slot.

On or off: the budget comes from the node's setting (``cover_traffic``) until
the user sets it at run time (:meth:`CoverTraffic.set_budget` in the shell's
thread, then :meth:`CoverTraffic.save` in the store's worker: kept in the
``cover`` state); 0 is off. Nothing here does I/O; ``now`` is passed in.
"""

from __future__ import annotations

import functools
import math
import os
import random
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    MailboxId,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import DecryptionError, PrivateKey, SigningKey, open_sealed, seal
from dchat_crypto.hazmat import hkdf_sha256
from dchat_privacy import DEFAULT_BUCKETS
from dchat_privacy.lowlevel import (
    COVER_WINDOW,
    MAX_COVER_BUDGET,
    TAG_SECRET_SIZE,
    CoverInputError,
    CoverPolicy,
    CoverScheduler,
    TagSchedule,
    tag_seed,
    tag_token,
)

from ._controls import load_state
from ._envelope import SealedEnvelope
from ._errors import EngineStateError, MalformedEnvelopeError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._store import StateStore

__all__ = (
    "DEFAULT_COVER_BUDGET",
    "LOOP_TIMEOUT",
    "CoverDeposit",
    "CoverTag",
    "CoverTraffic",
    "decode_cover",
    "encode_cover",
    "envelope_size",
)

DEFAULT_COVER_BUDGET: Final = 100
"""Bytes per second when cover is turned on without a budget: one envelope every ~6.6 s."""
LOOP_TIMEOUT: Final = 60.0
"""Seconds after which a loop that has not come back counts as missing."""
LOOP = 1
DROP = 2
_KEY: Final = "cover"
_CONTEXT: Final = b"dchat-cover-v1\x00"
_KEY_INFO: Final = b"dchat-cover-key-v1"
_RATCHET_OVERHEAD: Final = 1 + 12 + 41 + 16 + 16  # version, nonce, sealed header, body tag
_LIMITS: Final = DecodeLimits(max_size=72_000, max_depth=1, max_items=8)
_PENDING_MAX: Final = 4096
_RECENT_RELAYS: Final = 16
_TAGS_KEPT: Final = 64
_CAP_ENVELOPES: Final = 128


@functools.cache
def _seal_overhead() -> int:
    return len(seal(PrivateKey.generate().public_key, b""))


@functools.cache
def envelope_size(padded: int = DEFAULT_BUCKETS[0]) -> int:
    """Bytes of a real envelope whose padded content is ``padded`` bytes (no session setup).

    A session message (:mod:`._wire`) around a Double Ratchet message of
    ``padded + 86`` bytes, sealed, in an envelope: the size class cover imitates.
    """
    inner = {"v": 2, "from": bytes(32), "dev": bytes(32), "msg": bytes(padded + _RATCHET_OVERHEAD)}
    sealed = len(canonical_encode(inner)) + _seal_overhead()
    return len(canonical_encode({"v": 1, "mb": bytes(32), "ct": bytes(sealed)}))


def encode_cover(kind: int, loop_id: bytes, pad: int) -> bytes:
    """The cover payload (protocol section 42) with ``pad`` zero bytes of padding."""
    return canonical_encode({"v": 1, "cov": kind, "id": loop_id, "pad": bytes(pad)})


def decode_cover(data: bytes) -> tuple[int, bytes] | None:
    """``(kind, id)`` of a cover payload, or None if it is not one (padding must be zero)."""
    try:
        fields = Fields(
            canonical_decode(data, _LIMITS), "cover", frozenset({"v", "cov", "id", "pad"})
        )
        fields.get_int("v", lo=1, hi=1)
        kind = fields.get_int("cov", lo=LOOP, hi=DROP)
        loop_id = fields.get_bytes("id", size=16)
        if any(fields.get_bytes("pad")):
            return None
    except (DecodeError, ValueError):
        return None
    return kind, loop_id


@functools.cache
def _padding(kind: int) -> int:
    """Padding bytes that make a cover envelope exactly :func:`envelope_size` long."""
    to, target, pad = PrivateKey.generate().public_key, envelope_size(), 0
    for _ in range(4):  # the length fields grow at 24, 256, 65536 bytes: settles in two
        sealed = seal(to, encode_cover(kind, bytes(16), pad), context=_CONTEXT + bytes(32))
        size = len(SealedEnvelope(MailboxId(bytes(32)), sealed).to_bytes())
        if size == target:
            return pad
        pad = max(0, pad + target - size)
    raise AssertionError("no padding gives the cover size")  # pragma: no cover


def _cover_envelope(mailbox: bytes, key: PrivateKey | None, kind: int, loop_id: bytes) -> bytes:
    """An envelope of exactly :func:`envelope_size` bytes (``key``: None seals to nobody)."""
    to = (key or PrivateKey.generate()).public_key
    payload = encode_cover(kind, loop_id, _padding(kind))
    return SealedEnvelope(
        MailboxId(mailbox), seal(to, payload, context=_CONTEXT + mailbox)
    ).to_bytes()


@dataclass(frozen=True, slots=True)
class CoverDeposit:
    """One cover envelope to deposit: where, and the loop id to settle (None: a drop)."""

    relay: str
    mailbox: bytes
    envelope: bytes
    loop_id: bytes | None


@dataclass(frozen=True, slots=True)
class CoverTag:
    """One of our cover tags to drain: its key, mailbox id and put token."""

    key: SigningKey
    mailbox: bytes
    token: bytes


class CoverTraffic:
    """The cover traffic of one user node (see the module docstring).

    Args:
        store: Durable state (the cover secret and the budget set at run time).
        rng: Randomness for the schedule and the choice of relays (default:
            the operating system's, so a relay cannot predict them).
    """

    def __init__(self, store: StateStore, rng: random.Random | None = None) -> None:
        self._store = store
        self._rng = rng or random.SystemRandom()
        self._secret: bytes | None = None
        self._key: tuple[bytes, PrivateKey] | None = None  # the loop key, of that secret
        self._set: int | None = None  # the budget set at run time (None: the node's setting)
        self._configured = 0
        self.clock: Callable[[], float] = lambda: 0.0
        """The node's clock (set by :meth:`configure`): when loops arrive."""
        self.scheduler: CoverScheduler | None = None
        self.schedule = TagSchedule()
        self._pending: dict[bytes, float] = {}  # loop id: sent at
        self._relays: deque[str] = deque(maxlen=_RECENT_RELAYS)
        self._tags: dict[tuple[bytes, int], CoverTag] = {}
        self._tokens: dict[bytes, bytes] = {}
        self._before: dict[str, int] = {}  # the counters of schedulers replaced
        self.counters: dict[str, int] = dict.fromkeys(
            ("loops_returned", "loops_missing", "loops_unknown", "failed"), 0
        )
        self.rtt_last: float | None = None
        self.rtt_mean: float | None = None

    # -- settings --------------------------------------------------------------------

    def configure(self, budget: int, clock: Callable[[], float]) -> None:
        """The node's setting (bytes/s, 0: off) and clock; :meth:`load` starts the cover."""
        self.policy(budget)
        self._configured, self.clock = budget, clock

    def load(self) -> None:
        """Read the stored state; run at the node's setting unless the user set a budget.

        Raises:
            EngineStateError: the stored state is damaged.
        """
        raw = load_state(self._store, _KEY)
        if raw is not None:
            try:
                fields = Fields(raw, "cover", frozenset({"v", "sec", "budget"}))
                fields.get_int("v", lo=1, hi=1)
                self._secret = fields.get_bytes("sec", size=TAG_SECRET_SIZE)
                if fields.has("budget"):
                    self._set = fields.get_int("budget", lo=0, hi=MAX_COVER_BUDGET)
            except (DecodeError, ValueError):
                raise EngineStateError("stored cover state is damaged") from None
        fresh = self._secret is None
        self._start()
        if fresh and self._secret is not None:
            self.save()  # the cover tags stay the same across restarts

    def set_budget(self, budget: int) -> None:
        """Turn cover on at ``budget`` bytes/s (0: off) now; :meth:`save` keeps the choice.

        Raises:
            CoverInputError: a budget out of range, or too small for one envelope a minute.
        """
        self.policy(budget)
        self._set = budget
        self._start()

    def save(self) -> None:
        """Store the secret and the budget set at run time (in the store's worker)."""
        self._secret = self._secret or os.urandom(TAG_SECRET_SIZE)
        value: dict[str, object] = {"v": 1, "sec": self._secret}
        if self._set is not None:
            value["budget"] = self._set
        with self._store.transaction():
            self._store.put_state(_KEY, canonical_encode(value))

    @property
    def budget(self) -> int:
        """Bytes per second of cover now (0: off)."""
        return self._configured if self._set is None else self._set

    @staticmethod
    def policy(budget: int) -> CoverPolicy | None:
        """The policy of ``budget`` (None: off); its cap's window holds ~128 envelopes.

        A window of a few envelopes would make the cap bind often and bend the
        Poisson shape (at 100 B/s and 60 s, 12% of the slots were skipped).
        """
        if budget == 0 and not isinstance(budget, bool):
            return None
        size = envelope_size()
        if isinstance(budget, int) and not isinstance(budget, bool) and budget * 60 < size:
            raise CoverInputError("a cover budget carries at least one envelope a minute")
        window = max(COVER_WINDOW, min(86_400.0, _CAP_ENVELOPES * size / max(budget, 1)))
        return CoverPolicy(budget=budget, size=size, window=window)

    def _start(self) -> None:
        if self.scheduler is not None:
            for name, count in self.scheduler.counters.items():
                self._before[name] = self._before.get(name, 0) + count
        policy = self.policy(self.budget)
        if policy is not None and self._secret is None:
            self._secret = os.urandom(TAG_SECRET_SIZE)  # stored by save()
        if policy is None:
            self.scheduler = None
            self._pending.clear()
        else:
            self.scheduler = CoverScheduler(policy, now=self.clock(), rng=self._rng)

    # -- what to send ----------------------------------------------------------------

    def wait(self, now: float) -> float:
        """Seconds until :meth:`due` has work (a slot or a loop to call missing); inf: off."""
        if self.scheduler is None:
            return math.inf
        at = self.scheduler.next_at()
        if self._pending:
            at = min(at, self._pending[next(iter(self._pending))] + LOOP_TIMEOUT)
        return max(0.0, at - now)

    def due(self, now: float, home: Sequence[str]) -> list[CoverDeposit]:
        """The cover envelopes to deposit now (loops at a home relay in ``home``)."""
        self._expire(now)
        sends = [] if self.scheduler is None else self.scheduler.due(now)
        out: list[CoverDeposit] = []
        for send in sends if home else []:  # no home relay yet: the slots pass unused
            if send.kind == "loop":
                loop_id = os.urandom(16)
                mailbox = self.tag(now).mailbox
                envelope = _cover_envelope(mailbox, self._loop_key(), LOOP, loop_id)
                if len(self._pending) < _PENDING_MAX:
                    self._pending[loop_id] = now
                out.append(CoverDeposit(self._rng.choice(list(home)), mailbox, envelope, loop_id))
            else:
                mailbox = os.urandom(32)  # a throwaway tag
                envelope = _cover_envelope(mailbox, None, DROP, os.urandom(16))
                relay = self._rng.choice([*home, *self._relays])
                out.append(CoverDeposit(relay, mailbox, envelope, None))
        return out

    def settled(self, deposits: Sequence[CoverDeposit], results: Sequence[object]) -> None:
        """Each deposit's result (an entry id, or what failed): a failed loop is not awaited."""
        for deposit, result in zip(deposits, results, strict=True):
            if not isinstance(result, bytes):
                self.counters["failed"] += 1
                if deposit.loop_id is not None:
                    self._pending.pop(deposit.loop_id, None)

    def real_sent(self, relay: str, size: int, now: float) -> None:
        """A real envelope was handed to ``relay``: it takes a drop's slot; drops go there too."""
        self._relays.append(relay)
        if self.scheduler is not None:
            self.scheduler.real_sent(size, now)

    # -- our cover tags --------------------------------------------------------------

    def _loop_key(self) -> PrivateKey:
        assert self._secret is not None
        if self._key is None or self._key[0] != self._secret:
            key = PrivateKey(hkdf_sha256(self._secret, salt=b"", info=_KEY_INFO, length=32))
            self._key = (self._secret, key)
        return self._key[1]

    def _tag(self, secret: bytes, epoch: int) -> CoverTag:
        found = self._tags.get((secret, epoch))
        if found is None:
            if len(self._tags) >= _TAGS_KEPT:
                self._tags.clear()
                self._tokens.clear()
            key = SigningKey(tag_seed(secret, epoch))
            mailbox = bytes(MailboxId.derive(key.public_key.to_bytes()))
            found = self._tags[(secret, epoch)] = CoverTag(key, mailbox, tag_token(secret, epoch))
            self._tokens[mailbox] = found.token
        return found

    def tag(self, now: float) -> CoverTag:
        """Our cover tag of the epoch of ``now``."""
        assert self._secret is not None
        return self._tag(self._secret, self.schedule.epoch(now))

    def watch(self, now: float) -> list[CoverTag]:
        """The cover tags to drain now: epochs ``e-1 .. e+1`` (none when cover is off)."""
        if self.scheduler is None or self._secret is None:
            return []
        return [self._tag(self._secret, e) for e in self.schedule.live(now)]

    def token_for(self, mailbox: bytes) -> bytes | None:
        """The put token of one of our cover tags (a loop pays no work where a tag needs none)."""
        return self._tokens.get(mailbox)

    def arrived(self, envelope: bytes, now: float) -> None:
        """An envelope drained from a cover tag: a loop back home, or something else (counted)."""
        loop = None
        if self._secret is not None:
            try:
                sealed = SealedEnvelope.from_bytes(envelope)
                context = _CONTEXT + bytes(sealed.mailbox)
                loop = decode_cover(
                    open_sealed(self._loop_key(), sealed.ciphertext, context=context)
                )
            except (MalformedEnvelopeError, DecryptionError):
                loop = None
        sent = None if loop is None or loop[0] != LOOP else self._pending.pop(loop[1], None)
        if sent is None:  # a replay, a loop from before a restart, or a stranger's put
            self.counters["loops_unknown"] += 1
            return
        rtt = max(0.0, now - sent)
        self.counters["loops_returned"] += 1
        self.rtt_last = rtt
        n = self.counters["loops_returned"]
        self.rtt_mean = rtt if self.rtt_mean is None else self.rtt_mean + (rtt - self.rtt_mean) / n

    def _expire(self, now: float) -> None:
        while self._pending:  # in the order sent: stop at the first one still awaited
            first = next(iter(self._pending))
            if now - self._pending[first] < LOOP_TIMEOUT:
                break
            del self._pending[first]
            self.counters["loops_missing"] += 1

    def status(self) -> dict[str, object]:
        """What ``/status`` shows under ``cover``."""
        counters = dict(self._before)
        for name, count in (self.scheduler.counters if self.scheduler else {}).items():
            counters[name] = counters.get(name, 0) + count
        ms = None if self.rtt_mean is None else round(self.rtt_mean * 1000, 1)
        last = None if self.rtt_last is None else round(self.rtt_last * 1000, 1)
        return {
            "on": self.scheduler is not None,
            "budget": self.budget,
            "source": "config" if self._set is None else "set",
            "envelope_bytes": envelope_size(),
            "loops_sent": counters.get("loops", 0),
            "drops_sent": counters.get("drops", 0),
            "replaced": counters.get("replaced", 0),
            "skipped": counters.get("skipped", 0),
            "loops_pending": len(self._pending),
            **self.counters,
            "loop_rtt_ms": ms,
            "loop_rtt_last_ms": last,
        }
