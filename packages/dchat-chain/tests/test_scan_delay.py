"""The background stealth scan's schedule: jittered around the period, seeded-deterministic."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_chain import ChainArgumentError
from dchat_chain.lowlevel import SCAN_JITTER, scan_delay


@given(st.floats(1.0, 86400.0), st.integers(0, 2**32))
def test_every_wait_stays_within_the_jitter_of_the_period(period: float, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        wait = scan_delay(period, rng)
        assert period * (1 - SCAN_JITTER) <= wait <= period * (1 + SCAN_JITTER)


def test_waits_vary_around_the_period_and_repeat_with_the_seed() -> None:
    waits = [scan_delay(600.0, random.Random(7)) for _ in range(3)]
    assert len(set(waits)) == 1  # one seed, one schedule
    rng = random.Random(7)
    schedule = [scan_delay(600.0, rng) for _ in range(2000)]
    assert schedule[0] == waits[0]
    assert len({round(w) for w in schedule}) > 200  # no fixed rhythm to spot
    assert abs(statistics.mean(schedule) - 600.0) < 15  # on average, the configured period
    assert max(schedule) - min(schedule) > 500


def test_a_period_that_is_not_positive_is_refused() -> None:
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ChainArgumentError):
            scan_delay(bad, random.Random(1))
