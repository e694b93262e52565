"""Cover traffic: when a user sends loop and drop messages (Loopix-style), sans-IO.

Theory of operation
-------------------
A relay that watches one user's connection sees when it deposits mail. Cover
traffic hides those times among envelopes that carry nothing, in two
independent Poisson streams (as in Loopix, Piotrowska et al., 2017):

* **drop** messages go to a throwaway mailbox nobody drains (the relay keeps
  them until they expire);
* **loop** messages go back to the sender's own mailbox: each one that does
  not return tells the user that somebody is dropping or delaying its mail
  (an active attack), and each one that returns measures the round trip.

Both rates come from one **budget** in bytes per second: with envelopes of
``size`` bytes, ``rate = fill * budget / size`` envelopes per second, a
``loop_share`` of them loops, the rest drops. Inter-arrival times are
exponential (drawn from the ``rng`` the caller passes: a seeded
:class:`random.Random` in tests, :class:`random.SystemRandom` in a node, so a
relay cannot predict the schedule).

**Real messages replace scheduled slots** (Loopix's payload stream sends a
real message in a slot and a drop only when none waits): each real envelope
the user sends (:meth:`CoverScheduler.real_sent`) cancels the next due drop,
so below the budget the relay sees about the same rate whether the user
writes or not, and real mail costs no bandwidth on top of the cover. Real
mail is never held back for a slot (chat latency matters more here); see
``docs/rationale.md`` for what that leaves visible. Credit for replacement
is capped at one window's worth of drops, so a burst of real mail does not
silence the cover for long afterwards.

**The budget is a hard cap**: bytes sent (cover and real) in any ``window``
seconds never pass ``budget * window`` because of cover. A slot that would
pass it is skipped (counted in ``skipped``); real mail is never blocked,
but once real mail alone fills the window no cover goes out. ``fill`` (0.8
by default) keeps the mean below the cap so that skips, which bend the
Poisson shape, stay rare.

A slot found more than ``window`` seconds late (the host slept) is not
caught up: its stream restarts from ``now`` (the exponential distribution
is memoryless, so the restarted stream is as Poisson as the old one).

Nothing here reads a clock or does I/O: every call takes ``now``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from dchat_core import CallerError

from ._padding import DchatPrivacyError

if TYPE_CHECKING:
    import random

__all__ = (
    "COVER_WINDOW",
    "CoverInputError",
    "CoverPolicy",
    "CoverScheduler",
    "CoverSend",
    "MAX_COVER_BUDGET",
)

COVER_WINDOW: Final = 60.0
"""Seconds over which the budget is a hard cap (by default)."""
MAX_COVER_BUDGET: Final = 100_000
"""The largest budget accepted, bytes per second (100 kB/s, ~190 small envelopes a second:
far past any sane setting, and a node building them spends a third of a core)."""
CoverKind = Literal["loop", "drop"]


class CoverInputError(DchatPrivacyError, CallerError, ValueError):
    """A cover-traffic setting out of range (budget, size, share, fill, window, time)."""


@dataclass(frozen=True, slots=True)
class CoverSend:
    """One cover envelope to send now: its kind, when it was due, its size in bytes."""

    kind: CoverKind
    at: float
    size: int


def _number(value: object, what: str, lo: float, hi: float, *, open_lo: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CoverInputError(f"{what} is a number")
    try:
        number = float(value)  # an int too large for a float raises OverflowError
    except OverflowError:
        raise CoverInputError(f"{what} is out of range") from None
    if not math.isfinite(number) or number > hi or number < lo or (open_lo and number == lo):
        raise CoverInputError(f"{what} is out of range")
    return number


@dataclass(frozen=True, slots=True)
class CoverPolicy:
    """The cover-traffic settings (see the module docstring).

    Args:
        budget: Bytes per second, ``0 < budget <= MAX_COVER_BUDGET``.
        size: Bytes of one cover envelope (the size class it imitates).
        loop_share: The fraction of cover slots that are loops (0..1).
        fill: The mean cover rate as a fraction of the budget (0 < fill <= 1).
        window: Seconds over which the budget is a hard cap.

    Raises:
        CoverInputError: a value out of range.
    """

    budget: float
    size: int
    loop_share: float = 0.5
    fill: float = 0.8
    window: float = COVER_WINDOW

    def __post_init__(self) -> None:
        _number(self.budget, "the budget", 0.0, MAX_COVER_BUDGET, open_lo=True)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise CoverInputError("an envelope size is a positive whole number of bytes")
        _number(self.loop_share, "the loop share", 0.0, 1.0)
        _number(self.fill, "the fill", 0.0, 1.0, open_lo=True)
        _number(self.window, "the window", 0.0, 86400.0, open_lo=True)
        if self.size > self.budget * self.window:
            raise CoverInputError("the budget does not carry one envelope per window")

    @property
    def rate(self) -> float:
        """Cover envelopes per second, loops and drops together."""
        return self.fill * self.budget / self.size

    @property
    def loop_rate(self) -> float:
        """Loop messages per second."""
        return self.rate * self.loop_share

    @property
    def drop_rate(self) -> float:
        """Drop messages per second."""
        return self.rate * (1.0 - self.loop_share)


class CoverScheduler:
    """The loop and drop streams of one user, within one budget (see the module docstring).

    Args:
        policy: Rates, size and budget.
        now: When the streams start.
        rng: The source of the exponential gaps (``expovariate``).
    """

    def __init__(self, policy: CoverPolicy, *, now: float, rng: random.Random) -> None:
        self.policy = policy
        self._rng = rng
        now = _number(now, "a time", 0.0, math.inf)
        self._next: dict[CoverKind, float] = {
            "loop": self._after("loop", now),
            "drop": self._after("drop", now),
        }
        self._sent: deque[tuple[float, int]] = deque()  # (time, bytes) within the window
        self._in_window = 0
        self._credit = 0  # drops real mail may still replace
        self.counters: dict[str, int] = dict.fromkeys(
            ("loops", "drops", "replaced", "skipped", "real", "cover_bytes"), 0
        )
        """Slots sent as loops and drops, replaced by real mail, skipped for the budget;
        real envelopes seen; cover bytes sent."""

    def _after(self, kind: CoverKind, at: float) -> float:
        rate = self.policy.loop_rate if kind == "loop" else self.policy.drop_rate
        return at + self._rng.expovariate(rate) if rate > 0 else math.inf

    def next_at(self) -> float:
        """When the next slot is due (``inf``: never, e.g. no loops and no drops)."""
        return min(self._next.values())

    def due(self, now: float) -> list[CoverSend]:
        """The cover envelopes to send now, in the order they fell due.

        Raises:
            CoverInputError: ``now`` is not a finite, non-negative time.
        """
        now = _number(now, "a time", 0.0, math.inf)
        window = self.policy.window
        out: list[CoverSend] = []
        while (at := self.next_at()) <= now:
            kind: CoverKind = "loop" if self._next["loop"] == at else "drop"
            if at < now - window:  # slept through it: restart this stream from now
                self._next[kind] = self._after(kind, now)
                continue
            self._next[kind] = self._after(kind, at)
            if kind == "drop" and self._credit > 0:
                self._credit -= 1
                self.counters["replaced"] += 1
            elif self._fits(self.policy.size, now):  # counted when it goes: now
                self._record(now, self.policy.size)
                self.counters["loops" if kind == "loop" else "drops"] += 1
                self.counters["cover_bytes"] += self.policy.size
                out.append(CoverSend(kind, at, self.policy.size))
            else:
                self.counters["skipped"] += 1
        return out

    def real_sent(self, size: int, now: float) -> None:
        """A real envelope of ``size`` bytes went out: it takes the next drop's slot.

        Raises:
            CoverInputError: a negative size or a bad time.
        """
        now = _number(now, "a time", 0.0, math.inf)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise CoverInputError("a size is a non-negative whole number of bytes")
        self.counters["real"] += 1
        self._record(now, size)
        cap = max(1, math.ceil(self.policy.drop_rate * self.policy.window))
        if self.policy.drop_rate > 0:
            self._credit = min(cap, self._credit + 1)

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self.policy.window:
            self._in_window -= self._sent.popleft()[1]

    def _fits(self, size: int, at: float) -> bool:
        self._expire(at)
        return self._in_window + size <= self.policy.budget * self.policy.window

    def _record(self, at: float, size: int) -> None:
        self._expire(at)
        self._sent.append((at, size))
        self._in_window += size
