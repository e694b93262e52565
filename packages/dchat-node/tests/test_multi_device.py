"""Chat across devices, Sesame-style: alice and bob with two devices each, five processes.

Every message reaches every current device of the recipient and, as a sent
copy, every other device of the sender; a revoked device stops receiving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dchat_testing import link_device, peer_devices

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

pytestmark = pytest.mark.slow


def _seen(client: RemoteClient) -> set[tuple[str, str]]:
    return {(m.direction, m.text) for m in client.messages()}


def test_every_device_sees_every_message_and_revocation_stops_delivery(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    nodes = [make_user(n) for n in ("alice-phone", "alice-laptop", "bob-phone", "bob-laptop")]
    clients = [node.client() for node in nodes]
    a1, a2, b1, b2 = clients
    try:
        alice, bob = a1.create_identity("alice"), b1.create_identity("bob")
        a1.add_contact("bob", b1.card())
        b1.add_contact("alice", a1.card())
        link_device(a1, a2, wait_until)
        link_device(b1, b2, wait_until)
        # Each side follows the other's document with both devices (and so do the laptops).
        for client, peer in ((a1, bob), (a2, bob), (b1, alice), (b2, alice)):
            wait_until(lambda c=client, p=peer: peer_devices(c, p) == 2, timeout=40)
        wait_until(lambda: "bob" in {c.name for c in a2.contacts()})
        wait_until(lambda: "alice" in {c.name for c in b2.contacts()})

        a1.send("bob", "from alice's phone")
        b2.send("alice", "from bob's laptop")
        a2.send("bob", "from alice's laptop")
        expected_alice = {
            ("out", "from alice's phone"),
            ("in", "from bob's laptop"),
            ("out", "from alice's laptop"),
        }
        expected_bob = {(("in" if d == "out" else "out"), t) for d, t in expected_alice}
        for client in (a1, a2):
            wait_until(lambda c=client: _seen(c) >= expected_alice, timeout=40)
        for client in (b1, b2):
            wait_until(lambda c=client: _seen(c) >= expected_bob, timeout=40)

        # Alice revokes her laptop; once bob follows that, it gets nothing more.
        seq = a1.document()["seq"]
        a1.request("POST", "/v1/devices/revoke", {"device": "laptop"})
        wait_until(lambda: b1.peer_document(alice)["seq"] > seq, timeout=40)
        wait_until(lambda: b2.peer_document(alice)["seq"] > seq, timeout=40)
        b1.send("alice", "after the revocation")
        wait_until(lambda: ("in", "after the revocation") in _seen(a1), timeout=40)
        wait_until(lambda: ("out", "after the revocation") in _seen(b2), timeout=40)
        wait_until(lambda: b1.status()["outbox"] == 0)
        assert peer_devices(b1, alice) == 1  # bob fans out to alice's phone only
        assert ("in", "after the revocation") not in _seen(a2)
    finally:
        for client in clients:
            client.close()
