"""``dchat demo``: the walking skeleton, end to end, with real processes.

A relay and two user nodes run as separate OS processes on loopback, each in
its own temporary data directory. Alice writes to Bob while Bob's node is
stopped; the relay holds the sealed envelope; Bob's node starts, fetches it,
decrypts and verifies it. The transcript shows each step, including exactly
what the relay had on disk.
"""

from __future__ import annotations

import secrets
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dchat_sdk import ApiError

from ._process import NodeProcess, free_port

if TYPE_CHECKING:
    from rich.console import Console

    from dchat_sdk import MessageInfo, RemoteClient

__all__ = ("run_demo",)

_TEXT = "Hi Bob! This message was sealed on Alice's node and only yours can open it."


def _relay_rows(data_dir: Path) -> list[tuple[bytes, bytes]]:
    """Read the relay's mailbox table directly from its database file."""
    uri = f"file:{data_dir / 'node.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        return list(conn.execute("SELECT mailbox, envelope FROM mailbox_entries"))


def _relay_leaks(data_dir: Path, secrets_: list[bytes]) -> str:
    """Which of ``secrets_`` appear anywhere in the relay's files ("none" if none)."""
    found: set[str] = set()
    for path in data_dir.iterdir():
        if path.is_file():
            content = path.read_bytes()
            found.update(s.decode() for s in secrets_ if s in content)
    return ", ".join(sorted(found)) or "none"


def _wait_for_document(client: RemoteClient, identity_id: str, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.peer_document(identity_id)
        except ApiError:
            time.sleep(0.1)
        else:
            return True
    return False


def _wait_for_message(client: RemoteClient, timeout: float = 20.0) -> MessageInfo | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inbound = [m for m in client.messages() if m.direction == "in"]
        if inbound:
            return inbound[0]
        time.sleep(0.1)
    return None


def run_demo(out: Console) -> int:
    """Run the demo, printing a transcript; returns the exit status."""
    started = time.monotonic()
    passphrase = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="dchat-demo-") as tmp:
        root = Path(tmp)
        relay_addr = f"127.0.0.1:{free_port()}"
        relay = NodeProcess(root / "relay", "relay", passphrase=passphrase, listen=relay_addr)
        alice = NodeProcess(root / "alice", "user", passphrase=passphrase, relay=relay_addr)
        bob = NodeProcess(root / "bob", "user", passphrase=passphrase, relay=relay_addr)
        try:
            return _script(out, relay, alice, bob, started)
        finally:
            for node in (alice, bob, relay):
                node.stop()


def _script(
    out: Console, relay: NodeProcess, alice: NodeProcess, bob: NodeProcess, started: float
) -> int:
    step = _Steps(out)
    info = relay.start()
    step(f"relay started (pid {relay.pid}) at {info['link']}, node id {info['node_id']}")
    alice.start()
    bob.start()
    step(f"alice's node (pid {alice.pid}) and bob's node (pid {bob.pid}) started")
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        alice_card, bob_card = a.card(), b.card()
        alice_id = str(a.status()["identity_id"])
        step(f"identities created: alice {alice_id}")
        step(f"                    bob   {b.status()['identity_id']}")
        a.add_contact("bob", bob_card)
        b.add_contact("alice", alice_card)
        step("alice and bob exchanged contact cards (signed, self-certifying)")
        bob_id = str(b.status()["identity_id"])
        if not (_wait_for_document(a, bob_id) and _wait_for_document(b, alice_id)):
            return step.fail("the identity documents were never delivered")
        step("each node received and verified the other's identity document (via the relay)")
    bob.stop()
    step("bob's node stopped: bob is offline")
    with alice.client() as a:
        a.send("bob", _TEXT)
        step(f"alice sends: {_TEXT!r}")
        deadline = time.monotonic() + 15
        while a.status()["outbox"] and time.monotonic() < deadline:
            time.sleep(0.1)
        if a.status()["outbox"]:
            return step.fail("the relay never confirmed storage")
    rows = _relay_rows(relay.data_dir)
    step(f"relay confirmed: it holds {len(rows)} envelope(s) on disk")
    for mailbox, envelope in rows:
        out.print(
            f"      mailbox {mailbox.hex()[:16]}…  {len(envelope)} bytes: {envelope[40:72].hex()}…",
            highlight=False,
        )
    leaked = _relay_leaks(relay.data_dir, [_TEXT.encode(), b"alice", alice_id.encode()])
    step(f"plaintext, sender name or sender id in the relay's files (db, WAL, log): {leaked}")
    bob.start()
    step(f"bob's node restarted (pid {bob.pid}); it fetches its mailbox from the relay")
    with bob.client() as b:
        message = _wait_for_message(b)
    if message is None:
        return step.fail("bob never received the message")
    who = f"{message.peer_name} ({message.peer_id[:20]}…)"
    step(f"bob reads from {who}, authenticated by the session:")
    out.print(f"      {message.text!r}", highlight=False)
    # Bob's node acknowledges after storing the message (acks are batched): wait for it.
    deadline = time.monotonic() + 15
    while (remaining := len(_relay_rows(relay.data_dir))) and time.monotonic() < deadline:
        time.sleep(0.1)
    step(f"bob acknowledged; the relay now holds {remaining} envelope(s)")
    ok = message.text == _TEXT and message.peer_name == "alice" and leaked == "none"
    ok = ok and remaining == 0
    step(f"done in {time.monotonic() - started:.1f}s: {'SUCCESS' if ok else 'FAILURE'}")
    return 0 if ok else 1


class _Steps:
    def __init__(self, out: Console) -> None:
        self._out = out
        self._n = 0

    def __call__(self, text: str) -> None:
        self._n += 1
        self._out.print(f"[bold cyan]{self._n:>2}.[/bold cyan] {text}", highlight=False)

    def fail(self, text: str) -> int:
        self._out.print(f"[bold red]FAILED:[/bold red] {text}")
        return 1
