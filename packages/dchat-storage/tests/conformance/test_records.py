"""Devices, settings and chain blocks/state."""

from __future__ import annotations

import pytest

from dchat_storage import Database, DuplicateError, NotFoundError
from dchat_storage.lowlevel import BlockRecord, DeviceRecord


def test_settings_set_get_replace_delete(db: Database) -> None:
    assert db.settings.get("theme") is None
    db.settings.set("theme", b"dark", 1.0)
    db.settings.set("theme", b"light", 2.0)
    db.settings.set("lang", b"fr", 2.0)
    assert (db.settings.get("theme"), db.settings.get("lang")) == (b"light", b"fr")
    assert db.settings.delete("theme") is True
    assert db.settings.delete("theme") is False
    assert db.settings.get("theme") is None


def test_devices_add_list_revoke(db: Database) -> None:
    phone = db.devices.add("id-alice", b"\x01", "phone", b"cert-1", 1.0)
    db.devices.add("id-alice", b"\x02", "laptop", b"cert-2", 2.0)
    db.devices.add("id-bob", b"\x01", "bob's phone", b"cert-3", 3.0)
    assert phone == DeviceRecord("id-alice", b"\x01", "phone", b"cert-1", 1.0, None)
    assert [d.name for d in db.devices.list("id-alice")] == ["phone", "laptop"]
    db.devices.revoke("id-alice", b"\x01", 5.0)
    db.devices.revoke("id-alice", b"\x01", 9.0)  # the first revocation time stays
    assert [d.name for d in db.devices.list("id-alice", active_only=True)] == ["laptop"]
    assert db.devices.list("id-alice")[0].revoked_at == 5.0
    with pytest.raises(DuplicateError):
        db.devices.add("id-alice", b"\x02", "again", b"", 6.0)
    with pytest.raises(NotFoundError):
        db.devices.revoke("id-carol", b"\x01", 1.0)
    assert "cert-1" not in repr(phone)


def test_chain_blocks_and_state_commit_atomically(db: Database) -> None:
    assert db.chain.head("chat") is None
    db.chain.commit("chat", 0, b"h0", b"genesis", {b"k": b"v0"})
    db.chain.commit("chat", 1, b"h1", b"block-1", {b"k": b"v1", b"gone": None, b"n": b"x"})
    db.chain.commit("currency", 0, b"c0", b"other chain")
    assert db.chain.head("chat") == BlockRecord("chat", 1, b"h1", b"block-1")
    assert db.chain.block("chat", 0) == BlockRecord("chat", 0, b"h0", b"genesis")
    assert db.chain.block_by_hash("chat", b"h1") == db.chain.head("chat")
    assert db.chain.block_by_hash("chat", b"c0") is None
    assert [b.height for b in db.chain.blocks("chat", 0)] == [0, 1]
    assert (db.chain.get_state("chat", b"k"), db.chain.get_state("currency", b"k")) == (b"v1", None)
    # A duplicate height fails as a whole: its state changes are not applied either.
    with pytest.raises(DuplicateError):
        db.chain.commit("chat", 1, b"h1-fork", b"fork", {b"k": b"forked"})
    assert db.chain.get_state("chat", b"k") == b"v1"
    db.chain.set_state("chat", {b"n": None})
    assert db.chain.get_state("chat", b"n") is None
