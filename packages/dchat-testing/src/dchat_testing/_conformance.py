"""The conformance suite every :class:`dchat_network.MailboxStore` must pass.

Use it from a test module by subclassing (pytest collects the inherited tests)::

    class TestMyStore(MailboxStoreConformance):
        def make_store(self) -> MailboxStore:
            return MyStore(...)

        def close_store(self, store: MailboxStore) -> None:   # optional
            store.close()

or call :func:`check_mailbox_store` with a factory outside pytest. The checks
state the contract the relay relies on (docs/protocol.md, "Relay protocol"):
content-addressed entry ids, idempotent puts, oldest-first non-destructive
fetches, acks that delete only the caller's entries, byte totals for quotas, and
(:meth:`MailboxStoreConformance.test_matches_a_model`) agreement with a simple
model over random operation sequences.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_network import MailboxStore

__all__ = ("MailboxStoreConformance", "check_mailbox_store")

A, B = b"\x0a" * 32, b"\x0b" * 32


def _entry_id(envelope: bytes) -> bytes:
    return hashlib.blake2b(envelope, digest_size=32, person=b"dchat-envelope").digest()


def _ids(store: MailboxStore, mailbox: bytes, limit: int = 100) -> list[bytes]:
    return [entry.entry_id for entry in store.fetch(mailbox, limit)]


_WHICH = st.integers(0, 1)
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _WHICH, st.binary(min_size=1, max_size=24)),
        st.tuples(st.just("ack"), _WHICH, st.integers(0, 3)),
        st.tuples(st.just("fetch"), _WHICH, st.integers(1, 5)),
    ),
    max_size=25,
)


class MailboxStoreConformance:
    """Mixin of tests; subclasses provide :meth:`make_store`."""

    def make_store(self) -> MailboxStore:
        """A fresh, empty store."""
        raise NotImplementedError

    def close_store(self, store: MailboxStore) -> None:
        """Release a store made by :meth:`make_store` (default: nothing)."""

    def _with_store(self, check: Callable[[MailboxStore], None]) -> None:
        store = self.make_store()
        try:
            check(store)
        finally:
            self.close_store(store)

    def test_put_returns_the_content_address_and_is_idempotent(self) -> None:
        def check(store: MailboxStore) -> None:
            assert store.put(A, b"env-1", 1.0) == (_entry_id(b"env-1"), True)
            assert store.put(A, b"env-1", 2.0) == (_entry_id(b"env-1"), False)
            assert _ids(store, A) == [_entry_id(b"env-1")]
            # The same envelope in another mailbox is a separate entry.
            assert store.put(B, b"env-1", 3.0) == (_entry_id(b"env-1"), True)
            assert _ids(store, B) == [_entry_id(b"env-1")]

        self._with_store(check)

    def test_fetch_is_oldest_first_limited_and_keeps_entries(self) -> None:
        def check(store: MailboxStore) -> None:
            for number, at in enumerate([5.0, 1.0, 3.0]):
                store.put(A, b"env-%d" % number, at)
            expected = [_entry_id(b"env-1"), _entry_id(b"env-2"), _entry_id(b"env-0")]
            assert _ids(store, A) == expected
            assert _ids(store, A, limit=2) == expected[:2]
            assert [e.envelope for e in store.fetch(A, 1)] == [b"env-1"]
            assert _ids(store, A) == expected  # fetching deleted nothing
            assert _ids(store, B) == []

        self._with_store(check)

    def test_fetch_rejects_a_limit_below_one(self) -> None:
        def check(store: MailboxStore) -> None:
            try:
                store.fetch(A, 0)
            except ValueError:
                return
            raise AssertionError("fetch(limit=0) must raise a ValueError")

        self._with_store(check)

    def test_ack_deletes_only_named_entries_of_that_mailbox(self) -> None:
        def check(store: MailboxStore) -> None:
            store.put(A, b"a1", 1.0)
            store.put(A, b"a2", 2.0)
            store.put(B, b"b1", 3.0)
            # Another mailbox's id and unknown ids are ignored.
            assert store.ack(A, [_entry_id(b"b1"), b"\x00" * 32]) == 0
            assert store.ack(A, [_entry_id(b"a1"), _entry_id(b"a1")]) == 1
            assert _ids(store, A) == [_entry_id(b"a2")]
            assert _ids(store, B) == [_entry_id(b"b1")]
            assert store.ack(A, [_entry_id(b"a1")]) == 0  # a repeated ack is harmless
            assert store.ack(A, []) == 0

        self._with_store(check)

    def test_total_bytes_counts_one_mailbox(self) -> None:
        def check(store: MailboxStore) -> None:
            assert store.total_bytes(A) == 0
            store.put(A, b"x" * 10, 1.0)
            store.put(A, b"y" * 5, 1.0)
            store.put(A, b"y" * 5, 1.0)
            store.put(B, b"z" * 7, 1.0)
            assert store.total_bytes(A) == 15
            store.ack(A, [_entry_id(b"x" * 10)])
            assert store.total_bytes(A) == 5

        self._with_store(check)

    def test_matches_a_model(self) -> None:
        # One store for all examples; each example gets mailboxes of its own.
        examples = itertools.count()

        def check(store: MailboxStore) -> None:
            @settings(max_examples=60, deadline=None, database=None)
            @given(ops=_OPS)
            def run(ops: list[tuple[str, int, object]]) -> None:
                tag = next(examples).to_bytes(8, "big")
                boxes = [tag + b"\x0a" * 24, tag + b"\x0b" * 24]
                _check_against_model(store, boxes, ops)

            run()

        self._with_store(check)


def _check_against_model(
    store: MailboxStore, boxes: list[bytes], ops: list[tuple[str, int, object]]
) -> None:
    model: dict[bytes, dict[bytes, bytes]] = {box: {} for box in boxes}
    for clock, (op, which, arg) in enumerate(ops):
        mailbox = boxes[which]
        box = model[mailbox]
        if op == "put":
            assert isinstance(arg, bytes)
            entry, created = store.put(mailbox, arg, float(clock))
            assert created == (entry not in box)
            box.setdefault(entry, arg)
        elif op == "ack":
            assert isinstance(arg, int)
            victims = list(box)[:arg]
            assert store.ack(mailbox, victims) == len(victims)
            for victim in victims:
                del box[victim]
        else:
            assert isinstance(arg, int)
            assert _ids(store, mailbox, arg) == list(box)[:arg]
        assert store.total_bytes(mailbox) == sum(len(e) for e in box.values())


def check_mailbox_store(
    factory: Callable[[], MailboxStore], close: Callable[[MailboxStore], None] | None = None
) -> None:
    """Run the whole suite against stores made by ``factory``; raises on a failure."""

    class _Suite(MailboxStoreConformance):
        def make_store(self) -> MailboxStore:
            return factory()

        def close_store(self, store: MailboxStore) -> None:
            if close is not None:
                close(store)

    suite = _Suite()
    for name in sorted(dir(suite)):
        if name.startswith("test_"):
            getattr(suite, name)()
