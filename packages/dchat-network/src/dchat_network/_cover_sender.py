"""A user node's cover traffic in trio: deposit loop and drop envelopes when they fall due.

Theory of operation
-------------------
:class:`CoverSender` is the I/O half of cover traffic; what to send and
when is the caller's sans-IO book (``dchat_messaging``'s ``CoverTraffic``),
reached through three calls: ``wait(now)`` (seconds until there is work,
``inf`` while cover is off), ``due(now, home)`` (the deposits to make now)
and ``settled(deposits, results)``. Each deposit goes through ``put``, the
one call into the delivery path (the node passes its pooled
``RelayPool.put_many``, or whatever route real mail takes, so cover and
real mail leave the same way); each deposit runs as a task of its own
(bounded by ``put``'s own timeout), so a dead relay delays no other deposit
and no later slot. :meth:`CoverSender.wake` makes it re-read
the schedule (cover turned on or off).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import trio

from dchat_core import DchatError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

__all__ = ("CoverSender",)

_log = logging.getLogger("dchat.cover")


class _Deposit(Protocol):
    @property
    def relay(self) -> str: ...
    @property
    def mailbox(self) -> bytes: ...
    @property
    def envelope(self) -> bytes: ...


class _Cover(Protocol):
    def wait(self, now: float) -> float: ...
    def due(self, now: float, home: Sequence[str]) -> Sequence[_Deposit]: ...
    def settled(self, deposits: Sequence[_Deposit], results: Sequence[object]) -> None: ...


class CoverSender:
    """Deposits a node's cover envelopes as they fall due (see the module docstring).

    Args:
        cover: The sans-IO book (``wait``, ``due``, ``settled``).
        put: Deposit ``(mailbox, envelope)`` items at a relay (``host:port``);
            per item its entry id or what failed.
        clock: The node's clock.
        home: The home relays (``host:port``), read at each round.
    """

    def __init__(
        self,
        cover: _Cover,
        put: Callable[[str, list[tuple[bytes, bytes]]], Awaitable[list[bytes | str]]],
        clock: Callable[[], float],
        home: Callable[[], Sequence[str]],
    ) -> None:
        self._cover, self._put, self._clock, self._home = cover, put, clock, home
        self._wake = trio.Event()

    def wake(self) -> None:
        """Re-read the schedule now (cover turned on, off, or to another budget)."""
        self._wake.set()

    async def run(self) -> None:
        """Send cover forever (idle while it is off)."""
        async with trio.open_nursery() as nursery:  # deposits outlive their round
            while True:
                self._wake = trio.Event()
                wait = self._cover.wait(self._clock())
                if wait > 0:
                    with trio.move_on_after(wait):  # inf while cover is off: until woken
                        await self._wake.wait()
                for deposit in self._cover.due(self._clock(), self._home()):
                    nursery.start_soon(self._deposit, deposit)

    async def _deposit(self, deposit: _Deposit) -> None:
        try:
            results: list[bytes | str] = await self._put(
                deposit.relay, [(deposit.mailbox, deposit.envelope)]
            )
        except DchatError as exc:
            _log.info("cover deposit failed: %s", type(exc).__name__)
            results = [type(exc).__name__]
        self._cover.settled([deposit], results)
