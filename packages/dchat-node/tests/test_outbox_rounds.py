"""The user node's outbox loop in process, over stand-ins: how often it reads the queue.

A round that stored every entry it read, from a read that saw the whole queue,
leaves nothing due but what a send queues meanwhile, and that send sets the
wake-up: so the loop waits on it instead of reading the queue again at once
(one worker trip per delivery round instead of two). Queue order and the
wake-ups are kept: every entry is deposited once, in order.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import trio
import trio.lowlevel
import trio.testing

from dchat_node.user._delivery import MailDelivery
from dchat_storage import OutboxItem

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class _Outbox:
    """The queue's rules, reduced: everything queued is due and a deposit stores it."""

    def __init__(self) -> None:
        self.queue: list[OutboxItem] = []
        self.reads = 0
        self.read_to_end = False

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        self.reads += 1
        self.read_to_end = len(self.queue) <= limit
        return list(self.queue[:limit])

    def held_for(self, now: float, longest: float) -> float:
        return longest


class _Node(MailDelivery):
    def __init__(self, results: Callable[[int], object]) -> None:
        self.outbox = _Outbox()
        self.deposited_ids: list[bytes] = []
        self.results = results
        self.calls = 0
        self.agent = SimpleNamespace(  # type: ignore[assignment]
            tags=SimpleNamespace(notify=lambda: None),
            receipts_due_at=lambda: None,
            outbox=self.outbox,
            route=lambda batch, now: [(e.mailbox, e.envelope) for e in batch],
            deposited=self._settle,
        )
        self._store = SimpleNamespace(run=self._run, run_grouped=self._run)  # type: ignore[assignment]
        self._clock = SimpleNamespace(now=lambda: 0.0)  # type: ignore[assignment]
        self._config = SimpleNamespace(poll_interval=60.0)  # type: ignore[assignment]
        self.pool = SimpleNamespace(deposit=self._deposit_at_relay)  # type: ignore[assignment]
        self._wake_outbox = trio.Event()
        self.delivered = trio.Event()

    async def keep_guards(self) -> None:
        pass

    async def _run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        await trio.lowlevel.checkpoint()  # a worker trip
        return fn(*args, **kw)

    async def _deposit_at_relay(self, relay: str, items: list[Any]) -> list[object]:
        await trio.sleep(0.01)  # the relay's answer
        self.calls += 1
        return [self.results(self.calls) for _ in items]

    def _settle(self, batch: Sequence[OutboxItem], results: Sequence[object], now: float) -> int:
        stored = [e for e, r in zip(batch, results, strict=True) if isinstance(r, bytes)]
        self.deposited_ids += [e.message_id for e in stored]
        self.outbox.queue = [e for e in self.outbox.queue if e not in stored]
        self.delivered.set()
        self.delivered = trio.Event()
        return len(batch) - len(stored)

    async def send(self, n: int) -> None:
        mid = n.to_bytes(16, "big")
        self.outbox.queue.append(OutboxItem(mid, "relay-1", b"m" * 16, b"e" * 100, 0, 0.0))
        self._wake_outbox.set()  # what a send does once its commit is durable


async def test_a_round_that_stored_all_it_read_waits_for_the_next_wake_up() -> None:
    node = _Node(lambda _: b"stored")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.run_outbox)
            await trio.testing.wait_all_tasks_blocked()
            assert node.outbox.reads == 1  # the start: an empty queue
            for n in range(3):
                delivered = node.delivered
                await node.send(n)
                await delivered.wait()
                await trio.testing.wait_all_tasks_blocked()
            await node.send(3)  # two queued during one deposit: both go in the next round
            await node.send(4)
            while len(node.deposited_ids) < 5:
                await node.delivered.wait()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert node.deposited_ids == [n.to_bytes(16, "big") for n in range(5)]
    assert node.outbox.reads == 1 + 3 + 1  # one read per round, none that finds nothing


async def test_a_round_with_a_refused_entry_reads_the_queue_again_at_once() -> None:
    node = _Node(lambda call: "pow" if call == 1 else b"stored")  # the first deposit refused
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.run_outbox)
            await trio.testing.wait_all_tasks_blocked()
            await node.send(0)
            while not node.deposited_ids:
                await node.delivered.wait()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert node.calls == 2  # refused, then (still due: re-read at once) stored
    assert node.outbox.reads == 1 + 2  # the start, the refused round, the round that stored
