"""A user node leaves nothing readable about messages, contacts or keys on disk.

Real processes: a relay and two users exchange a message with known text; then
every byte of each user's database files (the database, its WAL, its
shared-memory file, any journal) is scanned for the text, the contact names,
both identity ids, the mailbox ids and the relay address. The same scan run on
a database opened without the at-rest key finds the strings, so it can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dchat_identity import ContactCard
from dchat_node import NodeProcess
from dchat_storage import LockedError, open_database

pytestmark = pytest.mark.slow

TEXT = "the spare key is under the third flowerpot"


def _db_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("node.db*"))


def _found(data_dir: Path, needles: dict[str, bytes]) -> set[str]:
    blobs = [f.read_bytes() for f in _db_files(data_dir)]
    return {name for name, needle in needles.items() if any(needle in b for b in blobs)}


def test_user_databases_hold_no_plaintext(
    relay: NodeProcess, make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    with alice.client() as a, bob.client() as b:
        a.create_identity("Alice Quintessa")
        b.create_identity("Bob Xylophonist")
        alice_card, bob_card = ContactCard.from_text(a.card()), ContactCard.from_text(b.card())
        a.add_contact("bobby-zq", b.card())
        b.add_contact("alice-zq", a.card())
        a.send("bobby-zq", TEXT)
        wait_until(lambda: [m.text for m in b.messages() if m.direction == "in"] == [TEXT])
        # While both nodes run, with WAL and shared-memory files in place:
        files_while_running = {p.name for p in _db_files(alice.data_dir)}
    needles = {
        "text": TEXT.encode(),
        "alice's contact name for bob": b"bobby-zq",
        "bob's contact name for alice": b"alice-zq",
        "alice's display name": b"Alice Quintessa",
        "bob's display name": b"Bob Xylophonist",
        "alice's identity id": str(alice_card.identity_id).encode(),
        "bob's identity id": str(bob_card.identity_id).encode(),
        "alice's mailbox id": bytes(alice_card.mailbox),
        "bob's mailbox id": bytes(bob_card.mailbox),
        "relay address": relay.info["link"].encode(),
    }
    assert "node.db-wal" in files_while_running
    assert _found(alice.data_dir, needles) == set()
    assert _found(bob.data_dir, needles) == set()
    alice.kill()  # SIGKILL: the WAL stays behind, un-checkpointed
    bob.stop()
    for node in (alice, bob):
        assert _found(node.data_dir, needles) == set(), node.data_dir
    # The database really is locked to the passphrase ...
    with pytest.raises(LockedError):
        open_database(alice.data_dir / "node.db")
    # ... and the scan would have seen the strings in the clear (it can fail).
    with open_database(alice.data_dir / "node.db", passphrase=alice._passphrase) as db:
        assert [m.body for m in db.messages.list()] == [TEXT]
        assert [c.name for c in db.contacts.list()] == ["bobby-zq"]


def test_wrong_passphrase_stops_the_user_node(
    relay: NodeProcess, make_user: Callable[[str], NodeProcess]
) -> None:
    alice = make_user("alice")
    alice.stop()
    impostor = NodeProcess(
        alice.data_dir, "user", passphrase="not the passphrase", relay=relay.info["link"]
    )
    with pytest.raises(Exception, match="exited early"):
        impostor.start(timeout=60)
    assert "wrong passphrase" in (alice.data_dir / "node.log").read_text()
