"""HeightTimeline: first marks win, costs add up, peaks keep the maximum, finish resets."""

from __future__ import annotations

from dchat_chain.lowlevel import HeightTimeline, HeightTrace, Vote, VoteKind, sent_step
from dchat_crypto import BlsSecretKey


def test_a_height_renders_marks_in_order_and_costs_by_name() -> None:
    timeline = HeightTimeline(10.0)
    timeline.mark("proposed", 10.010)
    timeline.mark("decided", 10.250)
    timeline.mark("proposed", 10.300)  # a later repeat does not move the first
    timeline.cost("engine", 0.004)
    timeline.cost("engine", 0.006)
    timeline.peak("inbox_wait", 0.003)
    timeline.peak("inbox_wait", 0.001)
    line = timeline.finish(7, 1, 3, now=10.5)
    assert line == (
        "height 7 round 1 txs 3 t0=10.0000 total=500 | proposed=10 decided=250 "
        "| engine=10 inbox_wait=3"
    )


def test_finish_starts_the_next_height_empty_at_now() -> None:
    timeline = HeightTimeline(1.0)
    timeline.mark("stored", 1.5)
    timeline.cost("checkpoints", 0.2)
    timeline.finish(1, 0, 0, now=2.0)
    assert timeline.start == 2.0
    assert timeline.finish(2, 0, 0, now=2.1) == "height 2 round 0 txs 0 t0=2.0000 total=100 |  | "


def test_a_broadcast_marks_its_step_only_at_the_current_height() -> None:
    key = BlsSecretKey.from_seed(b"k" * 32)
    prevote = Vote.create(key, "c", VoteKind.PREVOTE, 5, 1, b"h" * 32, 0)
    precommit = Vote.create(key, "c", VoteKind.PRECOMMIT, 5, 0, b"h" * 32, 0)
    assert sent_step(prevote, 5) == "prevote_r1"
    assert sent_step(precommit, 5) == "precommit_r0"
    assert sent_step(prevote, 6) is None
    assert sent_step(b"other", 5) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_trace_records_only_when_enabled() -> None:
    lines: list[str] = []
    clock = Clock()
    trace = HeightTrace(clock, lines.append, enabled=False)
    trace.mark("proposed")
    trace.cost("engine", 1.0)
    trace.flush(1, 0, 0)
    assert lines == []


def test_a_trace_reads_the_clock_times_collections_and_keeps_the_worst_lag() -> None:
    lines: list[str] = []
    clock = Clock()
    trace = HeightTrace(clock, lines.append, enabled=True)
    clock.now = 100.010
    trace.mark("proposed")
    trace.mark("big_queued", at=100.002)
    trace.on_gc("start", {"generation": 2})
    clock.now = 100.014
    trace.on_gc("stop", {"generation": 2})
    trace.lag(0.003)
    trace.lag(0.001)
    clock.now = 100.5
    trace.flush(4, 0, 2)
    assert lines == [
        "height 4 round 0 txs 2 t0=100.0000 total=500 | proposed=10 big_queued=2 "
        "| gc2=4 gc2_max=4 | lag_max=3"
    ]
    trace.flush(5, 0, 0)
    assert lines[1].endswith("lag_max=0")  # the worst lag is per height
