"""Message requests between real processes: accept, reply, ignore, block."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

pytestmark = pytest.mark.slow


def _request_from(client: RemoteClient, who: str) -> dict[str, object] | None:
    return next((r for r in client.requests() if r["identity_id"] == who), None)


def _inbox(client: RemoteClient) -> list[str]:
    return [m.text for m in client.messages() if m.direction == "in"]


def test_strangers_land_as_requests_to_accept_ignore_or_block(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    nodes = [make_user(n) for n in ("bob", "alice", "carol")]
    bob, alice, carol = (node.client() for node in nodes)
    try:
        bob.create_identity("bob")
        alice_id = alice.create_identity("alice")
        carol_id = carol.create_identity("carol")
        for stranger in (alice, carol):
            stranger.add_contact("bob", bob.card())
        alice.send("bob", "hi bob, it is alice from the conference")
        wait_until(lambda: _request_from(bob, alice_id) is not None)
        request = _request_from(bob, alice_id)
        assert request is not None
        assert request["name"] == "alice"
        assert request["preview"] == "hi bob, it is alice from the conference"
        assert request["can_reply"] is True
        assert _inbox(bob) == []  # requests stay out of the inbox
        assert [m.text for m in bob.messages(alice_id)] == [
            "hi bob, it is alice from the conference"
        ]

        # Bob answers before accepting, by identity id: the card came sealed inside.
        bob.send(alice_id, "which conference?")
        wait_until(lambda: "which conference?" in _inbox(alice))
        bob.accept_request(alice_id, "alice")
        assert _request_from(bob, alice_id) is None
        assert "alice" in {c.name for c in bob.contacts()}
        assert _inbox(bob) == ["hi bob, it is alice from the conference"]

        # Carol is ignored (her messages deleted), writes again, and is blocked.
        carol.send("bob", "buy my course")
        wait_until(lambda: _request_from(bob, carol_id) is not None)
        assert bob.ignore_request(carol_id) == 1
        assert bob.messages(carol_id) == []
        carol.send("bob", "buy my course, really")
        wait_until(lambda: _request_from(bob, carol_id) is not None)
        assert bob.block(carol_id) == 1
        assert bob.blocked() == [carol_id]
        refused = bob.status()["refusals"].get("BlockedSenderError", 0)
        carol.send("bob", "are you there?")
        wait_until(lambda: bob.status()["refusals"].get("BlockedSenderError", 0) > refused)
        assert bob.messages(carol_id) == []
        assert _request_from(bob, carol_id) is None

        bob.unblock(carol_id)
        carol.send("bob", "last try")
        wait_until(lambda: _request_from(bob, carol_id) is not None)
    finally:
        for client in (bob, alice, carol):
            client.close()
