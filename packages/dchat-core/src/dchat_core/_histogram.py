"""A fixed-bucket histogram of observations, for engines that measure durations.

Theory of operation. Engines are sans-IO: they never read a clock, so a
duration they measure is the difference of two times they were handed (an
envelope's queue time and the ``now`` of the call that settled it). They keep
the distribution in a :class:`Histogram`: a count per bucket, the number of
observations and their sum, all updated in O(buckets) without allocating.
Nothing here knows about Prometheus; a node's metrics endpoint reads
:meth:`Histogram.cumulative` at scrape time and writes it out in the
exposition format, so the engines carry no metrics library and keep no second
copy of their figures.

Bucket bounds are upper bounds, inclusive (``value <= bound``), in increasing
order; an observation above the last bound is counted only in
:attr:`Histogram.count` (the ``+Inf`` bucket). A negative value (a clock that
stepped backwards between the two times) is counted as 0.
"""

from __future__ import annotations

import bisect
import itertools
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("LATENCY_BUCKETS", "Histogram")

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Default bounds in seconds: 5 ms (a local relay) to a minute (retries after an outage)."""


class Histogram:
    """Counts observations into buckets with fixed upper bounds.

    Args:
        bounds: Increasing upper bounds (inclusive); default :data:`LATENCY_BUCKETS`.

    Raises:
        ValueError: ``bounds`` is empty or not strictly increasing.
    """

    __slots__ = ("_counts", "bounds", "count", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        if not bounds or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError("histogram bounds must be a non-empty increasing sequence")
        self.bounds: tuple[float, ...] = tuple(float(b) for b in bounds)
        self._counts = [0] * len(self.bounds)
        self.count = 0
        """Observations so far (the ``+Inf`` bucket)."""
        self.sum = 0.0
        """Their sum."""

    def observe(self, value: float) -> None:
        """Count one observation (a negative one as 0)."""
        value = max(0.0, value)
        i = bisect.bisect_left(self.bounds, value)
        if i < len(self._counts):
            self._counts[i] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[float, int]]:
        """``(bound, observations <= bound)`` for each bound, in order (without ``+Inf``)."""
        total, out = 0, []
        for bound, n in zip(self.bounds, self._counts, strict=True):
            total += n
            out.append((bound, total))
        return out
