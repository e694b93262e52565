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
from dchat_messaging import SealedEnvelope
from dchat_network import RelayClient, connect
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
