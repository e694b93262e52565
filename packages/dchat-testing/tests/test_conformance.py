"""The MailboxStore and PrekeyStore conformance suites, on the in-memory and SQL stores.

The SQL prekey store also runs on PostgreSQL (the plugin's ``pg_server``).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from dchat_network import MailboxStore, PrekeyStore
from dchat_storage import Database, open_database
from dchat_storage.testing import postgres_database
from dchat_testing import (
    MailboxStoreConformance,
    MemoryMailboxStore,
    MemoryPrekeyStore,
    PrekeyStoreConformance,
    check_mailbox_store,
    check_prekey_store,
)


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


class TestMemoryPrekeyStore(PrekeyStoreConformance):
    def make_store(self) -> PrekeyStore:
        return MemoryPrekeyStore()


class TestSqlitePrekeyRepo(PrekeyStoreConformance):
    def make_store(self) -> PrekeyStore:
        self._dir = tempfile.TemporaryDirectory()
        self._db: Database = open_database(Path(self._dir.name) / "relay.db")
        return self._db.prekeys

    def close_store(self, store: PrekeyStore) -> None:
        self._db.close()
        self._dir.cleanup()


class TestPostgresPrekeyRepo(PrekeyStoreConformance):
    @pytest.fixture(autouse=True)
    def _server(self, pg_server: str) -> None:
        """The plugin's PostgreSQL server (skips, saying why, when there is none)."""
        self._server_url = pg_server

    def make_store(self) -> PrekeyStore:
        self._stack = contextlib.ExitStack()
        url = self._stack.enter_context(postgres_database(self._server_url))
        self._db: Database = open_database(url)
        self._stack.callback(self._db.close)
        return self._db.prekeys

    def close_store(self, store: PrekeyStore) -> None:
        self._stack.close()


class ServesOneTimeTwice(MemoryPrekeyStore):
    """A broken store: takes return one-time bundles without removing them."""

    def take_prekey(self, mailbox: bytes) -> bytes | None:
        held = self._one_time.get(mailbox)
        return held[min(held)] if held else self._last.get(mailbox)


class ReplaceKeepsOld(MemoryPrekeyStore):
    """A broken store: ``replace`` is ignored."""

    def put_prekeys(
        self,
        mailbox: bytes,
        last: bytes,
        one_time: Sequence[tuple[int, bytes]],
        replace: bool,
        now: float,
    ) -> int:
        return super().put_prekeys(mailbox, last, one_time, False, now)


def test_the_prekey_function_form_passes_a_good_store() -> None:
    closed: list[PrekeyStore] = []
    check_prekey_store(MemoryPrekeyStore, closed.append)
    assert len(closed) >= 8


@pytest.mark.parametrize("broken", [ServesOneTimeTwice, ReplaceKeepsOld])
def test_broken_prekey_stores_fail_the_suite(broken: type[MemoryPrekeyStore]) -> None:
    with pytest.raises(AssertionError):
        check_prekey_store(broken)


def test_memory_prekey_store_contents_are_a_copy_of_what_it_holds() -> None:
    store = MemoryPrekeyStore()
    assert store.contents() == ({}, {})
    store.put_prekeys(b"m", b"last", [(2, b"two"), (1, b"one")], False, 0.0)
    last, one_time = store.contents()
    assert last == {b"m": b"last"}
    assert one_time == {b"m": {1: b"one", 2: b"two"}}
    one_time[b"m"].clear()
    assert store.take_prekey(b"m") == b"one"
    assert store.contents() == ({b"m": b"last"}, {b"m": {2: b"two"}})
