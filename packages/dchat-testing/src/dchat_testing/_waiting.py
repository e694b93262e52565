"""Waiting for something that another process (or task) will make true.

Process tests must never sleep a fixed time or read once and hope: a node that
is slower than usual (a loaded CI machine, a first start that migrates its
database) turns either into a flaky test. :func:`wait_until` polls a
predicate until it holds, treats an exception raised by the predicate as
"not yet" (a status field that is absent before the first certified block, an
API that still refuses connections), and on timeout fails with what it last
saw, so the failure says why rather than only that.

:func:`wait_until_async` is the same for trio tests that drive in-process
shells. Two helpers cover the checks that are about time itself:
:func:`wait_stable` waits until a reading stops changing (a chain that has
halted), and :func:`holds_for` watches that a condition stays true for a
while (it fails at the first reading that breaks it, rather than sleeping and
reading once).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from ._errors import WaitTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("holds_for", "wait_stable", "wait_until", "wait_until_async")

_INTERVAL = 0.05


def _describe(last: object, error: BaseException | None) -> str:
    if error is not None:
        return f"the predicate last raised {type(error).__name__}: {error}"
    return f"the predicate last returned {last!r}"


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 20.0,
    interval: float = _INTERVAL,
    what: str | None = None,
) -> object:
    """Poll ``predicate`` until it returns a true value; return that value.

    Args:
        predicate: Called repeatedly; an exception it raises counts as "not
            yet" until the deadline.
        timeout: Seconds before giving up.
        interval: Seconds between calls.
        what: Words for the failure message (defaults to the predicate's name).

    Raises:
        WaitTimeoutError: ``timeout`` passed; the message carries the last
            value or exception (chained as the cause).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            last, error = predicate(), None
        except Exception as exc:  # "not ready yet" until the deadline
            last, error = None, exc
        if error is None and last:
            return last
        if time.monotonic() >= deadline:
            label = what or getattr(predicate, "__name__", "condition")
            message = f"{label} not met within {timeout}s; {_describe(last, error)}"
            raise WaitTimeoutError(message) from error
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], object],
    *,
    timeout: float = 20.0,
    interval: float = _INTERVAL,
    what: str | None = None,
) -> object:
    """:func:`wait_until` for trio code: sleeps with ``trio.sleep`` (virtual under a MockClock)."""
    deadline = trio.current_time() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            last, error = predicate(), None
        except Exception as exc:
            last, error = None, exc
        if error is None and last:
            return last
        if trio.current_time() >= deadline:
            label = what or getattr(predicate, "__name__", "condition")
            message = f"{label} not met within {timeout}s; {_describe(last, error)}"
            raise WaitTimeoutError(message) from error
        await trio.sleep(interval)


def wait_stable(
    reading: Callable[[], object],
    *,
    quiet: float,
    timeout: float = 20.0,
    interval: float = _INTERVAL,
) -> object:
    """Return ``reading()`` once it has not changed for ``quiet`` seconds.

    Raises:
        WaitTimeoutError: it kept changing for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    value = reading()
    since = time.monotonic()
    while True:
        now = time.monotonic()
        if now - since >= quiet:
            return value
        if now >= deadline:
            raise WaitTimeoutError(f"reading still changing after {timeout}s (last {value!r})")
        time.sleep(interval)
        current = reading()
        if current != value:
            value, since = current, time.monotonic()


def holds_for(
    predicate: Callable[[], object], *, seconds: float, interval: float = _INTERVAL
) -> None:
    """Check that ``predicate`` stays true for ``seconds``; fail at the first false reading.

    Raises:
        WaitTimeoutError: the predicate was false (or raised) at some reading.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            held = predicate()
        except Exception as exc:
            raise WaitTimeoutError(f"condition broke: {type(exc).__name__}: {exc}") from exc
        if not held:
            raise WaitTimeoutError(f"condition stopped holding within {seconds}s")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
