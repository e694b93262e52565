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
goes.
"""

from __future__ import annotations

from ._block_commit import VoteKind
from ._consensus_messages import Proposal, Vote

__all__ = ("HeightTimeline", "sent_step")


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
