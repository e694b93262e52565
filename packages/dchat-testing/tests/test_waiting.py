"""The one waiting helper: polls, treats exceptions as "not yet", fails saying what it saw."""

from __future__ import annotations

import itertools

import pytest
import trio

from dchat_testing import (
    AutojumpClock,
    WaitTimeoutError,
    holds_for,
    wait_stable,
    wait_until,
    wait_until_async,
)


def test_returns_the_first_true_value() -> None:
    readings = iter([0, None, {"height": 3}])
    assert wait_until(lambda: next(readings), interval=0) == {"height": 3}


def test_an_exception_means_not_yet() -> None:
    calls = itertools.count()

    def flaky() -> bool:
        if next(calls) < 2:
            raise KeyError("proof_valid")  # the field is absent before the first block
        return True

    assert wait_until(flaky, interval=0) is True


def test_timeout_says_what_was_last_seen() -> None:
    with pytest.raises(WaitTimeoutError, match=r"balance not met within 0.05s.*returned 7") as info:
        wait_until(lambda: _Falsy(7), timeout=0.05, what="balance")
    assert isinstance(info.value, AssertionError)  # pytest reports it as a failure


class _Falsy:
    def __init__(self, value: int) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return str(self.value)


def test_timeout_chains_the_last_exception() -> None:
    def broken() -> bool:
        raise ConnectionRefusedError("not listening yet")

    with pytest.raises(WaitTimeoutError, match="ConnectionRefusedError") as info:
        wait_until(broken, timeout=0.05)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_wait_stable_returns_once_the_reading_settles() -> None:
    readings = iter([1, 2, 3])
    assert wait_stable(lambda: next(readings, 3), quiet=0.05, interval=0.01) == 3


def test_wait_stable_fails_on_a_reading_that_keeps_changing() -> None:
    counter = itertools.count()
    with pytest.raises(WaitTimeoutError, match="still changing"):
        wait_stable(lambda: next(counter), quiet=0.5, timeout=0.1, interval=0.01)


def test_holds_for_fails_at_the_first_false_reading() -> None:
    readings = iter([True, True, False])
    with pytest.raises(WaitTimeoutError, match="stopped holding"):
        holds_for(lambda: next(readings, True), seconds=5.0, interval=0.0)
    holds_for(lambda: True, seconds=0.05, interval=0.01)


def test_the_async_variant_waits_in_virtual_time() -> None:
    clock = AutojumpClock()
    ticks = itertools.count()

    async def main() -> None:
        assert await wait_until_async(lambda: next(ticks) >= 3, interval=10.0, timeout=60.0) is True
        assert trio.current_time() == pytest.approx(30.0)
        with pytest.raises(WaitTimeoutError, match="never"):
            await wait_until_async(lambda: False, timeout=60.0, what="never")

    trio.run(main, clock=clock.trio_clock)
