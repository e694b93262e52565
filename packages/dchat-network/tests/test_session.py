"""RelaySession: typed requests to a real relay server over a loopback link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from dchat_core import MailboxId, NodeId
from dchat_crypto import SigningKey
from dchat_network import (
    Link,
    LinkClosedError,
    RelayProtocolError,
    RelayServer,
    relay_session,
    serve_links,
)
from dchat_testing import MemoryMailboxStore, MemoryPrekeyStore

SERVER = SigningKey.generate()
WAIT = 10  # generous bound on every wait; the tests finish in milliseconds


def mailbox_of(key: SigningKey) -> bytes:
    return bytes(MailboxId.derive(key.public_key.to_bytes()))


def envelope_for(mailbox: bytes, body: bytes) -> bytes:
    return mailbox + body  # the test's envelope format: mailbox prefix, then anything


@asynccontextmanager
async def relay() -> AsyncIterator[tuple[str, int, list[bytes]]]:
    """A relay on a free loopback port; yields its address and the owners it served."""
    server = RelayServer(
        MemoryMailboxStore(),
        lambda envelope: envelope[:32] if len(envelope) >= 32 else None,
        prekeys=MemoryPrekeyStore(),
    )
    owners: list[bytes] = []

    async def handle(link: Link) -> None:
        owner = bytes(MailboxId.derive(link.peer_key.to_bytes()))
        owners.append(owner)
        while True:
            try:
                data = await link.receive()
            except LinkClosedError:
                return
            await link.send(server.handle(owner, data, trio.current_time()).data)

    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            host, port = await nursery.start(
                lambda task_status: serve_links(
                    handle, "127.0.0.1", 0, node_key=SERVER, task_status=task_status
                )
            )
        yield host, port, owners
        nursery.cancel_scope.cancel()


async def test_put_then_drain_hands_over_every_envelope_and_acknowledges_it() -> None:
    bob = SigningKey.generate()
    box = mailbox_of(bob)
    sent = [envelope_for(box, b"%03d" % i) for i in range(150)]  # more than one batch
    async with relay() as (host, port, _):
        with trio.fail_after(WAIT):
            async with relay_session(host, port) as sender:
                ids = [await sender.put(box, envelope) for envelope in sent]
            assert len(set(ids)) == len(sent)
            got: list[bytes] = []
            batches = 0

            async def handle(envelope: bytes) -> None:
                got.append(envelope)

            async def after() -> None:
                nonlocal batches
                batches += 1

            node = NodeId.derive(SERVER.public_key.to_bytes())
            async with relay_session(host, port, node_key=bob, expected_peer=node) as owner:
                assert await owner.drain(box, handle, after) == len(sent)
                assert await owner.fetch(box) == []  # acknowledged: gone
    assert got == sent
    assert batches == 3  # 64 + 64 + 22


async def test_an_envelope_whose_handler_fails_stays_at_the_relay() -> None:
    bob = SigningKey.generate()
    box = mailbox_of(bob)
    async with relay() as (host, port, _):
        with trio.fail_after(WAIT):
            async with relay_session(host, port) as sender:
                await sender.put(box, envelope_for(box, b"kept"))

            async def crash(envelope: bytes) -> None:
                raise RuntimeError("crashed before the envelope was processed")

            async with relay_session(host, port, node_key=bob) as owner:
                with pytest.raises(RuntimeError):
                    await owner.drain(box, crash)
                assert [e for _, e in await owner.fetch(box)] == [envelope_for(box, b"kept")]


async def test_prekeys_are_published_counted_and_taken() -> None:
    alice = SigningKey.generate()
    box = mailbox_of(alice)
    async with relay() as (host, port, _):
        with trio.fail_after(WAIT):
            async with relay_session(host, port, node_key=alice) as owner:
                assert await owner.count_prekeys(box) == 0
                held = await owner.put_prekeys(
                    box, b"last", [(1, b"one"), (2, b"two")], replace=False
                )
                assert held == 2
            async with relay_session(host, port) as stranger:
                assert await stranger.get_prekeys(box) == b"one"
            async with relay_session(host, port, node_key=alice) as owner:
                assert await owner.count_prekeys(box) == 1


async def test_a_refused_request_raises_and_the_session_keeps_working() -> None:
    alice, bob = SigningKey.generate(), SigningKey.generate()
    async with relay() as (host, port, _):
        with trio.fail_after(WAIT):
            async with relay_session(host, port, node_key=alice) as session:
                with pytest.raises(RelayProtocolError):
                    await session.fetch(mailbox_of(bob))  # not our mailbox
                with pytest.raises(RelayProtocolError):
                    await session.put(mailbox_of(bob), b"too short for its mailbox")
                assert await session.fetch(mailbox_of(alice)) == []


async def test_sessions_without_a_key_prove_a_fresh_one_each_time() -> None:
    box = mailbox_of(SigningKey.generate())
    async with relay() as (host, port, owners):
        with trio.fail_after(WAIT):
            for i in range(3):
                async with relay_session(host, port) as session:
                    await session.put(box, envelope_for(box, bytes([i])))
    assert len(set(owners)) == 3  # the relay cannot link them


async def test_concurrent_requests_on_one_session_each_get_their_own_reply() -> None:
    bob = SigningKey.generate()
    box = mailbox_of(bob)
    results: dict[int, bytes] = {}
    async with relay() as (host, port, _):
        with trio.fail_after(WAIT):
            async with relay_session(host, port) as session:

                async def put(i: int) -> None:
                    results[i] = await session.put(box, envelope_for(box, bytes([i])))

                async with trio.open_nursery() as nursery:
                    for i in range(20):
                        nursery.start_soon(put, i)
    assert len(set(results.values())) == 20
