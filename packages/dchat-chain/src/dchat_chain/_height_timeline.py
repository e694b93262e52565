"""Per-height timelines of a validator's engine task: the bookkeeping, sans-IO.

A validator wants to know where a height's wall time goes. :class:`HeightTimeline`
keeps, for the height in progress, the first time each named step happened
(``mark``: proposal sent, prevote sent, decided, stored, ...), running totals
of named costs (``cost``: time in engine calls, durable writes, garbage
collection) and named peaks (``peak``: longest inbox wait, longest event-loop
lag). :meth:`HeightTimeline.finish` renders the height as one line and starts
the next one at the given time.

Every time is passed in by the caller (seconds on its monotonic clock); this
module reads no clock, so a shell decides how it measures and where the line
goes. :class:`HeightTrace` is what a shell holds: a timeline that records only
when tracing is on (otherwise every method returns at its first line), reads
the shell's ``clock`` when no time is given, times garbage collections from
the interpreter's ``gc`` callback phases, keeps the worst event-loop lag the
shell measured, and hands each finished line to ``emit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._block_commit import VoteKind
from ._consensus_messages import Proposal, Vote

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("HeightTimeline", "HeightTrace", "sent_step")


def sent_step(message: object, height: int) -> str | None:
    """The step a broadcast ``message`` marks at ``height`` (``proposed``, ``prevote_r0``, ...)."""
    if isinstance(message, Proposal) and message.height == height:
        return "proposed"
    if isinstance(message, Vote) and message.height == height:
        name = "prevote" if message.kind is VoteKind.PREVOTE else "precommit"
        return f"{name}_r{message.round}"
    return None


class HeightTimeline:
    """One height's step times, costs and peaks; :meth:`finish` renders and resets."""

    def __init__(self, start: float) -> None:
        self.start = start
        self._marks: list[tuple[str, float]] = []
        self._costs: dict[str, float] = {}

    def mark(self, name: str, at: float) -> None:
        """Note that step ``name`` happened at ``at``; only its first time per height counts."""
        if all(n != name for n, _ in self._marks):
            self._marks.append((name, at))

    def cost(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to this height's total for ``name``."""
        self._costs[name] = self._costs.get(name, 0.0) + seconds

    def peak(self, name: str, seconds: float) -> None:
        """Keep the largest ``seconds`` seen for ``name`` this height."""
        self._costs[name] = max(self._costs.get(name, 0.0), seconds)

    def finish(self, height: int, round_: int, txs: int, now: float) -> str:
        """The finished height as one line (milliseconds); the next height starts at ``now``.

        Marks are relative to the height's start, in the order they happened;
        costs and peaks are sorted by name. The line also carries the absolute
        start ``t0``, so lines of processes sharing a clock can be compared.
        """
        marks = " ".join(f"{n}={(t - self.start) * 1000:.0f}" for n, t in self._marks)
        costs = " ".join(f"{n}={s * 1000:.0f}" for n, s in sorted(self._costs.items()))
        line = (
            f"height {height} round {round_} txs {txs} t0={self.start:.4f} "
            f"total={(now - self.start) * 1000:.0f} | {marks} | {costs}"
        )
        self.start, self._marks, self._costs = now, [], {}
        return line


class HeightTrace:
    """A :class:`HeightTimeline` that records only when ``enabled`` (see the module).

    Args:
        clock: The shell's monotonic clock, in seconds.
        emit: Called with each finished height's line.
        enabled: Whether anything is recorded at all.
    """

    def __init__(
        self, clock: Callable[[], float], emit: Callable[[str], None], *, enabled: bool
    ) -> None:
        self.enabled = enabled
        self._clock, self._emit = clock, emit
        self._timeline = HeightTimeline(clock())
        self._lag_max = 0.0
        self._gc_began = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """A ``gc.callbacks`` hook: collections' durations, by generation (total and longest)."""
        if phase == "start":
            self._gc_began = self._clock()
            return
        took = self._clock() - self._gc_began
        self.cost(f"gc{info['generation']}", took)
        self.peak(f"gc{info['generation']}_max", took)

    def mark(self, name: str, at: float | None = None) -> None:
        """Note that step ``name`` happened (now, or ``at``); the first time per height counts."""
        if self.enabled:
            self._timeline.mark(name, self._clock() if at is None else at)

    def cost(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to this height's total for ``name``."""
        if self.enabled:
            self._timeline.cost(name, seconds)

    def peak(self, name: str, seconds: float) -> None:
        """Keep the largest ``seconds`` seen for ``name`` this height."""
        if self.enabled:
            self._timeline.peak(name, seconds)

    def lag(self, seconds: float) -> None:
        """The event loop ran a task ``seconds`` late; the height's line shows the worst."""
        self._lag_max = max(self._lag_max, seconds)

    def flush(self, height: int, round_: int, txs: int) -> None:
        """Emit the finished height's line and start the next height."""
        if self.enabled:
            line = self._timeline.finish(height, round_, txs, self._clock())
            self._emit(f"{line} | lag_max={self._lag_max * 1000:.0f}")
            self._lag_max = 0.0
