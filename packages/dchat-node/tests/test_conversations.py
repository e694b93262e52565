"""Conversation features across real processes: alice, and bob with a linked device.

Alice sees delivered, then read, for her message; with read receipts off bob
sends none (his own devices still agree what he read); edits, a delete and
reactions reach every device of both users; the inbox counts unread messages;
the event stream carries the receipts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

pytestmark = pytest.mark.slow


def _state(client: RemoteClient) -> str:
    return str(client.request("GET", "/v1/devices/pairing")["state"])


def _link(primary: RemoteClient, new: RemoteClient, wait_until: Callable[..., None]) -> None:
    session = primary.request("POST", "/v1/devices/link", {"ttl": 60})
    new.request("POST", "/v1/devices/join", {"code": session["code"], "name": "laptop"})
    wait_until(lambda: _state(primary) == "sas" and _state(new) == "sas")
    new.request("POST", "/v1/devices/pairing/confirm")
    primary.request("POST", "/v1/devices/pairing/confirm")
    wait_until(lambda: _state(new) == "done")


def _devices_of(client: RemoteClient, identity: str) -> int:
    try:
        return len(client.peer_document(identity).get("devices", ()))
    except Exception:
        return 0


def _msg(client: RemoteClient, peer: str, mid: str) -> dict[str, Any] | None:
    shown = client.conversation(peer, mark_read=False)["messages"]
    return next((m for m in shown if m["message_id"] == mid), None)


def _has(client: RemoteClient, peer: str, mid: str, **marks: object) -> bool:
    m = _msg(client, peer, mid)
    return m is not None and all(m[k] == v for k, v in marks.items())


def test_receipts_edits_deletes_and_reactions_reach_every_device(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    nodes = [make_user(n) for n in ("alice", "bob-phone", "bob-laptop")]
    a, b1, b2 = clients = [node.client() for node in nodes]
    try:
        alice, bob = a.create_identity("alice"), b1.create_identity("bob")
        a.add_contact("bob", b1.card())
        b1.add_contact("alice", a.card())
        _link(b1, b2, wait_until)
        wait_until(lambda: _devices_of(a, bob) == 2, timeout=40)
        wait_until(lambda: "alice" in {c.name for c in b2.contacts()})
        bobs = (b1, b2)

        # Delivered, then read (bob reads on his phone; his laptop agrees).
        m1 = a.send("bob", "lunch at noon?")
        for b in bobs:
            wait_until(lambda b=b: _has(b, "alice", m1, read=False), timeout=40)
        assert [c["unread"] for c in b1.conversations()] == [1]
        wait_until(lambda: _has(a, "bob", m1, delivered=True), timeout=40)
        assert _has(a, "bob", m1, read=False)
        assert b1.mark_read("alice")["receipt_sent"] is True
        wait_until(lambda: _has(a, "bob", m1, read=True), timeout=40)
        wait_until(lambda: _has(b2, "alice", m1, read=True), timeout=40)
        assert [c["unread"] for c in b1.conversations()] == [0]

        # Read receipts off: bob's devices still agree, alice learns nothing.
        assert b1.conversation_settings(read_receipts=False)["read_receipts"] is False
        m2 = a.send("bob", "or one?")
        wait_until(lambda: _has(a, "bob", m2, delivered=True), timeout=40)
        assert b1.mark_read("alice")["receipt_sent"] is False
        wait_until(lambda: _has(b2, "alice", m2, read=True), timeout=40)
        later = b1.send("alice", "noon works")  # after any receipt, in order: alice gets it
        wait_until(lambda: _msg(a, "bob", later) is not None, timeout=40)
        assert _has(a, "bob", m2, delivered=True, read=False)

        # Edits by each author, from either of bob's devices, reach every device.
        a.edit("bob", m1, "lunch at 12:30?")
        b2.edit("alice", later, "12:30 works")
        for client, peer, mid, text in (
            (b1, "alice", m1, "lunch at 12:30?"),
            (b2, "alice", m1, "lunch at 12:30?"),
            (a, "bob", later, "12:30 works"),
            (b1, "alice", later, "12:30 works"),
        ):
            wait_until(lambda c=client, p=peer, m=mid, t=text: _has(c, p, m, text=t), timeout=40)
        assert _msg(b1, "alice", m1)["history"] == ["lunch at noon?", "lunch at 12:30?"]  # type: ignore[index]
        found = [(r["message_id"], r["text"]) for r in b2.search("12:30", peer="alice")["results"]]
        assert found == [(later, "12:30 works"), (m1, "lunch at 12:30?")]  # edits are searched

        # Reactions both ways; a delete for everyone.
        b2.react("alice", m1, "👍")
        a.react("bob", later, "🎉")
        thumbs = {bob: ["👍"]}
        for client, peer, mid, expected in (
            (a, "bob", m1, thumbs),
            (b1, "alice", m1, thumbs),
            (b1, "alice", later, {alice: ["🎉"]}),
            (b2, "alice", later, {alice: ["🎉"]}),
        ):
            wait_until(
                lambda c=client, p=peer, m=mid, e=expected: _has(c, p, m, reactions=e), timeout=40
            )
        a.delete_for_everyone("bob", m2)
        assert _msg(a, "bob", m2) is None
        for b in bobs:
            wait_until(lambda b=b: _msg(b, "alice", m2) is None, timeout=40)
        assert _msg(b1, "alice", m1) is not None  # only that one
        assert b1.search("one")["results"] == []  # nor found by search

        kinds = [event.kind for event in a.event_page(0, 1000)[0]]
        assert {"receipt", "edit", "reaction"} <= set(kinds)
    finally:
        for client in clients:
            client.close()
