"""Fixtures that start real node processes on loopback, and always stop them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from dchat_core import NodeId
from dchat_crypto import SigningKey
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    Content,
    DeviceAddress,
    DeviceKeys,
    MessagingEngine,
    SealedEnvelope,
)
from dchat_messaging.testing import MemoryMessageStore
from dchat_network import RelayClient, RelayPrekeyBundle, connect
from dchat_node import NodeProcess, free_port

PASSPHRASE = secrets.token_urlsafe(12)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(
        tmp_path / "relay", "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{free_port()}"
    )
    node.start()
    yield node
    node.kill()


@pytest.fixture
def make_user(tmp_path: Path, relay: NodeProcess) -> Iterator[Callable[[str], NodeProcess]]:
    started: list[NodeProcess] = []

    def make(name: str) -> NodeProcess:
        node = NodeProcess(
            tmp_path / name,
            "user",
            passphrase=PASSPHRASE,
            relay=relay.info["link"],
            poll_interval=0.2,
        )
        node.start()
        started.append(node)
        return node

    yield make
    for node in started:
        node.kill()


@pytest.fixture
def deposit(relay: NodeProcess) -> Callable[[SealedEnvelope], None]:
    """Put an envelope straight into its mailbox at ``relay``, as any stranger can."""
    host, port = relay.info["link"].rsplit(":", 1)
    pinned = NodeId.parse(relay.info["node_id"])

    def put(envelope: SealedEnvelope) -> None:
        async def run() -> None:
            key = SigningKey.generate()
            link = await connect(host, int(port), node_key=key, expected_peer=pinned)
            try:
                client = RelayClient()
                request = client.put(bytes(envelope.mailbox), envelope.to_bytes())
                client.receive(await link.request(request))
            finally:
                await link.aclose()

        trio.run(run)

    return put


def _wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"condition not met within {timeout}s")


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """Poll a predicate until it holds; fail the test after a timeout (default 20 s)."""
    return _wait_until


def craft(
    sender: Identity, card: ContactCard, content: Content, *, timeout: float = 20.0
) -> SealedEnvelope:
    """A genuine session message from ``sender`` to ``card``'s primary device.

    It runs the real engine (with an in-memory store) and fetches the
    recipient's prekey bundle from its relay, as any stranger can; the
    recipient's node must have published its prekeys (it does on its first
    mailbox fetch, so this retries until then).
    """
    keys = DeviceKeys(
        sender.identity_id, sender.signing_key, sender.encryption_key, sender.mailbox_id
    )
    store = MemoryMessageStore()
    engine = MessagingEngine(keys, store)
    device = DeviceAddress.primary(card)
    engine.send(content, [device], now=time.time())
    host, port = card.relay.rsplit(":", 1)

    async def fetch() -> bytes:
        link = await connect(host, int(port), node_key=SigningKey.generate())
        try:
            client = RelayClient()
            reply = client.receive(await link.request(client.get_prekeys(bytes(card.mailbox))))
            assert isinstance(reply, RelayPrekeyBundle)
            return reply.bundle
        finally:
            await link.aclose()

    deadline = time.monotonic() + timeout
    while True:
        try:
            bundle = trio.run(fetch)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    engine.bundle_received(device, bundle, now=time.time())
    (entry,) = store.due(float("inf"), 10)
    return SealedEnvelope.from_bytes(entry.envelope)


def craft_control(sender: Identity, card: ContactCard, kind: str, data: bytes) -> SealedEnvelope:
    """A genuine control message (see :func:`craft`)."""
    return craft(sender, card, Content.control(kind, data, now_ms=int(time.time() * 1000)))


@pytest.fixture
def crafted() -> Callable[[Identity, ContactCard, str, bytes], SealedEnvelope]:
    """:func:`craft_control` as a fixture (test modules cannot import conftest)."""
    return craft_control


@pytest.fixture
def crafted_message() -> Callable[[Identity, ContactCard, Content], SealedEnvelope]:
    """:func:`craft` as a fixture."""
    return craft
