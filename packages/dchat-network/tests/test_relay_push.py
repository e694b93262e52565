"""Push delivery: put_many and pull on the wire, the relay host, mailbox links and the pool."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import pytest
import trio
from hypothesis import given

from dchat_core import MailboxId
from dchat_crypto import SigningKey
from dchat_network import (
    MailboxLink,
    ReconnectPolicy,
    RelayClient,
    RelayHost,
    RelayPool,
    RelayProtocolError,
    RelayReply,
    RelayServer,
    serve_links,
)
from dchat_network.lowlevel import (
    MAX_WAIT_MS,
    RelayBatch,
    RelayPull,
    RelayPutMany,
    RelayStoredMany,
    decode_relay_message,
    encode_relay_message,
)
from dchat_testing import MemoryMailboxStore, hostile_bytes, wait_until_async

SERVER = SigningKey.generate()
WAIT = 15  # bound on every test's trio work; pulls may be held longer, so arrival proves push
FAST = ReconnectPolicy(base=0.01, cap=0.05)


def mailbox_of(key: SigningKey) -> bytes:
    return bytes(MailboxId.derive(key.public_key.to_bytes()))


def envelope_for(mailbox: bytes, body: bytes) -> bytes:
    return mailbox + body  # the test's envelope format: mailbox prefix, then anything


def new_server(quota: int = 1 << 30) -> RelayServer:
    return RelayServer(
        MemoryMailboxStore(), lambda e: e[:32] if len(e) >= 32 else None, quota=quota
    )


# -- the wire ------------------------------------------------------------------------------


def test_put_many_stored_many_and_pull_round_trip_through_the_codec() -> None:
    messages = [
        RelayPutMany(1, ((b"m" * 32, b"env1"), (b"n" * 32, b"env2"))),
        RelayStoredMany(1, (b"i" * 32, "quota")),
        RelayPull(2, b"m" * 32, 64, (b"i" * 32,), 20_000),
        RelayPull(3, b"m" * 32, 1, (), 0),
    ]
    for message in messages:
        assert decode_relay_message(encode_relay_message(message)) == message


@pytest.mark.parametrize(
    "message",
    [
        RelayPutMany(1, ()),  # empty
        RelayPutMany(1, tuple((b"m" * 32, b"e") for _ in range(65))),  # too many
        RelayPutMany(1, tuple((b"m" * 32, b"e" * 90_000) for _ in range(10))),  # > 768 KiB
        RelayPutMany(1, ((b"short", b"e"),)),
        RelayStoredMany(1, (b"not 32 bytes",)),
        RelayStoredMany(1, ("",)),
        RelayPull(1, b"m" * 32, 64, (), MAX_WAIT_MS + 1),
        RelayPull(1, b"m" * 32, 0, (), 0),
        RelayPull(1, b"m" * 32, 64, (b"short",), 0),
    ],
)
def test_out_of_range_push_messages_are_malformed(message: object) -> None:
    with pytest.raises(RelayProtocolError):
        decode_relay_message(encode_relay_message(message))  # type: ignore[arg-type]


@given(hostile_bytes())
def test_hostile_bytes_decode_or_raise_the_protocol_error(data: bytes) -> None:
    with suppress(RelayProtocolError):  # anything else escaping fails the test
        decode_relay_message(data)


# -- the sans-IO server --------------------------------------------------------------------


def test_put_many_answers_each_item_and_names_the_mailboxes_to_wake() -> None:
    server, client = new_server(quota=100), RelayClient()
    a, b = b"A" * 32, b"B" * 32
    items = [(a, envelope_for(a, b"1")), (b, envelope_for(a, b"wrong box")), (a, a + b"x" * 80)]
    reply = server.handle(b"S" * 32, client.put_many(items), 1.0)
    answer = client.receive(reply.data)
    assert isinstance(answer, RelayStoredMany)
    assert isinstance(answer.results[0], bytes)
    assert answer.results[1:] == ("bad_envelope", "quota")
    assert (reply.close, reply.notify) == (False, (a,))  # refusals do not end the link


def test_pull_acknowledges_then_fetches_and_parks_when_empty() -> None:
    server, sender, owner = new_server(), RelayClient(), RelayClient()
    box = b"O" * 32
    server.handle(b"S" * 32, sender.put_many([(box, envelope_for(box, b"1"))]), 1.0)
    first = server.handle(box, owner.pull(box, [], wait_ms=5000), 2.0)
    batch = owner.receive(first.data)
    assert isinstance(batch, RelayBatch)
    assert len(batch.items) == 1
    assert first.park is None
    second = server.handle(box, owner.pull(box, [batch.items[0][0]], wait_ms=5000), 3.0)
    assert second.park is not None  # acknowledged, nothing left: held
    assert server.delivered == 1
    server.handle(b"S" * 32, sender.put_many([(box, envelope_for(box, b"2"))]), 4.0)
    resumed = owner.receive(server.resume(second.park).data)
    assert isinstance(resumed, RelayBatch)
    assert [env for _, env in resumed.items] == [envelope_for(box, b"2")]


def test_a_pull_of_someone_elses_mailbox_is_forbidden_and_ends_the_link() -> None:
    server, client = new_server(), RelayClient()
    reply = server.handle(b"O" * 32, client.pull(b"X" * 32, [], wait_ms=0), 1.0)
    assert reply.close
    with pytest.raises(RelayProtocolError, match="forbidden"):
        client.receive(reply.data)


# -- over links ----------------------------------------------------------------------------


@asynccontextmanager
async def relay(
    server: RelayServer | None = None, port: int = 0, idle: float = 300.0
) -> AsyncIterator[RelayHost]:
    """A relay host on loopback (the store is in memory, so calls run inline)."""

    async def run(call: Callable[[], RelayReply]) -> RelayReply:
        return call()

    host = RelayHost(server or new_server(), run, trio.current_time, idle_timeout=idle)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            bound = await nursery.start(
                lambda task_status: serve_links(
                    host.handle, "127.0.0.1", port, node_key=SERVER, task_status=task_status
                )
            )
        host.address = bound  # type: ignore[attr-defined]
        yield host
        nursery.cancel_scope.cancel()


class Inbox:
    """A mailbox link's handler that records what it was handed."""

    def __init__(self, fail_first: int = 0) -> None:
        self.envelopes: list[bytes] = []
        self.fail = fail_first
        self.changed = trio.Event()

    async def handle(self, batch: list[tuple[bytes, bytes]]) -> None:
        if self.fail:
            self.fail -= 1
            raise RelayProtocolError("the handler could not store the batch")
        self.envelopes += [envelope for _, envelope in batch]
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        """Until ``count`` distinct envelopes arrived (a redelivery is not one more)."""
        while len(set(self.envelopes)) < count:
            await self.changed.wait()


