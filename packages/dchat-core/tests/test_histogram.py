"""The fixed-bucket histogram engines keep their durations in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import LATENCY_BUCKETS, Histogram


def test_observations_land_in_the_first_bucket_whose_bound_holds_them() -> None:
    histogram = Histogram((0.1, 1.0, 10.0))
    for value in (0.05, 0.1, 0.2, 1.0, 50.0, -3.0):
        histogram.observe(value)
    # 0.1 and 1.0 are inclusive bounds; -3 (a clock stepped back) counts as 0; 50 only in +Inf.
    assert histogram.cumulative() == [(0.1, 3), (1.0, 5), (10.0, 5)]
    assert histogram.count == 6
    assert histogram.sum == pytest.approx(0.05 + 0.1 + 0.2 + 1.0 + 50.0)


def test_the_default_bounds_run_from_milliseconds_to_a_minute() -> None:
    histogram = Histogram()
    assert histogram.bounds == LATENCY_BUCKETS
    assert histogram.cumulative()[-1] == (60.0, 0)


@pytest.mark.parametrize("bounds", [(), (1.0, 1.0), (2.0, 1.0)])
def test_bounds_must_increase(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="increasing"):
        Histogram(bounds)


@given(st.lists(st.floats(min_value=-1e3, max_value=1e3), max_size=50))
def test_cumulative_counts_never_decrease_and_never_pass_the_total(values: list[float]) -> None:
    histogram = Histogram()
    for value in values:
        histogram.observe(value)
    counts = [n for _, n in histogram.cumulative()]
    assert counts == sorted(counts)
    assert counts[-1] == sum(1 for v in values if v <= LATENCY_BUCKETS[-1])
    assert histogram.count == len(values)
