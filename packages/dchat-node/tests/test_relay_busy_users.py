"""Real processes: a user node's outbox honours a relay's ``busy`` answers and loses nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dchat_node import NodeProcess, free_port
from dchat_testing import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[NodeProcess]:
    """A relay that takes 5 deposits a second from any link or source (the users' ``relay``)."""
    data_dir = tmp_path / "relay"
    data_dir.mkdir(mode=0o700)
    limits = "link_puts = 5.0\nsource_puts = 5.0\nburst = 1.0\n"
    (data_dir / "dchat.toml").write_text("[node.relay_limits]\n" + limits)
    node = NodeProcess(
        data_dir, "relay", passphrase=secrets.token_urlsafe(12), listen=f"127.0.0.1:{free_port()}"
    )
    node.start()
    yield node
    node.kill()


def busy_answers(relay: NodeProcess) -> float:
    headers = {"Authorization": f"Bearer {relay.info['token']}"}
    text = httpx.get(relay.info["url"] + "/metrics", headers=headers, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "dchat_relay_refusals_total" and sample.labels["code"] == "busy_rate"
    )


def test_sixty_sends_through_a_throttled_relay_arrive_in_order_once_each(
    relay: NodeProcess, user_pair: tuple[NodeProcess, NodeProcess]
) -> None:
    alice, bob = user_pair
    texts = [f"message {i:02d}" for i in range(60)]
    with alice.client() as a, bob.client() as b:
        for text in texts:
            a.send("bob", text)

        def inbound() -> list[str]:
            return [m.text for m in b.messages(limit=1000) if m.direction == "in"]

        wait_until(lambda: len(inbound()) >= 60, timeout=90, what="all 60 delivered")
        assert inbound() == texts  # in order, none twice, none lost
    assert busy_answers(relay) > 0  # the relay did push back, and the outbox waited
