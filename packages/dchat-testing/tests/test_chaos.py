"""The chaos harness on real node processes: freeze, kill and restart them."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from dchat_node import NodeProcess
from dchat_testing import ChaosError, ChaosHarness, holds_for, wait_until

pytestmark = pytest.mark.slow


wait_until = functools.partial(wait_until, timeout=30.0)


def inbox(node: NodeProcess) -> list[str]:
    with node.client() as client:
        return [m.text for m in client.messages() if m.direction == "in"]


def outbox(node: NodeProcess) -> int:
    with node.client() as client:
        return int(client.status()["outbox"])


def test_frozen_killed_and_restarted_nodes_still_deliver_exactly_once(tmp_path: Path) -> None:
    with ChaosHarness(tmp_path) as chaos:
        relay = chaos.relay()
        alice, bob = chaos.user("alice", relay), chaos.user("bob", relay)
        with alice.client() as a, bob.client() as b:
            a.create_identity("alice")
            b.create_identity("bob")
            a.add_contact("bob", b.card())
            b.add_contact("alice", a.card())  # (else alice's mail waits as a request)
        # Adding a contact sends it our identity document: let that go first.
        wait_until(lambda: outbox(alice) == 0 and outbox(bob) == 0)

        # A frozen relay accepts TCP connections but answers nothing: the
        # message waits in alice's outbox until the relay thaws.
        chaos.pause(relay)
        with alice.client() as a:
            a.send("bob", "sent while the relay was frozen")
        holds_for(lambda: outbox(alice) == 1, seconds=1.0)
        chaos.resume(relay)
        wait_until(lambda: inbox(bob) == ["sent while the relay was frozen"])

        # SIGKILL the recipient, send, SIGKILL and restart the relay, then
        # restart the recipient: the message arrives, once.
        chaos.kill(bob)
        with alice.client() as a:
            a.send("bob", "sent while bob was dead")
        wait_until(lambda: outbox(alice) == 0)
        chaos.restart(relay)
        chaos.restart(bob)
        wait_until(lambda: len(inbox(bob)) == 2)
        expected = sorted(["sent while the relay was frozen", "sent while bob was dead"])
        # Several more fetch rounds: nothing new may appear.
        holds_for(lambda: sorted(inbox(bob)) == expected, seconds=1.0)


def test_the_harness_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    with ChaosHarness(tmp_path) as chaos:
        relay = chaos.relay()
        with pytest.raises(ChaosError):
            chaos.relay()  # the name "relay" is taken
        chaos.kill(relay)
        with pytest.raises(ChaosError):
            chaos.pause(relay)  # not running
