"""Hybrid logical clocks (Kulkarni et al., 2014) for ordering sync operations.

A timestamp is ``(wall_ms, counter, replica)``: the largest physical time seen
so far, a counter that orders events within one millisecond (and events from
replicas whose clocks run ahead of ours), and the replica id as the final
tie-break, which makes timestamps from different replicas distinct and the
order total. Properties the tests check:

* every timestamp a clock issues is greater than every one it issued or
  received before, whatever the physical clock does (monotonic under skew);
* ``wall_ms`` never exceeds the greatest physical time seen by more than the
  allowed drift: a remote timestamp further ahead is refused (ClockSkewError),
  so one replica with a wrong clock cannot drag every other into the future.
"""

from __future__ import annotations

from dataclasses import dataclass

from dchat_core import DecodeLimits, canonical_encode

from ._errors import ClockSkewError, IdentityArgumentError, MalformedRecordError
from ._records import check_version, decode_fields, strict, to_ms

__all__ = ("HybridClock", "Timestamp")

MAX_COUNTER = 2**32 - 1
MAX_REPLICA = 32
DEFAULT_MAX_DRIFT = 60.0


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """One hybrid-logical-clock reading; ordered by ``(wall_ms, counter, replica)``."""

    wall_ms: int
    counter: int
    replica: bytes

    def to_list(self) -> list[object]:
        """The encoding used inside records: ``[wall_ms, counter, replica]``."""
        return [self.wall_ms, self.counter, self.replica]

    @classmethod
    def from_list(cls, value: object) -> Timestamp:
        """Strictly decode :meth:`to_list` output."""
        if not isinstance(value, list) or len(value) != 3:
            raise MalformedRecordError("malformed timestamp")
        wall, counter, replica = value
        if (
            isinstance(wall, bool)
            or not isinstance(wall, int)
            or not 0 <= wall < 2**63
            or isinstance(counter, bool)
            or not isinstance(counter, int)
            or not 0 <= counter <= MAX_COUNTER
            or not isinstance(replica, bytes)
            or not 0 < len(replica) <= MAX_REPLICA
        ):
            raise MalformedRecordError("malformed timestamp")
        return cls(wall, counter, replica)


class HybridClock:
    """The clock of one replica.

    Args:
        replica: This replica's id (1-32 bytes, e.g. its device key).
        max_drift: How far (seconds) a remote timestamp may run ahead of our
            physical clock before it is refused.
    """

    __slots__ = ("_counter", "_max_drift_ms", "_replica", "_wall")

    def __init__(self, replica: bytes, *, max_drift: float = DEFAULT_MAX_DRIFT) -> None:
        if not isinstance(replica, bytes) or not 0 < len(replica) <= MAX_REPLICA:
            raise IdentityArgumentError("a replica id is 1-32 bytes")
        self._replica = replica
        self._max_drift_ms = to_ms(max_drift)
        self._wall, self._counter = 0, 0

    @property
    def replica(self) -> bytes:
        """This replica's id."""
        return self._replica

    @property
    def last(self) -> Timestamp:
        """The latest timestamp issued or observed."""
        return Timestamp(self._wall, self._counter, self._replica)

    def _bump(self, wall: int, counter: int) -> Timestamp:
        if counter > MAX_COUNTER:
            raise ClockSkewError("hybrid clock counter exhausted")
        self._wall, self._counter = wall, counter
        return Timestamp(wall, counter, self._replica)

    def tick(self, now: float) -> Timestamp:
        """A timestamp for a local event at physical time ``now`` (seconds)."""
        physical = to_ms(now)
        if physical > self._wall:
            return self._bump(physical, 0)
        return self._bump(self._wall, self._counter + 1)

    def observe(self, remote: Timestamp, now: float) -> None:
        """Merge a received timestamp into this clock.

        Raises:
            ClockSkewError: ``remote`` is more than ``max_drift`` ahead of ``now``.
        """
        physical = to_ms(now)
        if remote.wall_ms > physical + self._max_drift_ms:
            raise ClockSkewError("a remote clock is too far ahead")
        wall = max(self._wall, remote.wall_ms, physical)
        if wall == self._wall == remote.wall_ms:
            counter = max(self._counter, remote.counter) + 1
        elif wall == self._wall:
            counter = self._counter + 1
        elif wall == remote.wall_ms:
            counter = remote.counter + 1
        else:
            counter = 0
        self._bump(wall, counter)

    def to_bytes(self) -> bytes:
        """Canonical encoding of the clock state."""
        return canonical_encode(
            {"v": 1, "r": self._replica, "w": self._wall, "c": self._counter,
             "d": self._max_drift_ms}
        )  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> HybridClock:
        """Strictly decode :meth:`to_bytes` output."""
        limits = DecodeLimits(max_size=256, max_depth=1, max_items=16)
        fields = decode_fields(data, "hybrid clock", frozenset({"v", "r", "w", "c", "d"}), limits)
        with strict("hybrid clock"):
            check_version(fields, "hybrid clock")
            replica = fields.get_bytes("r", max_size=MAX_REPLICA)
            wall, counter = fields.get_int("w"), fields.get_int("c", hi=MAX_COUNTER)
            drift = fields.get_int("d")
        if not replica:
            raise MalformedRecordError("malformed hybrid clock: empty replica id")
        clock = cls(replica)
        clock._wall, clock._counter, clock._max_drift_ms = wall, counter, drift
        return clock
