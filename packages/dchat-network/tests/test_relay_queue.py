"""The relay's work queue, sans-IO: authorised work first, anonymous work capped, in turns."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import MailboxId
from dchat_crypto import SigningKey
from dchat_network import (
    RelayHost,
    RelayLimits,
    RelayReply,
    RelayServer,
    relay_session,
    serve_links,
)
from dchat_network.lowlevel import WorkQueue, auth_token, token_hash
from dchat_testing import MemoryMailboxStore, wait_until_async

SERVER = SigningKey.generate()


def test_anonymous_work_past_its_cap_waits_while_authorised_work_runs_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue(slots=8, anonymous=2)
    assert queue.arrive("a1", "10.0.0.9", authorised=False)
    assert queue.arrive("a2", "10.0.0.9", authorised=False)
    assert not queue.arrive("a3", "10.0.0.9", authorised=False)  # the anonymous cap
    assert queue.arrive("honest", "10.0.0.1", authorised=True)  # never behind a3
    assert (queue.running, queue.running_anonymous, queue.waiting) == (3, 2, 1)
    assert queue.finish(authorised=True) == []  # an authorised slot frees no anonymous one
    assert queue.finish(authorised=False) == ["a3"]
    assert (queue.running, queue.running_anonymous, queue.waiting) == (2, 2, 0)


def test_a_freed_slot_goes_to_waiting_authorised_work_before_anonymous_work() -> None:
    queue: WorkQueue[str] = WorkQueue(slots=2, anonymous=2)
    assert queue.arrive("a1", "10.0.0.9", authorised=False)
    assert queue.arrive("a2", "10.0.0.9", authorised=False)
    assert not queue.arrive("a3", "10.0.0.9", authorised=False)
    assert not queue.arrive("h1", "10.0.0.1", authorised=True)  # all slots taken
    assert queue.finish(authorised=False) == ["h1"]  # it arrived last and starts first
    assert queue.finish(authorised=False) == ["a3"]


def test_sources_take_turns_within_a_class_each_in_arrival_order() -> None:
    queue: WorkQueue[str] = WorkQueue(slots=1, anonymous=1)
    assert queue.arrive("first", "10.0.0.5", authorised=False)
    for item in ("x1", "x2", "x3"):
        assert not queue.arrive(item, "10.0.0.9", authorised=False)  # one busy source
    assert not queue.arrive("y1", "10.0.0.7", authorised=False)
    assert not queue.arrive("z1", "2001:db8::1", authorised=False)
    assert not queue.arrive("z2", "2001:db8::1", authorised=False)
    started = [queue.finish(authorised=False)[0] for _ in range(6)]
    assert started == ["x1", "y1", "z1", "x2", "z2", "x3"]
    assert queue.running == 1  # the last one started is still running


def test_a_withdrawn_request_never_starts_and_a_started_one_keeps_its_slot() -> None:
    queue: WorkQueue[str] = WorkQueue(slots=1, anonymous=1)
    assert queue.arrive("running", "s", authorised=False)
    assert not queue.arrive("gave up", "s", authorised=False)
    assert not queue.arrive("next", "s", authorised=False)
    assert queue.withdraw("gave up")
    assert not queue.withdraw("gave up")  # forgotten
    assert queue.finish(authorised=False) == ["next"]
    assert not queue.withdraw("next")  # started: its owner must finish it
    assert queue.finish(authorised=False) == []
    assert (queue.running, queue.waiting) == (0, 0)


def test_sizes_below_one_are_refused_and_the_anonymous_cap_is_at_most_the_slots() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WorkQueue(slots=0, anonymous=1)
    with pytest.raises(ValueError, match="at least 1"):
        WorkQueue(slots=4, anonymous=0)
    assert WorkQueue(slots=4, anonymous=9).anonymous == 4


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), st.sampled_from("abc"), st.booleans()),
        st.tuples(st.just("finish"), st.integers(0, 50), st.booleans()),
        st.tuples(st.just("withdraw"), st.integers(0, 50), st.booleans()),
    ),
    max_size=120,
)


@given(slots=st.integers(1, 5), anonymous=st.integers(1, 5), steps=_steps)
def test_any_sequence_keeps_the_caps_and_leaves_no_slot_idle_while_work_waits(
    slots: int, anonymous: int, steps: list[tuple[str, object, bool]]
) -> None:
    queue: WorkQueue[int] = WorkQueue(slots, anonymous)
    running: dict[int, bool] = {}  # item -> authorised
    waiting: dict[int, bool] = {}
    started_once: set[int] = set()
    for n, (op, arg, authorised) in enumerate(steps):
        if op == "arrive":
            if queue.arrive(n, str(arg), authorised):
                running[n] = authorised
                started_once.add(n)
            else:
                waiting[n] = authorised
        elif op == "finish" and running:
            item = sorted(running)[int(str(arg)) % len(running)]
            for begun in queue.finish(running.pop(item)):
                assert begun not in started_once  # each request starts once
                running[begun] = waiting.pop(begun)
                started_once.add(begun)
        elif op == "withdraw" and waiting:
            item = sorted(waiting)[int(str(arg)) % len(waiting)]
            assert queue.withdraw(item)
            del waiting[item]
        anonymous_running = sum(not a for a in running.values())
        assert (queue.running, queue.running_anonymous) == (len(running), anonymous_running)
        assert queue.running <= slots
        assert queue.running_anonymous <= min(anonymous, slots)
        assert queue.waiting == len(waiting)
        # Work waits only for a reason: no free slot, or (anonymous) its cap.
        if any(waiting.values()):
            assert queue.running == slots
        if waiting:
            assert queue.running == slots or queue.running_anonymous == min(anonymous, slots)


# -- in the host -----------------------------------------------------------------------------


async def test_the_host_hands_a_token_deposit_to_the_worker_ahead_of_waiting_anonymous_work() -> (
    None
):
    # The worker is held busy. Four anonymous links each send one request; with
    # room for one anonymous request in the worker, three wait in the host's
    # queue, and a deposit carrying a registered put token, sent after them,
    # reaches the worker before them (first come, first served it would be last).
    server = RelayServer(MemoryMailboxStore(), lambda e: e[:32] if len(e) >= 32 else None)
    owner, token = SigningKey.generate(), secrets.token_bytes(16)
    box = bytes(MailboxId.derive(owner.public_key.to_bytes()))
    assert server.authorizer.set_tokens(box, [token_hash(token)]) == 1
    reached: list[str] = []
    release = trio.Event()

    async def run(call: Callable[[], RelayReply]) -> RelayReply:
        request = call.args[1]  # type: ignore[attr-defined]  # serve(owner, request, now)
        reached.append(type(request).__name__)
        await release.wait()
        return call()

    host = RelayHost(server, run, trio.current_time, limits=RelayLimits(anonymous_work=1))

    async def anonymous() -> None:
        key = SigningKey.generate()
        async with relay_session(*address, node_key=key) as session:
            await session.pull(bytes(MailboxId.derive(key.public_key.to_bytes())), wait=0)

    async def deposit() -> None:
        async with relay_session(*address) as session:
            (stored,) = await session.put_many([(box, box + b"hello")], [auth_token(token)])
            assert isinstance(stored, bytes)

    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(
                lambda task_status: serve_links(
                    host.handle, "127.0.0.1", 0, node_key=SERVER, task_status=task_status
                )
            )
            async with trio.open_nursery() as clients:
                for _ in range(4):
                    clients.start_soon(anonymous)
                await wait_until_async(lambda: host.queue.waiting == 3, what="three waiting")
                clients.start_soon(deposit)
                await wait_until_async(lambda: len(reached) == 2, what="the deposit run")
                assert reached == ["RelayPull", "RelayPutMany"]
                release.set()
            nursery.cancel_scope.cancel()
    assert reached == ["RelayPull", "RelayPutMany", "RelayPull", "RelayPull", "RelayPull"]
    assert (host.queue.running, host.queue.waiting) == (0, 0)