async def test_mail_is_pushed_to_a_standing_link_without_polling() -> None:
    bob, inbox = SigningKey.generate(), Inbox()
    box = mailbox_of(bob)
    async with relay() as host, trio.open_nursery() as nursery:
        h, p = host.address  # type: ignore[attr-defined]
        link = MailboxLink(h, p, bob, inbox.handle, wait=30.0, policy=FAST)
        nursery.start_soon(link.run)
        pool = RelayPool()
        with trio.fail_after(WAIT):  # far less than the pull's 30 s wait: it was pushed
            await wait_until_async(lambda: host.parked, what="the pull held")
            await pool.put_many(h, p, [(box, envelope_for(box, b"hello"))])
            await inbox.wait_for(1)
        assert inbox.envelopes == [envelope_for(box, b"hello")]
        assert link.state == "connected"
        link.stop()
        await pool.aclose()


async def test_a_woken_pull_is_answered_through_the_read_path() -> None:
    # The answer to a parked pull only reads; the node runs it outside the group
    # commit's turn (RelayHost's ``read``), and everything else through ``run``.
    ran: dict[str, list[str]] = {"run": [], "read": []}

    def recorder(path: str) -> Callable[[Callable[[], RelayReply]], Awaitable[RelayReply]]:
        async def call(work: Callable[[], RelayReply]) -> RelayReply:
            ran[path].append(work.func.__name__)  # type: ignore[attr-defined]
            return work()

        return call

    bob, inbox = SigningKey.generate(), Inbox()
    box = mailbox_of(bob)
    host = RelayHost(new_server(), recorder("run"), trio.current_time, read=recorder("read"))
    async with trio.open_nursery() as nursery:
        h, p = await nursery.start(
            lambda task_status: serve_links(
                host.handle, "127.0.0.1", 0, node_key=SERVER, task_status=task_status
            )
        )
        link = MailboxLink(h, p, bob, inbox.handle, wait=30.0, policy=FAST)
        nursery.start_soon(link.run)
        pool = RelayPool()
        with trio.fail_after(WAIT):
            await wait_until_async(lambda: host.parked, what="the pull held")
            await pool.put_many(h, p, [(box, envelope_for(box, b"hello"))])
            await inbox.wait_for(1)
        link.stop()
        await pool.aclose()
        nursery.cancel_scope.cancel()
    assert ran["read"] == ["resume"]
    assert set(ran["run"]) == {"serve"}


async def test_a_burst_larger_than_a_batch_drains_and_is_acknowledged() -> None:
    bob, inbox = SigningKey.generate(), Inbox()
    box = mailbox_of(bob)
    server = new_server()
    async with relay(server) as host, trio.open_nursery() as nursery:
        h, p = host.address  # type: ignore[attr-defined]
        pool = RelayPool()
        sent = [envelope_for(box, b"%04d" % i) for i in range(300)]
        with trio.fail_after(WAIT):
            for start in range(0, len(sent), 64):
                await pool.put_many(h, p, [(box, e) for e in sent[start : start + 64]])
            link = MailboxLink(h, p, bob, inbox.handle, wait=30.0, policy=FAST)
            nursery.start_soon(link.run)
            await inbox.wait_for(len(sent))
            # The last batch's acknowledgement rides the next pull.
            await wait_until_async(lambda: server.delivered == len(sent), what="all acknowledged")
        assert inbox.envelopes == sent
        link.stop()
        await pool.aclose()


