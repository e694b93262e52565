"""Real processes: contact proofs as put authorization (protocol section 41).

A relay that asks every stranger's deposit for work, and two user nodes with
``put_auth = "proof"`` that are each other's contacts. Their first messages
pay the work; with them each hands the other a contact secret (not a put
token) and registers a signed ring of contact keys padded with decoys. The
relay then holds two rings of 8 keys and no put-token hash for either
published mailbox (only the rotating tags' own tokens, section 38), and the
nodes' API says which mode they run. Mail between them then goes to the
rotating tags (section 38, each tag with its own token), so a third user,
carol, plays a contact that writes to alice's published mailbox (a sender
that ignores ``mb.tag``, ``_old_contact_driver.py``: the messaging engine and
the relay client in a process of its own): alice's first mail hands her a
contact secret, and her reply is stored by contact proof, with no token and
less work than the relay asks.
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

from dchat_node import NodeProcess, free_port
from dchat_sdk import RemoteClient
from dchat_testing import wait_until

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("_old_contact_driver.py")
LIMITS = "pow_free_mailbox = 0.0\npow_min_bits = 8\npow_max_bits = 10\n"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[NodeProcess]:
    """A relay that asks strangers for 8+ bits of work on every deposit."""
    data_dir = tmp_path / "relay"
    data_dir.mkdir(mode=0o700)
    (data_dir / "dchat.toml").write_text("[node.relay_limits]\n" + LIMITS)
    node = NodeProcess(
        data_dir, "relay", passphrase=secrets.token_urlsafe(12), listen=f"127.0.0.1:{free_port()}"
    )
    node.start()
    yield node
    node.kill()


@pytest.fixture
def proof_users(tmp_path: Path, relay: NodeProcess) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """``alice`` and ``bob`` with ``put_auth = "proof"``, each the other's contact."""
    started = []
    for name in ("alice", "bob"):
        data_dir = tmp_path / name
        data_dir.mkdir(mode=0o700)
        (data_dir / "dchat.toml").write_text('[node]\nput_auth = "proof"\n')
        node = NodeProcess(
            data_dir, "user", passphrase="pw-" + name, relay=relay.info["link"], poll_interval=0.2
        )
        node.start()
        started.append(node)
    alice, bob = started
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
    yield alice, bob
    for node in started:
        node.kill()


def relay_put_auth(relay: NodeProcess) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {relay.info['token']}"}
    url = relay.info["url"] + "/v1/relay/status"
    status: dict[str, object] = httpx.get(url, headers=headers, timeout=10).json()["put_auth"]
    return status


def test_contacts_get_secrets_and_the_relay_holds_rings_not_token_pseudonyms(
    relay: NodeProcess, proof_users: tuple[NodeProcess, NodeProcess]
) -> None:
    alice, bob = proof_users
    with alice.client() as a, bob.client() as b:

        def inbound(client: RemoteClient) -> list[str]:
            return [m.text for m in client.messages(limit=100) if m.direction == "in"]

        a.send("bob", "hello bob")
        wait_until(lambda: inbound(b) == ["hello bob"], timeout=60, what="bob got hello")
        b.send("alice", "hello alice")
        wait_until(lambda: inbound(a) == ["hello alice"], timeout=60, what="alice got hello")
        assert a.status()["put_auth"] == "proof"
        mode = a.put_auth()
        assert mode["mode"] == "proof"
        assert (mode["tokens_issued"], mode["secrets_issued"], mode["ring_size"]) == (0, 1, 8)

        # Both rings registered (8 keys each: one contact, seven decoys); the only token
        # hashes are the 3 live tags' own per contact (section 38), none for a mailbox.
        wait_until(
            lambda: relay_put_auth(relay)["ring_keys"] == 16,
            timeout=60,
            what="both rings registered",
        )
        status = relay_put_auth(relay)
        assert status["rings"] == 2
        wait_until(lambda: relay_put_auth(relay)["token_hashes"] == 6, timeout=60, what="tags")
        authorized = status["authorized"]
        assert isinstance(authorized, dict)
        assert authorized["work"] >= 2  # the first messages, before any secret

        b.send("alice", "over the tag")
        wait_until(lambda: len(inbound(a)) == 2, timeout=60, what="bob's second message")

        host, port = relay.info["link"].rsplit(":", 1)
        with subprocess.Popen(
            [sys.executable, str(DRIVER), host, port],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as carol:
            assert carol.stdin is not None
            assert carol.stdout is not None
            try:
                a.add_contact("carol", carol.stdout.readline().strip())
                carol.stdin.write(a.card() + "\n")
                carol.stdin.flush()
                a.send("carol", "hi carol")
                outcome = json.loads(carol.stdout.readline())
                assert carol.wait(timeout=120) == 0
            finally:
                carol.kill()
        assert outcome["secret"]
        assert all(len(r) == 64 for r in outcome["results"]), outcome  # all stored
        texts = ["hello alice", "over the tag", "hello alice, by proof"]
        wait_until(lambda: inbound(a) == texts, timeout=60, what="carol's text")
    status = relay_put_auth(relay)
    authorized = status["authorized"]
    assert isinstance(authorized, dict)
    assert authorized["proof"] == len(outcome["results"])  # each of carol's deposits
    print(f"\ncarol's deposits: {outcome}; relay: {status}")
    # 3 live tags' tokens per contact holding a tag secret (alice's at bob, bob's and
    # carol's at alice), and none for a published mailbox: no per-contact pseudonym there.
    assert status["token_hashes"] == 9
