"""Conversation features across real processes: alice, and bob with a linked device.

Alice sees delivered, then read, for her message; with read receipts off bob
sends none (his own devices still agree what he read); edits, a delete and
reactions reach every device of both users; the inbox counts unread messages;
the event stream carries the receipts. Then disappearing messages: a 2-second
timer set by alice reaches bob's devices; a text and a file are listed until
read, then gone from all three nodes: no raw file of their data directories,
nor of a backup made after the expiry (restored), holds their plaintext or
the sealed rows they were stored as, and alice's relay no longer has the blob.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from dchat_node.cli import node_app
from dchat_node.cli._conversations import parse_duration
from dchat_sdk import ApiError
from dchat_testing import link_device, peer_devices

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

pytestmark = pytest.mark.slow


def _msg(client: RemoteClient, peer: str, mid: str) -> dict[str, Any] | None:
    shown = client.conversation(peer, mark_read=False)["messages"]
    return next((m for m in shown if m["message_id"] == mid), None)


def _has(client: RemoteClient, peer: str, mid: str, **marks: object) -> bool:
    m = _msg(client, peer, mid)
    return m is not None and all(m[k] == v for k, v in marks.items())


def _sealed_rows(node: NodeProcess) -> set[bytes]:
    """The sealed message rows and file chunks in a node's database (their first 48 bytes)."""
    db = node.data_dir / "node.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT payload FROM messages UNION SELECT data FROM blob_chunks")
        return {bytes(row[0])[:48] for row in rows}


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    """Files under ``root`` whose bytes hold any of ``needles``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}" for n in needles if n in data]
    return found


def _backup_restored(node: NodeProcess, tmp_path: Path) -> Path:
    """Back up ``node``'s live data directory, restore it elsewhere; where it went."""
    repo, target = tmp_path / f"{node.data_dir.name}-repo", tmp_path / f"{node.data_dir.name}-back"
    env = {"DCHAT_BACKUP_PASSPHRASE": "a backup passphrase"}
    for args in (
        ["init", "--repo", str(repo)],
        ["create", "--repo", str(repo), "--data-dir", str(node.data_dir)],
        ["restore", "latest", "--target", str(target), "--repo", str(repo)],
    ):
        result = CliRunner().invoke(node_app, ["backup", *args], env=env)
        assert result.exit_code == 0, result.output
    return target


def test_durations_for_dchat_disappear() -> None:
    assert [parse_duration(t) for t in ("off", "0", "45", "30s", "5m", "1h", "7d", "1w")] == [
        0,
        0,
        45,
        30,
        300,
        3600,
        7 * 86400,
        7 * 86400,
    ]
    for bad in ("", "-1", "1.5h", "h", "1y", "9" * 12, "soon"):
        with pytest.raises(Exception, match="not a duration"):
            parse_duration(bad)


def test_receipts_edits_deletes_and_reactions_reach_every_device(
    make_user: Callable[[str], NodeProcess],
    wait_until: Callable[..., None],
    relay: NodeProcess,
    tmp_path: Path,
) -> None:
    nodes = [make_user(n) for n in ("alice", "bob-phone", "bob-laptop")]
    a, b1, b2 = clients = [node.client() for node in nodes]
    try:
        alice, bob = a.create_identity("alice"), b1.create_identity("bob")
        a.add_contact("bob", b1.card())
        b1.add_contact("alice", a.card())
        link_device(b1, b2, wait_until)
        wait_until(lambda: peer_devices(a, bob) == 2, timeout=40)
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

        # Disappearing messages: 2 seconds after bob reads (alice's copies: after his receipt).
        assert b1.conversation_settings(read_receipts=True)["read_receipts"] is True
        for bad in (-1, 366 * 86400, 2**64, "1h", 1.5, True, None):
            with pytest.raises(ApiError) as refused:
                a.request("PUT", "/v1/conversations/bob/disappear", {"seconds": bad})
            assert refused.value.status == 422
        assert a.disappear("bob", 2)["seconds"] == 2
        for b in bobs:
            wait_until(lambda b=b: b.conversation("alice", 1)["disappear_s"] == 2, timeout=40)
        assert "timer" in [event.kind for event in b2.event_page(0, 1000)[0]]
        before = {node.data_dir: _sealed_rows(node) for node in nodes}
        marker = b"VANISH-" + os.urandom(8).hex().encode()
        doc = tmp_path / "vanish.txt"
        doc.write_bytes(b"FILE-" + marker + b" " + os.urandom(3000).hex().encode())
        text = a.send("bob", f"TEXT-{marker.decode()}")
        filed = a.send_file("bob", doc, kind="document", media_type="text/plain")
        mids = (text, filed["message_id"])
        blob = relay.data_dir / "blobs" / (filed["blob_id"] + ".blob")
        for b in bobs:
            wait_until(lambda b=b: _msg(b, "alice", mids[1]) is not None, timeout=40)
            assert _has(b, "alice", text, expires_at=None)  # listed, not counting until read
        assert _msg(a, "bob", text)["expires_at"] is not None  # type: ignore[index]
        assert b1.save_attachment(mids[1], tmp_path / "got.txt") == doc.stat().st_size
        assert blob.exists()
        sealed = {node.data_dir: _sealed_rows(node) - before[node.data_dir] for node in nodes}
        assert all(sealed.values())
        b1.mark_read("alice")
        for client, peer in ((a, "bob"), (b1, "alice"), (b2, "alice")):
            for mid in mids:
                wait_until(lambda c=client, p=peer, m=mid: _msg(c, p, m) is None, timeout=40)
        wait_until(lambda: not blob.exists(), timeout=40)  # alice's node deleted its blob
        needles = [b"TEXT-" + marker, b"FILE-" + marker, doc.read_bytes()[-2000:]]
        for node in nodes:
            rows = sorted(sealed[node.data_dir])
            # Deleted pages are zeroed and the write-ahead log truncated just after expiry.
            wait_until(lambda d=node.data_dir, r=rows: _files_holding(d, r) == [], timeout=20)
            assert _files_holding(node.data_dir, needles) == []
            assert _files_holding(_backup_restored(node, tmp_path), [*needles, *rows]) == []
    finally:
        for client in clients:
            client.close()
