"""CoverSender: deposits what the cover book says is due, through the one put, in parallel."""

from __future__ import annotations

import math
from dataclasses import dataclass

import trio

from dchat_core import DchatError
from dchat_network.lowlevel import CoverSender


@dataclass(frozen=True)
class Deposit:
    relay: str
    mailbox: bytes
    envelope: bytes


class Book:
    """A schedule of one deposit every ``every`` seconds while ``on``."""

    def __init__(self, every: float) -> None:
        self.every, self.on, self.next = every, True, every
        self.made = 0
        self.results: list[tuple[str, object]] = []
        self.homes: list[list[str]] = []

    def wait(self, now: float) -> float:
        return max(0.0, self.next - now) if self.on else math.inf

    def due(self, now: float, home: list[str]) -> list[Deposit]:
        self.homes.append(list(home))
        out = []
        while self.on and self.next <= now:
            relay = {2: "dead:1", 5: "no address"}.get(self.made, home[0])  # 3rd hangs
            out.append(Deposit(relay, b"m" * 32, bytes([len(out)]) * 10))
            self.made += 1
            self.next += self.every
        return out

    def settled(self, deposits: list[Deposit], results: list[object]) -> None:
        self.results += [(d.relay, r) for d, r in zip(deposits, results, strict=True)]


async def test_deposits_fall_due_go_through_put_and_are_settled(autojump_clock: object) -> None:
    book = Book(every=2.0)
    puts: list[tuple[str, float]] = []

    async def put(host: str, port: int, items: list[tuple[bytes, bytes]]) -> list[bytes | str]:
        relay = f"{host}:{port}"
        puts.append((relay, trio.current_time()))
        if relay == "dead:1":
            await trio.sleep(10)  # a dead relay times out ...
            raise DchatError("down")
        return [b"entry"] * len(items)

    sender = CoverSender(book, put, trio.current_time, ["home:1"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        await trio.sleep(11.0)
        assert [round(t) for _, t in puts] == [2, 4, 6, 8, 10]  # the dead one delays nothing
        book.on = False
        sender.wake()
        await trio.sleep(100.0)  # off: nothing more
        assert len(puts) == 5
        book.on, book.next = True, trio.current_time() + 1.0
        sender.wake()  # on again: the schedule is read at once
        await trio.sleep(1.5)
        assert len(book.results) == 6  # the 6th deposit (a bad address): no put
        assert book.results[-1] == ("no address", "InvalidRelayAddressError")
        await trio.sleep(2.0)
        assert len(puts) == 6
        nursery.cancel_scope.cancel()
    assert ("home:1", b"entry") in book.results
    assert ("dead:1", "DchatError") in book.results
    assert {tuple(h) for h in book.homes} == {("home:1",)}