async def test_a_batch_the_handler_fails_on_is_handed_over_again() -> None:
    bob, inbox = SigningKey.generate(), Inbox(fail_first=1)
    box = mailbox_of(bob)
    async with relay() as host, trio.open_nursery() as nursery:
        h, p = host.address  # type: ignore[attr-defined]
        pool = RelayPool()
        with trio.fail_after(WAIT):
            await pool.put_many(h, p, [(box, envelope_for(box, b"once"))])
            link = MailboxLink(h, p, bob, inbox.handle, wait=30.0, policy=FAST)
            nursery.start_soon(link.run)
            await inbox.wait_for(1)
        assert inbox.envelopes == [envelope_for(box, b"once")]
        assert link.last_error == "RelayProtocolError"
        link.stop()
        await pool.aclose()


async def test_a_relay_that_goes_away_mid_push_loses_nothing() -> None:
    bob, inbox = SigningKey.generate(), Inbox()
    box = mailbox_of(bob)
    server = new_server()  # its store outlives the listener, like a relay's database
    pool = RelayPool()
    async with trio.open_nursery() as nursery:
        async with relay(server) as host:
            h, p = host.address  # type: ignore[attr-defined]
            link = MailboxLink(h, p, bob, inbox.handle, wait=30.0, policy=FAST)
            nursery.start_soon(link.run)
            with trio.fail_after(WAIT):
                await pool.put_many(h, p, [(box, envelope_for(box, b"before"))])
                await inbox.wait_for(1)
        # The relay is gone: the link fails and retries; mail waits in the store.
        with trio.fail_after(WAIT):
            await wait_until_async(lambda: link.state != "connected", what="the link lost")
        async with relay(server, port=p) as host:
            with trio.fail_after(WAIT):
                await pool.put_many(h, p, [(box, envelope_for(box, b"after"))])
                await inbox.wait_for(2)
            assert link.failures == 0  # reconnected
        link.stop()
    # "before" may come twice (its acknowledgement was to ride the pull the relay
    # never got); receivers deduplicate. Nothing is lost, and the order holds.
    assert list(dict.fromkeys(inbox.envelopes)) == [
        envelope_for(box, b"before"),
        envelope_for(box, b"after"),
    ]
    await pool.aclose()


async def test_the_pool_reuses_one_link_per_relay_and_reopens_a_stale_one() -> None:
    server = new_server()
    box = b"O" * 32
    async with relay(server, idle=0.2) as host:
        h, p = host.address  # type: ignore[attr-defined]
        pool = RelayPool()
        with trio.fail_after(WAIT):
            for i in range(5):
                await pool.put_many(h, p, [(box, envelope_for(box, bytes([i])))])
            assert pool.open_links == 1
            await trio.sleep(0.5)  # the relay closes the link as idle
            await pool.put_many(h, p, [(box, envelope_for(box, b"again"))])
        assert pool.open_links == 1
        assert server.stored == 6
        await pool.aclose()
        assert pool.open_links == 0


async def test_unlinkable_mode_proves_a_fresh_key_per_request() -> None:
    owners: list[bytes] = []
    server = new_server()
    box = b"O" * 32

    async def run(call: Callable[[], RelayReply]) -> RelayReply:
        owners.append(call.args[0])  # type: ignore[attr-defined]
        return call()

    host = RelayHost(server, run, trio.current_time)
    async with trio.open_nursery() as nursery:
        h, p = await nursery.start(
            lambda task_status: serve_links(
                host.handle, "127.0.0.1", 0, node_key=SERVER, task_status=task_status
            )
        )
        with trio.fail_after(WAIT):
            pool = RelayPool(unlinkable=True)
            for i in range(3):
                await pool.put_many(h, p, [(box, envelope_for(box, bytes([i])))])
        assert len(set(owners)) == 3
        nursery.cancel_scope.cancel()


def test_reconnect_delays_grow_with_jitter_up_to_the_cap() -> None:
    policy, rng = ReconnectPolicy(base=0.2, cap=30.0), random.Random(7)
    delays = [policy.delay(n, rng) for n in range(1, 20)]
    assert 0.1 <= delays[0] <= 0.2
    assert all(d <= 30.0 for d in delays)
    assert delays[-1] >= 15.0


def test_links_state_names_the_best_link() -> None:
    from dchat_crypto import SigningKey
    from dchat_network import links_state

    async def handle(batch: list[tuple[bytes, bytes]]) -> None:
        del batch

    links = [MailboxLink("127.0.0.1", 1, SigningKey.generate(), handle) for _ in range(2)]
    assert links_state([], configured=False) == "unreachable"  # nothing to connect to
    assert links_state([], configured=True) == "connecting"  # the first links open
    links[0].state, links[1].state = "waiting", "connecting"
    assert links_state(links, configured=True) == "unreachable"
    links[1].state = "connected"
    assert links_state(iter(links), configured=True) == "connected"
