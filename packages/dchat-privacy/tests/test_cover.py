"""The cover-traffic scheduler: rates, exponential gaps, the budget cap, real mail in slots.

Every random draw comes from a seeded ``random.Random``, so each statistical
check has one fixed outcome (no flakes); the bounds are set so a correct
scheduler passes them for almost every seed, and a wrong one (periodic gaps,
double the rate, an uncapped burst) fails them.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_privacy.lowlevel import CoverInputError, CoverPolicy, CoverScheduler, CoverSend

SIZE = 1000


def _run(scheduler: CoverScheduler, until: float) -> list[CoverSend]:
    """Call the scheduler exactly when each slot falls due, up to ``until``."""
    sent: list[CoverSend] = []
    while (at := scheduler.next_at()) <= until:
        sent += scheduler.due(at)
    return sent


def test_rates_follow_the_budget_and_the_loop_share() -> None:
    policy = CoverPolicy(budget=2000.0, size=SIZE, loop_share=0.25, fill=0.5)
    assert policy.rate == pytest.approx(1.0)  # 0.5 * 2000 B/s / 1000 B
    scheduler = CoverScheduler(policy, now=0.0, rng=random.Random(1))
    duration = 20_000.0
    sent = _run(scheduler, duration)
    loops = sum(s.kind == "loop" for s in sent)
    drops = sum(s.kind == "drop" for s in sent)
    # Poisson counts: mean 5000 and 15000, standard deviations 71 and 122; 5 sigma.
    assert abs(loops - 5000) < 5 * math.sqrt(5000)
    assert abs(drops - 15000) < 5 * math.sqrt(15000)
    assert scheduler.counters["skipped"] == 0  # half the budget: the cap never bound
    assert scheduler.counters["cover_bytes"] == SIZE * len(sent)
    assert sum(s.size for s in sent) / duration <= policy.budget


def _ks_exponential(gaps: list[float], rate: float) -> float:
    """Kolmogorov-Smirnov distance between the gaps and Exp(rate)."""
    gaps = sorted(gaps)
    n = len(gaps)
    return max(
        max((i + 1) / n - (1 - math.exp(-rate * g)), (1 - math.exp(-rate * g)) - i / n)
        for i, g in enumerate(gaps)
    )


def test_gaps_between_loops_are_exponential() -> None:
    policy = CoverPolicy(budget=4000.0, size=SIZE, loop_share=0.5, fill=0.5)
    scheduler = CoverScheduler(policy, now=0.0, rng=random.Random(7))
    loops = [s.at for s in _run(scheduler, 10_000.0) if s.kind == "loop"]
    gaps = [b - a for a, b in itertools.pairwise(loops)]
    n = len(gaps)
    assert n > 5000
    # KS at the 1% level: 1.63 / sqrt(n). A periodic or uniform schedule is far off.
    assert _ks_exponential(gaps, policy.loop_rate) < 1.63 / math.sqrt(n)
    mean = sum(gaps) / n
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (n - 1))
    assert sd / mean == pytest.approx(1.0, abs=0.05)  # exponential: coefficient of variation 1
    # Memoryless: a gap is as long after a short gap as after a long one.
    after_short = [b for a, b in itertools.pairwise(gaps) if a < mean]
    after_long = [b for a, b in itertools.pairwise(gaps) if a >= mean]
    assert sum(after_short) / len(after_short) == pytest.approx(mean, rel=0.06)
    assert sum(after_long) / len(after_long) == pytest.approx(mean, rel=0.06)


def test_a_uniform_schedule_fails_the_exponential_check() -> None:
    """The KS check above can fail: gaps drawn uniformly with the same mean are refused."""
    rng = random.Random(7)
    gaps = [rng.uniform(0, 1.0) for _ in range(5000)]
    assert _ks_exponential(gaps, 2.0) > 1.63 / math.sqrt(len(gaps))


def _window_bytes(events: list[tuple[float, int]], end: float, window: float) -> int:
    return sum(size for t, size in events if end - window < t <= end)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    fill=st.floats(0.5, 1.0),
    real_rate=st.floats(0.0, 2.0),
)
def test_cover_never_pushes_a_window_over_the_budget(
    seed: int, fill: float, real_rate: float
) -> None:
    window = 10.0
    policy = CoverPolicy(budget=1500.0, size=SIZE, fill=fill, window=window)
    rng = random.Random(seed)
    scheduler = CoverScheduler(policy, now=0.0, rng=random.Random(seed + 1))
    events: list[tuple[float, int]] = []  # every send, cover and real, with its time
    cover_times: list[float] = []
    now, real_at = 0.0, rng.expovariate(real_rate) if real_rate else math.inf
    while now < 600.0:
        now = min(scheduler.next_at(), real_at)
        if now == real_at:
            size = rng.choice((SIZE, 4000))
            scheduler.real_sent(size, now)
            events.append((now, size))
            real_at = now + rng.expovariate(real_rate)
        for send in scheduler.due(now):
            events.append((now, send.size))
            cover_times.append(now)
    cap = policy.budget * window
    for t in cover_times:  # each cover send fit the window that ends with it
        assert _window_bytes(events, t, window) <= cap


def test_at_full_fill_the_cap_binds_and_skips_are_counted() -> None:
    policy = CoverPolicy(budget=1000.0, size=SIZE, fill=1.0, window=5.0)
    scheduler = CoverScheduler(policy, now=0.0, rng=random.Random(3))
    sent = _run(scheduler, 2000.0)
    assert scheduler.counters["skipped"] > 0  # bursts above 5 per 5 s were cut
    times = [s.at for s in sent]
    assert all(_window_bytes([(t, SIZE) for t in times], t, 5.0) <= 5 * SIZE for t in times)


def test_real_mail_takes_the_next_drop_slots_and_leaves_loops_alone() -> None:
    policy = CoverPolicy(budget=2000.0, size=SIZE, loop_share=0.5, fill=0.5)
    quiet = CoverScheduler(policy, now=0.0, rng=random.Random(5))
    busy = CoverScheduler(policy, now=0.0, rng=random.Random(5))  # the same slots
    for i in range(10):
        busy.real_sent(SIZE, 0.01 * i)
    quiet_sent, busy_sent = _run(quiet, 100.0), _run(busy, 100.0)
    assert busy.counters["replaced"] == 10
    assert busy.counters["real"] == 10
    quiet_drops = [s.at for s in quiet_sent if s.kind == "drop"]
    busy_drops = [s.at for s in busy_sent if s.kind == "drop"]
    assert busy_drops == quiet_drops[10:]  # the first ten drop slots carried the real mail
    assert [s for s in busy_sent if s.kind == "loop"] == [s for s in quiet_sent if s.kind == "loop"]


def test_replacement_credit_is_capped_at_a_window_of_drops() -> None:
    policy = CoverPolicy(budget=2000.0, size=SIZE, loop_share=0.0, fill=0.5, window=10.0)
    scheduler = CoverScheduler(policy, now=0.0, rng=random.Random(9))
    for i in range(1000):  # a burst of real mail at the start
        scheduler.real_sent(10, i * 0.001)
    sent = _run(scheduler, 200.0)
    assert scheduler.counters["replaced"] == 10  # one window of drops at 1/s
    assert len(sent) > 150  # then the cover resumes


def test_a_host_that_slept_does_not_burst_its_missed_slots() -> None:
    policy = CoverPolicy(budget=2000.0, size=SIZE, fill=0.5, window=10.0)
    scheduler = CoverScheduler(policy, now=0.0, rng=random.Random(11))
    woke = scheduler.due(10_000.0)  # ten thousand slots missed
    assert len(woke) <= 20  # at most the window's budget (20 kB), not a catch-up
    assert scheduler.next_at() > 10_000.0
    assert scheduler.counters["skipped"] < 20  # the missed slots were not walked one by one


def test_no_loops_when_the_loop_share_is_zero() -> None:
    scheduler = CoverScheduler(
        CoverPolicy(budget=1000.0, size=SIZE, loop_share=0.0), now=0.0, rng=random.Random(1)
    )
    assert {s.kind for s in _run(scheduler, 500.0)} == {"drop"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"budget": 0.0},
        {"budget": -5.0},
        {"budget": math.nan},
        {"budget": math.inf},
        {"budget": True},
        {"budget": "100"},
        {"budget": 200_000.0},
        {"budget": 10**400},  # too large for a float: still a typed error
        {"size": 0},
        {"size": 2.5},
        {"loop_share": 1.5},
        {"fill": 0.0},
        {"window": 0.0},
        {"budget": 10.0, "window": 60.0},  # 600 B per window: not one 1000-byte envelope
    ],
)
def test_bad_settings_are_typed_errors(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"budget": 1000.0, "size": SIZE, **kwargs}
    with pytest.raises(CoverInputError):
        CoverPolicy(**args)  # type: ignore[arg-type]


def test_bad_times_and_sizes_are_typed_errors() -> None:
    scheduler = CoverScheduler(CoverPolicy(budget=1000.0, size=SIZE), now=0.0, rng=random.Random(1))
    for bad in (math.nan, -1.0, math.inf, 10**400):
        with pytest.raises(CoverInputError):
            scheduler.due(bad)
    with pytest.raises(CoverInputError):
        scheduler.real_sent(-1, 1.0)
    with pytest.raises(CoverInputError):
        CoverScheduler(CoverPolicy(budget=1000.0, size=SIZE), now=math.nan, rng=random.Random())
