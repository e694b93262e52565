"""What one node knows of an anchored group's order: held messages, batches, gaps, evidence.

:class:`AnchorBook` is plain data with the checks of :mod:`._group_order`
(per-device forks and gaps, batches against the chain), stored as sealed
state ``group.anchor.<id hex>``: ``{"m": [[hash, s, d, q, ph, wire], ...]
(the newest MAX_TRACKED messages we hold), "p": [hash, ...] (held, in no
batch yet, arrival order), "ps": ms the oldest of them arrived, "l": [[hash,
s, d, q, order], ...] (listed by a verified batch), "b": [batch, ...]
(verified), "u": [batch, ...] (unverified), "t": [[s, d, top q], ...], "x":
[[s, d, q], ...] (missing), "ev": [evidence, ...], "gr": [identity, ...]
(granted the channel's admin role on chain), "o": [[SHA-256 of batch, ms],
...] (our own lists not yet sent to the members, with the time of the last
``commit_order`` for them; a book stored before this key has none), "r":
[[SHA-256 of batch, ms], ...] (lists in "u" we received, with the time they
arrived; a book stored before this key has none, so its received lists count
as overdue)}``.

A received list holds back the sequencer's next batch (:meth:`AnchorBook.due`)
only while it may still be the chain's next range: for
:func:`received_grace` after it arrived, and never once a verified range
covers its first number. Our own lists hold it back until the chain settles
them (one batch of ours in flight).

An evidence record is ``{"k": "fork" | "order", "who": accused identity,
"why": text, "a": artefact, "b": artefact, ["c": [first, last, root,
height]], "at": ms}``: a fork's artefacts are sender-signed group messages or
one of them and a sequencer-signed list; an order's are sequencer-signed
lists (``c``: the range as the chain certifies it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeLimits, Fields, IdentityId, canonical_decode, canonical_encode

from ._group_order import OrderBatch, OrderEntry

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("MAX_TRACKED", "AnchorBook", "Finding", "Held", "received_grace")

MAX_TRACKED: Final = 1024
"""Messages (with their wires, for evidence) kept per anchored group."""
MAX_LISTED: Final = 4096
MAX_BATCHES: Final = 64
MAX_EVIDENCE: Final = 32
MAX_MISSING: Final = 256
RECEIVED_GRACE_INTERVALS: Final = 3
"""Batch intervals a received list may take to show on the chain before we sequence past it."""
RECEIVED_GRACE_MIN_MS: Final = 10_000
"""The least such wait whatever the interval (a commit, two headers and a light read)."""
_LIMITS: Final = DecodeLimits(max_size=96 << 20, max_depth=4, max_items=1 << 20)
_FIELDS: Final = frozenset({"m", "p", "ps", "l", "b", "u", "t", "x", "ev", "gr", "o", "r"})

Slot = tuple[bytes, bytes, int]


@dataclass(frozen=True, slots=True)
class Held:
    """A message this node holds: sender, device, number, previous hash and the signed wire."""

    sender: bytes
    device: bytes
    seq: int
    prev: bytes
    wire: bytes


@dataclass(frozen=True, slots=True)
class Finding:
    """What a check found: ``gap``, ``fork``, ``order`` (equivocation) or ``anchored``.

    ``evidence`` is the stored record (equivocations); ``tell`` the artefacts
    the other members should check (``group.evi`` kind and data).
    """

    kind: str
    detail: Mapping[str, object]
    evidence: dict[str, Any] | None = None
    tell: tuple[tuple[str, bytes], ...] = ()


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def received_grace(interval_ms: int) -> int:
    """How long a received list not yet on the chain holds back the sequencer (ms)."""
    return max(RECEIVED_GRACE_INTERVALS * interval_ms, RECEIVED_GRACE_MIN_MS)


@dataclass(slots=True)
class AnchorBook:
    """One anchored group's order as this node knows it (see the module docstring)."""

    held: dict[bytes, Held] = field(default_factory=dict)
    pending: list[bytes] = field(default_factory=list)
    pending_since: int = 0
    listed: dict[bytes, tuple[bytes, bytes, int, int]] = field(default_factory=dict)
    batches: list[bytes] = field(default_factory=list)
    unverified: list[bytes] = field(default_factory=list)
    tops: dict[tuple[bytes, bytes], int] = field(default_factory=dict)
    missing: set[Slot] = field(default_factory=set)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    granted: set[bytes] = field(default_factory=set)
    own: dict[bytes, int] = field(default_factory=dict)
    got: dict[bytes, int] = field(default_factory=dict)

    # -- storage ------------------------------------------------------------------------

    def encode(self) -> bytes:
        return canonical_encode({
            "m": [[h, m.sender, m.device, m.seq, m.prev, m.wire] for h, m in self.held.items()],
            "p": list(self.pending), "ps": self.pending_since,
            "l": [[h, *v] for h, v in self.listed.items()],
            "b": list(self.batches), "u": list(self.unverified),
            "t": [[s, d, q] for (s, d), q in sorted(self.tops.items())],
            "x": [list(x) for x in sorted(self.missing)], "ev": list(self.evidence),
            "gr": sorted(self.granted), "o": [[d, t] for d, t in self.own.items()],
            "r": [[d, t] for d, t in self.got.items()],
        })  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> AnchorBook:
        f = Fields(canonical_decode(data, _LIMITS), "group anchor", _FIELDS)
        own = f.get_list("o", max_len=2 * MAX_BATCHES) if f.has("o") else []
        got = f.get_list("r", max_len=2 * MAX_BATCHES) if f.has("r") else []
        return cls(
            {h: Held(s, d, q, ph, w) for h, s, d, q, ph, w in f.get_list("m", max_len=1 << 16)},
            [bytes(h) for h in f.get_list("p", max_len=1 << 16)], f.get_int("ps"),
            {h: (s, d, q, o) for h, s, d, q, o in f.get_list("l", max_len=1 << 16)},
            [bytes(b) for b in f.get_list("b")], [bytes(b) for b in f.get_list("u")],
            {(s, d): q for s, d, q in f.get_list("t", max_len=1 << 16)},
            {(s, d, q) for s, d, q in f.get_list("x", max_len=1 << 16)},
            list(f.get_list("ev")), {bytes(g) for g in f.get_list("gr")},
            {bytes(d): int(t) for d, t in own}, {bytes(d): int(t) for d, t in got},
        )  # fmt: skip

    # -- views --------------------------------------------------------------------------

    def slot_hash(self, slot: Slot) -> bytes | None:
        """The hash of the message we hold at ``slot`` (None if none)."""
        for h, m in self.held.items():
            if (m.sender, m.device, m.seq) == slot:
                return h
        return None

    def listed_at(self, slot: Slot) -> tuple[bytes, int] | None:
        """The hash and order a verified batch lists at ``slot``."""
        for h, (s, d, q, order) in self.listed.items():
            if (s, d, q) == slot:
                return h, order
        return None

    def verified(self) -> list[OrderBatch]:
        return [OrderBatch.from_bytes(b) for b in self.batches]

    def next_first(self) -> int:
        """The first number after every verified range (0 before the first)."""
        return max((b.last + 1 for b in self.verified()), default=0)

    # -- messages -----------------------------------------------------------------------

    def note(self, h: bytes, held: Held, now_ms: int) -> list[Finding]:
        """A message we accepted (received or sent): forks, gaps; kept for the batches."""
        slot = (held.sender, held.device, held.seq)
        if h in self.held:
            return []
        taken = self.slot_hash(slot) is not None or self.listed_at(slot) is not None
        findings = self.conflicts(h, held, now_ms)
        findings += self._gaps(held)
        self.held[h] = held
        while len(self.held) > MAX_TRACKED:
            del self.held[next(iter(self.held))]
        if h not in self.listed and not taken:  # a fork's second version is never sequenced
            if not self.pending:
                self.pending_since = now_ms
            self.pending.append(h)
            del self.pending[: max(0, len(self.pending) - MAX_LISTED)]
        self.missing.discard(slot)
        return findings

    def conflicts(self, h: bytes, m: Held, now_ms: int) -> list[Finding]:
        """Forks ``m`` (hash ``h``) makes with what we hold or what the chain anchored."""
        found: list[Finding] = []
        slot = (m.sender, m.device, m.seq)
        other = self.slot_hash(slot)
        if other is not None and other != h:
            why = "two messages with one device number"
            found.append(self._fork(m.sender, why, self.held[other].wire, m.wire, now_ms))
        before = self.slot_hash((m.sender, m.device, m.seq - 1))
        if before is not None and m.prev != before:
            why = "a message whose previous hash is not the one before it"
            found.append(self._fork(m.sender, why, self.held[before].wire, m.wire, now_ms))
        after = self.slot_hash((m.sender, m.device, m.seq + 1))
        if after is not None and self.held[after].prev != h:
            why = "a message whose next one names another previous hash"
            found.append(self._fork(m.sender, why, m.wire, self.held[after].wire, now_ms))
        listed = self.listed_at(slot)
        if listed is not None and listed[0] != h:
            batch = self._batch_with(listed[0])
            why = "the anchored order lists another message at this device number"
            found.append(self._fork(m.sender, why, m.wire, batch, now_ms))
        return found

    def _gaps(self, m: Held) -> list[Finding]:
        key = (m.sender, m.device)
        top = self.tops.get(key)
        self.tops[key] = max(top or 0, m.seq)
        if top is None or m.seq <= top + 1:
            return []
        lost = [(m.sender, m.device, q) for q in range(max(top + 1, m.seq - 64), m.seq)]
        self.missing.update(lost)
        while len(self.missing) > MAX_MISSING:
            self.missing.discard(min(self.missing, key=lambda x: x[2]))
        missing = [q for *_, q in lost]
        detail = {"sender": str(IdentityId(m.sender)), "device": m.device.hex(), "missing": missing}
        return [Finding("gap", detail)]

    def _fork(self, who: bytes, why: str, a: bytes, b: bytes, now_ms: int) -> Finding:
        """Evidence against sender ``who``: ``a`` a message, ``b`` a message or a batch."""
        wires = (a, b) if b and not self._is_batch(b) else (a,)
        return self._record("fork", who, why, a, b, now_ms, tell=tuple(("fork", w) for w in wires))

    def _is_batch(self, data: bytes) -> bool:
        return data in self.batches

    def _record(
        self, kind: str, who: bytes, why: str, a: bytes, b: bytes, now_ms: int,
        chain: list[object] | None = None, tell: tuple[tuple[str, bytes], ...] = (),
    ) -> Finding:  # fmt: skip
        evidence: dict[str, object] = {
            "k": kind,
            "who": who,
            "why": why,
            "a": a,
            "b": b,
            "at": now_ms,
        }
        if chain is not None:
            evidence["c"] = chain
        known = {(e["k"], _digest(e["a"]), _digest(e["b"])) for e in self.evidence}
        if (kind, _digest(a), _digest(b)) not in known:
            self.evidence = [*self.evidence, evidence][-MAX_EVIDENCE:]
        detail = {"evidence": kind, "accused": str(IdentityId(who)), "why": why}
        return Finding("equivocation", detail, evidence, tell)

    def _batch_with(self, h: bytes) -> bytes:
        for raw in self.batches:
            if any(e.hash == h for e in OrderBatch.from_bytes(raw).entries):
                return raw
        return b""

    # -- the sequencer ------------------------------------------------------------------

    def due(
        self, now_ms: int, count: int, interval_ms: int, *, me: bytes | None = None
    ) -> list[OrderEntry]:
        """The next batch's entries, if ``count`` wait or the oldest waited ``interval_ms``.

        Nothing while a list holds the next range back (:meth:`blocking`;
        ``me``: the sequencer's identity, None counts every list as ours).
        """
        if not self.pending or self.blocking(now_ms, interval_ms, me):
            return []  # one batch in flight at a time: ranges are consecutive on the chain
        if len(self.pending) < count and now_ms - self.pending_since < interval_ms:
            return []
        entries: dict[Slot, OrderEntry] = {}
        for h in self.pending[: min(count, 256)]:
            m = self.held.get(h)
            if m is not None and (m.sender, m.device, m.seq) not in entries:
                entries[m.sender, m.device, m.seq] = OrderEntry(m.sender, m.device, m.seq, h)
        return list(entries.values())

    def blocking(self, now_ms: int, interval_ms: int, me: bytes | None) -> bool:
        """Whether a list not yet settled may still be the chain's next range.

        Ours (signed by ``me``) always, until the chain settles or the repair
        drops it. A received one (another admin's) only within
        :func:`received_grace` of its arrival and while no verified range
        covers its first number: an honest admin sends a list only once the
        chain holds it, so one that does not show by then (a hostile admin's,
        or one whose commit never landed) no longer stalls the group. It is
        still checked against the chain like any other.
        """
        grace, after = received_grace(interval_ms), self.next_first()
        for raw in self.unverified:
            batch = OrderBatch.from_bytes(raw)
            if me is None or batch.by == me:
                return True
            if batch.first >= after and now_ms - self.got.get(_digest(raw), 0) < grace:
                return True
        return False

    def hold(self, batch: OrderBatch, now_ms: int) -> None:
        """Our own batch, before the chain has it: what it lists is no longer pending.

        It is ours to commit (now) and to send to the members once the chain
        has it (:meth:`resends`, :meth:`sent`).
        """
        raw = batch.to_bytes()
        if raw not in self.unverified:
            self._keep(raw)
        self.own[_digest(raw)] = now_ms
        known = {_digest(b) for b in [*self.unverified, *self.batches]}
        self.own = {d: t for d, t in self.own.items() if d in known}  # at most 2 * MAX_BATCHES
        listed = {e.hash for e in batch.entries}
        self.pending = [h for h in self.pending if h not in listed]

    def abandon(self, first: int) -> None:
        """Our batch at ``first`` never reached the chain: its messages wait again."""
        for raw in list(self.unverified):
            if OrderBatch.from_bytes(raw).first == first:
                self.unverified.remove(raw)
                self._drop(raw)

    def _drop(self, raw: bytes) -> None:
        """Our list ``raw`` will never be on the chain: its messages wait again."""
        batch = OrderBatch.from_bytes(raw)
        self.own.pop(_digest(raw), None)
        again = [e.hash for e in batch.entries if e.hash in self.held and e.hash not in self.listed]
        self.pending = again + [h for h in self.pending if h not in again]

    def resends(
        self, me: bytes, now_ms: int, grace_ms: int, *, restarted: bool = False
    ) -> list[tuple[bool, bytes]]:
        """Our lists to commit again (``True``) or to send to the members (``False``).

        A list of ours (signed by ``me``) the chain has not certified is
        committed again ``grace_ms`` after the last try, or at once after a
        restart: the same signed bytes, so no member ever sees two lists of
        ours for one range. One the chain certified (settled) that the
        members never got (a crash between commit and send) is sent again.
        """
        mine = [raw for raw in self.unverified if OrderBatch.from_bytes(raw).by == me]
        out = []
        for raw in mine:
            tried = self.own.get(_digest(raw), 0)  # 0: held by a book from before "o"
            if restarted or now_ms - tried >= grace_ms:
                out.append((True, raw))
        out += [(False, raw) for raw in self.batches if _digest(raw) in self.own]
        return out

    def retry(self, raw: bytes, next_first: int, now_ms: int) -> bool:
        """Our list ``raw`` is not on the chain, whose channel's next is ``next_first``.

        True: commit it again (its range is still the next). False: the
        channel moved past it without it, so it never will be: it is dropped
        (never sent to anyone) and its messages wait for the next batch.
        """
        batch = OrderBatch.from_bytes(raw)
        if raw not in self.unverified:
            return False
        if next_first == batch.first:
            self.own[_digest(raw)] = now_ms
            return True
        self.abandon(batch.first)
        return False

    def sent(self, raw: bytes) -> None:
        """Our list ``raw`` went to the members: never sent again."""
        self.own.pop(_digest(raw), None)

    # -- batches from the sequencer, checked against the chain ----------------------------

    def receive(self, batch: OrderBatch, now_ms: int) -> list[Finding]:
        """A signed list (checked by the caller): kept until the chain is read for it."""
        raw = batch.to_bytes()
        if raw in self.batches or raw in self.unverified or self._convicted(raw, batch):
            return []
        for known in [*self.verified(), *(OrderBatch.from_bytes(u) for u in self.unverified)]:
            same_range = (known.first, known.channel, known.by) == (
                batch.first,
                batch.channel,
                batch.by,
            )
            if same_range and known.root() != batch.root():
                why = "the sequencer signed two lists for one range"
                tell = (("order", known.to_bytes()), ("order", raw))
                return [
                    self._record("order", batch.by, why, known.to_bytes(), raw, now_ms, tell=tell)
                ]
        self.got[_digest(raw)] = now_ms
        self._keep(raw)
        return []

    def _convicted(self, raw: bytes, batch: OrderBatch) -> bool:
        """Whether ``raw`` is already evidence against its sequencer for a settled range.

        The other members send it back as their evidence; keeping it again
        would have every member settle and tell it to the others round after round.
        """
        if batch.first >= self.next_first():
            return False
        return any(e["k"] == "order" and bytes(e["a"]) == raw for e in self.evidence)

    def _keep(self, raw: bytes) -> None:
        """``raw`` waits for the chain; past MAX_BATCHES the oldest received list goes first.

        So received lists (a hostile admin can send many) never push out one of ours.
        """
        self.unverified = [*self.unverified, raw]
        while len(self.unverified) > MAX_BATCHES:
            old = next((u for u in self.unverified if _digest(u) in self.got), self.unverified[0])
            self.unverified.remove(old)
        self._forget()

    def _forget(self) -> None:
        """Arrival times only for received lists still waiting."""
        waiting = {_digest(u) for u in self.unverified}
        self.got = {d: t for d, t in self.got.items() if d in waiting}

    def settle(
        self, channel: bytes, first: int, chain: tuple[int, bytes, bytes, int] | None, now_ms: int
    ) -> list[Finding]:
        """The chain's record of ``[first, ...]`` (``(last, root, by, height)``, verified).

        ``None``: not on the chain yet (the batches wait). A batch that matches
        is verified and its messages anchored; one that does not is evidence.
        """
        if chain is None:
            return []
        last, root, by, height = chain
        findings: list[Finding] = []
        for raw in list(self.unverified):
            batch = OrderBatch.from_bytes(raw)
            if batch.channel != channel or batch.first != first:
                continue
            self.unverified.remove(raw)
            if (batch.last, batch.root(), batch.by) == (last, root, by):
                findings += self._accept(batch, raw, now_ms)
                continue
            if _digest(raw) in self.own:  # ours, never sent: the range went to another list
                self._drop(raw)
                continue
            good = next((b for b in self.verified() if b.first == first), None)
            why = "an order list that is not the one the chain certifies"
            record = [first, last, root, height]
            other = b"" if good is None else good.to_bytes()
            findings.append(
                self._record("order", batch.by, why, raw, other, now_ms, record, (("order", raw),))
            )
        self._forget()
        return findings

    def _covered(self, batch: OrderBatch) -> None:
        """Received lists starting inside the verified ``batch``'s range: never on the chain.

        The chain keeps one record per range, at its first number, so such a
        list will never be certified; it stops waiting (and being read).
        """
        for raw in list(self.unverified):
            other = OrderBatch.from_bytes(raw)
            inside = batch.first < other.first <= batch.last
            if inside and other.channel == batch.channel and _digest(raw) in self.got:
                self.unverified.remove(raw)

    def _accept(self, batch: OrderBatch, raw: bytes, now_ms: int) -> list[Finding]:
        if all(b != raw for b in self.batches):
            self.batches = [*self.batches, raw][-MAX_BATCHES:]
        findings: list[Finding] = []
        for i, e in enumerate(batch.entries):
            held = self.slot_hash(e.slot)
            if held is not None and held != e.hash:
                why = "the anchored order lists another message at this device number"
                findings.append(self._fork(e.sender, why, self.held[held].wire, raw, now_ms))
            elif held is None and e.hash not in self.held:
                self.missing.add(e.slot)
            self.listed[e.hash] = (e.sender, e.device, e.seq, batch.first + i)
        while len(self.listed) > MAX_LISTED:
            del self.listed[next(iter(self.listed))]
        listed = {e.hash for e in batch.entries}
        self.pending = [h for h in self.pending if h not in listed]
        self._covered(batch)
        detail = {"first": batch.first, "last": batch.last, "sequencer": str(IdentityId(batch.by))}
        return [*findings, Finding("anchored", detail)]
