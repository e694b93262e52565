"""The event loop's ordering and the trace's digest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_testing import SimulationError
from dchat_testing.sim import EventLoop, Trace


def test_events_run_in_time_order_and_ties_in_scheduling_order() -> None:
    loop = EventLoop()
    ran: list[str] = []
    loop.call_at(2.0, lambda: ran.append("late"))
    loop.call_at(1.0, lambda: ran.append("first tie"))
    loop.call_at(1.0, lambda: ran.append("second tie"))
    loop.call_later(0.5, lambda: ran.append("early"))
    loop.run_until(10.0)
    assert ran == ["early", "first tie", "second tie", "late"]
    assert loop.now == 10.0
    assert loop.events_run == 4


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=40))
def test_any_schedule_runs_sorted_by_time_then_insertion(times: list[float]) -> None:
    loop = EventLoop()
    ran: list[tuple[float, int]] = []
    for index, when in enumerate(times):
        loop.call_at(when, lambda w=when, i=index: ran.append((w, i)))
    loop.run_until(100.0)
    assert ran == sorted(ran)
    assert len(ran) == len(times)


def test_cancelled_timers_do_not_run_and_events_can_schedule_events() -> None:
    loop = EventLoop()
    ran: list[float] = []
    timer = loop.call_at(1.0, lambda: ran.append(-1.0))
    timer.cancel()
    loop.call_at(2.0, lambda: loop.call_later(3.0, lambda: ran.append(loop.now)))
    loop.run_until(4.0)
    assert ran == []
    assert loop.now == 4.0
    loop.run_until(5.0)
    assert ran == [5.0]


def test_run_until_stops_when_asked_and_the_past_is_closed() -> None:
    loop = EventLoop()
    ran: list[int] = []
    for step in range(10):
        loop.call_at(float(step), lambda s=step: ran.append(s))
    loop.run_until(100.0, stop=lambda: len(ran) == 3)
    assert ran == [0, 1, 2]
    assert loop.now == 2.0
    with pytest.raises(SimulationError):
        loop.call_at(1.0, lambda: None)


def test_trace_digest_depends_on_every_line_and_keeps_a_tail() -> None:
    one, two, three = Trace(keep=2), Trace(keep=2), Trace(keep=2)
    for trace in (one, two, three):
        trace.record(0.5, "a", "x")
        trace.record(1.0, "b", "y")
    three.record(1.5, "c", "z")
    assert one.digest() == two.digest() != three.digest()
    assert three.tail() == ["1.000000 b y", "1.500000 c z"]
    assert three.lines == 3
