"""The MailboxStore conformance suite, on the in-memory and the SQLite store."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from dchat_network import MailboxStore
from dchat_storage import Database, open_database
from dchat_testing import MailboxStoreConformance, MemoryMailboxStore, check_mailbox_store


class TestMemoryMailboxStore(MailboxStoreConformance):
    def make_store(self) -> MailboxStore:
        return MemoryMailboxStore()


class TestSqliteMailboxRepo(MailboxStoreConformance):
    def make_store(self) -> MailboxStore:
        self._dir = tempfile.TemporaryDirectory()
        self._db: Database = open_database(Path(self._dir.name) / "relay.db")
        return self._db.mailboxes

    def close_store(self, store: MailboxStore) -> None:
        self._db.close()
        self._dir.cleanup()


class DeletesOnFetch(MemoryMailboxStore):
    """A broken store: fetching consumes entries."""

    def fetch(self, mailbox: bytes, limit: int = 100):  # type: ignore[no-untyped-def]
        entries = super().fetch(mailbox, limit)
        self.ack(mailbox, [e.entry_id for e in entries])
        return entries


class IgnoresMailboxOnAck(MemoryMailboxStore):
    """A broken store: an ack deletes the ids from every mailbox."""

    def ack(self, mailbox: bytes, entry_ids):  # type: ignore[no-untyped-def]
        return sum(super(IgnoresMailboxOnAck, self).ack(m, entry_ids) for m in list(self._boxes))


def test_the_function_form_passes_a_good_store() -> None:
    closed: list[MailboxStore] = []
    check_mailbox_store(MemoryMailboxStore, closed.append)
    assert len(closed) >= 6


@pytest.mark.parametrize("broken", [DeletesOnFetch, IgnoresMailboxOnAck])
def test_broken_stores_fail_the_suite(broken: type[MemoryMailboxStore]) -> None:
    with pytest.raises(AssertionError):
        check_mailbox_store(broken)
