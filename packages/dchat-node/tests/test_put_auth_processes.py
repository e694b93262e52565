"""Real processes: put authorization against a live relay.

The relay asks every stranger's deposit for proof of work (``pow_free_mailbox
= 0``: as if the recipient's mailbox were under a flood already). Two user
nodes that are each other's contacts exchange put tokens with their first
messages and afterwards deposit with them; a flooder without a token is
answered ``pow`` (a typed refusal carrying the challenge) and stores almost
nothing, while the contact's messages during the flood all arrive, in order.
Once the recipient removes the contact, its tokens leave the relay and its
next deposit pays work like a stranger's.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dchat_identity import ContactCard
from dchat_node import NodeProcess, free_port
from dchat_sdk import RemoteClient
from dchat_testing import wait_until

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("_abuse_driver.py")
LIMITS = "pow_free_mailbox = 0.0\npow_min_bits = 8\npow_max_bits = 12\n"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[NodeProcess]:
    """A relay that asks strangers for 8+ bits of work on every deposit (the users' ``relay``)."""
    data_dir = tmp_path / "relay"
    data_dir.mkdir(mode=0o700)
    (data_dir / "dchat.toml").write_text("[node.relay_limits]\n" + LIMITS)
    node = NodeProcess(
        data_dir, "relay", passphrase=secrets.token_urlsafe(12), listen=f"127.0.0.1:{free_port()}"
    )
    node.start()
    yield node
    node.kill()


def counters(relay: NodeProcess, name: str, label: str) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {relay.info['token']}"}
    text = httpx.get(relay.info["url"] + "/metrics", headers=headers, timeout=10).text
    return {
        sample.labels[label]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def gauge(relay: NodeProcess, name: str) -> float:
    headers = {"Authorization": f"Bearer {relay.info['token']}"}
    text = httpx.get(relay.info["url"] + "/metrics", headers=headers, timeout=10).text
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
    return values[0] if values else -1.0


def test_contacts_deposit_with_tokens_while_a_tokenless_flood_is_refused_with_pow(
    relay: NodeProcess, user_pair: tuple[NodeProcess, NodeProcess]
) -> None:
    alice, bob = user_pair
    with alice.client() as a, bob.client() as b:

        def inbound(client: RemoteClient) -> list[str]:
            return [m.text for m in client.messages(limit=1000) if m.direction == "in"]

        # First contact: no token yet, so each first message pays the work the relay asks.
        a.send("bob", "hello bob")
        wait_until(lambda: inbound(b) == ["hello bob"], timeout=60, what="bob got hello")
        b.send("alice", "hello alice")
        wait_until(lambda: inbound(a) == ["hello alice"], timeout=60, what="alice got hello")
        auth = counters(relay, "dchat_relay_put_authorizations_total", "kind")
        assert auth.get("work", 0) >= 2
        assert auth.get("free", 0) == 0  # nothing is free on this relay
        # Each side registered the token it issued once its mailbox link synced (at the
        # latest when its held pull returns), and each of its 3 live tags' token (the
        # other holds its tag secret: section 38) on the tag's own link.
        registered = lambda: gauge(relay, "dchat_relay_put_tokens") >= 2 + 2 * 3  # noqa: E731
        wait_until(registered, timeout=60, what="tokens")

        box = ContactCard.from_text(b.card()).mailbox
        host, port = relay.info["link"].rsplit(":", 1)
        command = [sys.executable, str(DRIVER), "flood", host, port, "127.0.0.2"]
        command += ["--links", "2", "--victim", bytes(box).hex(), "--seconds", "6"]
        flooder = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert flooder.stdout is not None
        assert flooder.stdin is not None
        assert flooder.stdout.readline() == "ready\n"
        flooder.stdin.write("go\n")
        flooder.stdin.close()
        texts = [f"during the flood {i:02d}" for i in range(20)]
        for text in texts:
            a.send("bob", text)
        with flooder.stdout:
            out = flooder.stdout.read()
        assert flooder.wait(timeout=120) == 0
        wait_until(lambda: len(inbound(b)) >= 21, timeout=90, what="all 20 delivered")
        assert inbound(b) == ["hello bob", *texts]  # in order, none lost, none twice

    flood = json.loads(out)
    print(f"\nflood of bob's mailbox without a token: {flood}")
    assert flood["pow"] > 0
    assert flood.get("stored", 0) == 0  # every tokenless deposit needs work here
    assert set(flood) <= {"pow", "busy_rate"}  # typed answers only
    auth = counters(relay, "dchat_relay_put_authorizations_total", "kind")
    print(f"relay put authorizations: {auth}")
    assert auth["token"] >= 10  # alice's later messages went with bob's token
    assert auth["refused"] >= flood["pow"]

    # Bob removes alice: the token he gave her leaves the relay, and so do the tokens of
    # his tags she writes to (muted: still drained), so her next deposit pays work like a
    # stranger's and arrives as a message request.
    with alice.client() as a, bob.client() as b:
        held = gauge(relay, "dchat_relay_put_tokens")
        b.remove_contact("alice")
        revoked = lambda: gauge(relay, "dchat_relay_put_tokens") <= held - 4  # noqa: E731
        wait_until(revoked, timeout=90, what="bob's token and tag tokens revoked")
        before = counters(relay, "dchat_relay_put_authorizations_total", "kind")
        a.send("bob", "after removal")
        alice_id = a.request("GET", "/v1/identity")["identity_id"]
        asked = lambda: any(r["identity_id"] == alice_id for r in b.requests())  # noqa: E731
        wait_until(asked, timeout=90, what="alice's message as a request")
        after = counters(relay, "dchat_relay_put_authorizations_total", "kind")
        print(f"tokens held {held} -> {gauge(relay, 'dchat_relay_put_tokens')}; {after}")
        assert after["work"] > before["work"]  # her revoked tokens were refused: she paid
