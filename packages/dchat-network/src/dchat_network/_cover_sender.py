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
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import trio

from dchat_core import DchatError, RelayAddress

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

__all__ = ("CoverSender",)

_log = logging.getLogger("dchat.cover")


class _Deposit(Protocol):
    @property
    def relay(self) -> str: ...
    @property
    def mailbox(self) -> bytes: ...
    @property
    def envelope(self) -> bytes: ...


_D = TypeVar("_D", bound=_Deposit)


class _Cover(Protocol[_D]):
    def wait(self, now: float) -> float: ...
    def due(self, now: float, home: Sequence[str]) -> Sequence[_D]: ...
    def settled(self, deposits: Sequence[_D], results: Sequence[object]) -> None: ...


class CoverSender(Generic[_D]):
    """Deposits a node's cover envelopes as they fall due (see the module docstring).

    Args:
        cover: The sans-IO book (``wait``, ``due``, ``settled``).
        put: Deposit ``(mailbox, envelope)`` items at the relay at ``host``,
            ``port`` (as :meth:`RelayPool.put_many`); per item its entry id
            or what failed.
        clock: The node's clock.
        home: The home relays (``[NODEID@]HOST:PORT`` or relay addresses).
    """

    def __init__(
        self,
        cover: _Cover[_D],
        put: Callable[[str, int, list[tuple[bytes, bytes]]], Awaitable[list[bytes | str]]],
        clock: Callable[[], float],
        home: Iterable[object],
    ) -> None:
        self._cover, self._put, self._clock = cover, put, clock
        self._home = tuple(str(relay) for relay in home)
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
                for deposit in self._cover.due(self._clock(), self._home):
                    nursery.start_soon(self._deposit, deposit)

    async def _deposit(self, deposit: _D) -> None:
        try:
            relay = RelayAddress.parse(deposit.relay)
            items = [(deposit.mailbox, deposit.envelope)]
            results: list[bytes | str] = await self._put(relay.host, relay.port, items)
        except DchatError as exc:
            _log.info("cover deposit failed: %s", type(exc).__name__)
            results = [type(exc).__name__]
        self._cover.settled([deposit], results)
