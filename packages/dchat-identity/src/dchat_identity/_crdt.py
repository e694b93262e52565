"""Conflict-free replicated state for one person's devices.

Two CRDTs, both op-based with idempotent, commutative application, so any
delivery order, duplication or interleaving converges:

* **last-writer-wins registers** (settings, profile fields, read state): a
  register keeps the value of the operation with the greatest HLC timestamp;
* **observed-remove sets** (contacts): every add carries a unique tag (its
  timestamp); a remove lists the add tags its author had observed; an element
  is present while some add tag of it is not removed. An add concurrent with a
  remove survives it ("add wins"), which is what people expect of contacts.

The whole state is a union of grow-only facts (register maxima, add tags,
removed tags), which is why application order does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from dchat_core import DecodeLimits, canonical_encode

from ._errors import IdentityArgumentError, MalformedRecordError
from ._hlc import HybridClock, Timestamp
from ._records import check_version, decode_fields, strict

__all__ = ("OpKind", "SyncOp", "SyncReplica", "SyncState", "Value")

Value: TypeAlias = str | int | bytes | bool | None
MAX_NAME, MAX_ELEMENT, MAX_VALUE, MAX_TAGS = 128, 256, 1024, 256
_STATE_LIMITS = DecodeLimits(max_size=64 << 20, max_depth=6, max_items=4_000_000)
_OP_FIELDS = frozenset({"k", "n", "e", "x", "tags", "ts"})


class OpKind(Enum):
    """What a :class:`SyncOp` does."""

    SET = "set"
    ADD = "add"
    REMOVE = "rm"


def _check_value(value: object) -> None:
    if isinstance(value, str | bytes) and len(value) <= MAX_VALUE:
        return
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return
    raise IdentityArgumentError("a synced value is None, a bool, a 64-bit int or short text/bytes")


def _check_name(name: object, limit: int = MAX_NAME) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= limit:
        raise IdentityArgumentError("register, set and element names are short non-empty text")


@dataclass(frozen=True, slots=True)
class SyncOp:
    """One operation: set a register, or add/remove an element of a set."""

    kind: OpKind
    name: str
    ts: Timestamp
    element: str = ""
    value: Value = None
    tags: tuple[Timestamp, ...] = ()

    def to_value(self) -> dict[str, object]:
        """The canonical map of this operation."""
        out: dict[str, object] = {"k": self.kind.value, "n": self.name, "ts": self.ts.to_list()}
        if self.kind is OpKind.SET:
            out["x"] = self.value
        else:
            out["e"] = self.element
        if self.kind is OpKind.REMOVE:
            out["tags"] = [t.to_list() for t in self.tags]
        return out

    @classmethod
    def from_value(cls, value: object) -> SyncOp:
        """Strictly decode :meth:`to_value` output.

        Raises:
            MalformedRecordError: anything but a well-formed operation.
        """
        if not isinstance(value, dict) or not set(value) <= _OP_FIELDS:
            raise MalformedRecordError("malformed sync operation")
        try:
            kind = OpKind(value.get("k"))
            op = cls(kind, value.get("n"), Timestamp.from_list(value.get("ts")))  # type: ignore[arg-type]
            expected = {"k", "n", "ts"} | ({"x"} if kind is OpKind.SET else {"e"})
            if kind is OpKind.REMOVE:
                expected.add("tags")
            if set(value) != expected:
                raise MalformedRecordError("malformed sync operation")
            return op._with_payload(value)
        except (ValueError, IdentityArgumentError):
            raise MalformedRecordError("malformed sync operation") from None

    def _with_payload(self, value: dict[str, object]) -> SyncOp:
        _check_name(self.name)
        if self.kind is OpKind.SET:
            _check_value(value["x"])
            return SyncOp(self.kind, self.name, self.ts, value=value["x"])  # type: ignore[arg-type]
        element = value["e"]
        _check_name(element, MAX_ELEMENT)
        if self.kind is OpKind.ADD:
            return SyncOp(self.kind, self.name, self.ts, element=element)  # type: ignore[arg-type]
        raw = value["tags"]
        if not isinstance(raw, list) or len(raw) > MAX_TAGS:
            raise MalformedRecordError("malformed sync operation")
        tags = tuple(Timestamp.from_list(t) for t in raw)
        return SyncOp(self.kind, self.name, self.ts, element=element, tags=tags)  # type: ignore[arg-type]


class SyncState:
    """The converging state: registers and observed-remove sets."""

    __slots__ = ("_adds", "_registers", "_removed")

    def __init__(self) -> None:
        self._registers: dict[str, tuple[Timestamp, Value]] = {}
        self._adds: dict[str, dict[str, set[Timestamp]]] = {}
        self._removed: dict[str, set[Timestamp]] = {}

    def apply(self, op: SyncOp) -> None:
        """Apply ``op``; applying it again, or in another order, changes nothing."""
        if op.kind is OpKind.SET:
            current = self._registers.get(op.name)
            if current is None or op.ts > current[0]:
                self._registers[op.name] = (op.ts, op.value)
        elif op.kind is OpKind.ADD:
            self._adds.setdefault(op.name, {}).setdefault(op.element, set()).add(op.ts)
        else:
            self._removed.setdefault(op.name, set()).update(op.tags)

    def get(self, name: str, default: Value = None) -> Value:
        """The value of register ``name``."""
        entry = self._registers.get(name)
        return default if entry is None else entry[1]

    def live_tags(self, name: str, element: str) -> set[Timestamp]:
        """The add tags of ``element`` in set ``name`` not yet removed."""
        removed = self._removed.get(name, set())
        return self._adds.get(name, {}).get(element, set()) - removed

    def members(self, name: str) -> frozenset[str]:
        """The elements of set ``name``."""
        return frozenset(e for e in self._adds.get(name, {}) if self.live_tags(name, e))

    def snapshot(self) -> dict[str, object]:
        """What a user sees: register values and set members."""
        return {
            "registers": {k: v for k, (_, v) in sorted(self._registers.items())},
            "sets": {n: sorted(self.members(n)) for n in sorted(self._adds)},
        }

    def to_bytes(self) -> bytes:
        """Canonical encoding of the full state (tombstones included)."""
        return canonical_encode(
            {
                "v": 1,
                "reg": {k: [ts.to_list(), v] for k, (ts, v) in self._registers.items()},
                "add": {
                    n: {e: sorted(t.to_list() for t in tags) for e, tags in elements.items()}
                    for n, elements in self._adds.items()
                },
                "rm": {n: sorted(t.to_list() for t in tags) for n, tags in self._removed.items()},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SyncState:
        """Strictly decode :meth:`to_bytes` output."""
        allowed = frozenset({"v", "reg", "add", "rm"})
        fields = decode_fields(data, "sync state", allowed, _STATE_LIMITS)
        state = cls()
        with strict("sync state"):
            check_version(fields, "sync state")
            regs, adds, removed = fields.raw("reg"), fields.raw("add"), fields.raw("rm")
        if not all(isinstance(x, dict) for x in (regs, adds, removed)):
            raise MalformedRecordError("malformed sync state")
        for name, entry in regs.items():
            if not isinstance(entry, list) or len(entry) != 2:
                raise MalformedRecordError("malformed sync state")
            state.apply(SyncOp.from_value({"k": "set", "n": name, "ts": entry[0], "x": entry[1]}))
        for name, elements in adds.items():
            if not isinstance(elements, dict):
                raise MalformedRecordError("malformed sync state")
            for element, tags in elements.items():
                for tag in tags if isinstance(tags, list) else [None]:
                    state.apply(SyncOp.from_value({"k": "add", "n": name, "e": element, "ts": tag}))
        for name, tags in removed.items():
            if not isinstance(tags, list):
                raise MalformedRecordError("malformed sync state")
            state._removed.setdefault(name, set()).update(Timestamp.from_list(t) for t in tags)
        if state.to_bytes() != bytes(data):
            raise MalformedRecordError("malformed sync state: not canonical")
        return state


class SyncReplica:
    """One device's replica: a hybrid clock plus the state, issuing operations.

    Args:
        replica: This device's replica id (e.g. its device public key).
        clock: A restored clock, or ``None`` for a new one.
        state: A restored state, or ``None`` for an empty one.
    """

    __slots__ = ("clock", "state")

    def __init__(
        self, replica: bytes, *, clock: HybridClock | None = None, state: SyncState | None = None
    ) -> None:
        self.clock = clock or HybridClock(replica)
        self.state = state or SyncState()

    def set(self, name: str, value: Value, *, now: float) -> SyncOp:
        """Write register ``name`` (e.g. ``"settings/theme"``, ``"read/<chat>"``)."""
        _check_name(name)
        _check_value(value)
        return self._local(SyncOp(OpKind.SET, name, self.clock.tick(now), value=value))

    def add(self, name: str, element: str, *, now: float) -> SyncOp:
        """Add ``element`` to set ``name`` (e.g. ``"contacts"``)."""
        _check_name(name)
        _check_name(element, MAX_ELEMENT)
        return self._local(SyncOp(OpKind.ADD, name, self.clock.tick(now), element=element))

    def remove(self, name: str, element: str, *, now: float) -> SyncOp:
        """Remove ``element`` from set ``name``, as far as this replica has seen it."""
        _check_name(name)
        _check_name(element, MAX_ELEMENT)
        tags = tuple(sorted(self.state.live_tags(name, element)))[:MAX_TAGS]
        ts = self.clock.tick(now)
        return self._local(SyncOp(OpKind.REMOVE, name, ts, element=element, tags=tags))

    def _local(self, op: SyncOp) -> SyncOp:
        self.state.apply(op)
        return op

    def receive(self, op: SyncOp, *, now: float) -> None:
        """Apply a remote operation, advancing the clock past it.

        Raises:
            ClockSkewError: the operation's timestamp is too far in the future.
        """
        self.clock.observe(op.ts, now)
        self.state.apply(op)
