"""The conformance suites every :class:`dchat_network.MailboxStore` and
:class:`dchat_network.PrekeyStore` must pass.

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

:class:`PrekeyStoreConformance` (or :func:`check_prekey_store`) does the same
for prekey stores: one-time bundles handed out lowest id first and each only
once (also under concurrent takes), then the last-resort bundle, which stays;
``replace`` and non-``replace`` puts; counts of one-time bundles per mailbox;
bundles kept verbatim (they are opaque bytes to a relay).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_network.lowlevel import MAX_PREKEY_BUNDLE

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dchat_network import MailboxStore, PrekeyStore

__all__ = (
    "MailboxStoreConformance",
    "PrekeyStoreConformance",
    "check_mailbox_store",
    "check_prekey_store",
)

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
            @settings(max_examples=60, deadline=None, database=None, report_multiple_bugs=False)
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


def _otks(tag: bytes, ids: Sequence[int]) -> list[tuple[int, bytes]]:
    return [(i, b"otk-%s-%d" % (tag, i)) for i in ids]


_PREKEY_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"),
            _WHICH,
            st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), max_size=5, unique=True),
            st.booleans(),
        ),
        st.tuples(st.just("take"), _WHICH, st.none(), st.none()),
        st.tuples(st.just("count"), _WHICH, st.none(), st.none()),
    ),
    max_size=25,
)


class PrekeyStoreConformance:
    """Mixin of tests; subclasses provide :meth:`make_store`."""

    def make_store(self) -> PrekeyStore:
        """A fresh, empty store."""
        raise NotImplementedError

    def close_store(self, store: PrekeyStore) -> None:
        """Release a store made by :meth:`make_store` (default: nothing)."""

    def _with_store(self, check: Callable[[PrekeyStore], None]) -> None:
        store = self.make_store()
        try:
            check(store)
        finally:
            self.close_store(store)

    def test_nothing_published_takes_none(self) -> None:
        def check(store: PrekeyStore) -> None:
            assert store.take_prekey(A) is None
            assert store.count_prekeys(A) == 0

        self._with_store(check)

    def test_one_time_bundles_lowest_id_first_once_then_the_last_resort(self) -> None:
        def check(store: PrekeyStore) -> None:
            held = _otks(b"a", [7, 2**32 - 1, 0, 300])
            assert store.put_prekeys(A, b"last-a", held, False, 1.0) == 4
            assert store.count_prekeys(A) == 4
            taken = [store.take_prekey(A) for _ in range(4)]
            assert taken == [bundle for _, bundle in sorted(held)]
            assert store.count_prekeys(A) == 0
            assert [store.take_prekey(A) for _ in range(3)] == [b"last-a"] * 3

        self._with_store(check)

    def test_mailboxes_are_separate(self) -> None:
        def check(store: PrekeyStore) -> None:
            store.put_prekeys(A, b"last-a", _otks(b"a", [1, 2]), False, 1.0)
            assert store.put_prekeys(B, b"last-b", _otks(b"b", [1]), False, 1.0) == 1
            assert (store.count_prekeys(A), store.count_prekeys(B)) == (2, 1)
            assert store.take_prekey(B) == b"otk-b-1"
            assert store.take_prekey(B) == b"last-b"
            assert store.count_prekeys(A) == 2

        self._with_store(check)

    def test_put_without_replace_keeps_held_bundles_and_replaces_the_last_resort(self) -> None:
        def check(store: PrekeyStore) -> None:
            store.put_prekeys(A, b"last-1", _otks(b"1", [1, 2]), False, 1.0)
            # Id 2 is held: the held bundle stays (a retried put changes nothing).
            assert store.put_prekeys(A, b"last-2", _otks(b"2", [2, 3]), False, 2.0) == 3
            assert [store.take_prekey(A) for _ in range(4)] == [
                b"otk-1-1",
                b"otk-1-2",
                b"otk-2-3",
                b"last-2",
            ]

        self._with_store(check)

    def test_put_with_replace_drops_every_held_bundle(self) -> None:
        def check(store: PrekeyStore) -> None:
            store.put_prekeys(A, b"last-1", _otks(b"1", [1, 2, 3]), False, 1.0)
            assert store.put_prekeys(A, b"last-2", _otks(b"2", [9]), True, 2.0) == 1
            assert [store.take_prekey(A) for _ in range(2)] == [b"otk-2-9", b"last-2"]
            assert store.put_prekeys(A, b"last-3", [], True, 3.0) == 0
            assert store.take_prekey(A) == b"last-3"

        self._with_store(check)

    def test_bundles_are_opaque_bytes_kept_verbatim(self) -> None:
        def check(store: PrekeyStore) -> None:
            # Wrapped bundles: any byte values, up to the relay's size bound.
            big, odd = bytes(range(256)) * 8 + b"\x00" * 152, b"\x00\xff\x00"
            assert len(big) == MAX_PREKEY_BUNDLE
            store.put_prekeys(A, big[::-1], [(0, b"\x00"), (1, big), (2, odd)], False, 1.0)
            assert [store.take_prekey(A) for _ in range(4)] == [b"\x00", big, odd, big[::-1]]

        self._with_store(check)

    def test_concurrent_takes_never_return_the_same_bundle(self) -> None:
        def check(store: PrekeyStore) -> None:
            held = _otks(b"a", range(40))
            store.put_prekeys(A, b"last", held, False, 1.0)
            taken: list[bytes | None] = []
            lock = threading.Lock()

            def taker() -> None:
                for _ in range(12):
                    bundle = store.take_prekey(A)
                    with lock:
                        taken.append(bundle)

            threads = [threading.Thread(target=taker) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            one_time = [b for b in taken if b is not None and b != b"last"]
            assert sorted(one_time) == sorted(bundle for _, bundle in held)
            assert taken.count(b"last") == 8

        self._with_store(check)

    def test_matches_a_model(self) -> None:
        examples = itertools.count()

        def check(store: PrekeyStore) -> None:
            # One failure, not a group, so a broken store raises AssertionError.
            @settings(max_examples=40, deadline=None, database=None, report_multiple_bugs=False)
            @given(ops=_PREKEY_OPS)
            def run(ops: list[tuple[str, int, list[int] | None, bool | None]]) -> None:
                tag = next(examples).to_bytes(8, "big")
                _check_prekeys_against_model(store, [tag + A[8:], tag + B[8:]], ops)

            run()

        self._with_store(check)


def _check_prekeys_against_model(
    store: PrekeyStore,
    boxes: list[bytes],
    ops: list[tuple[str, int, list[int] | None, bool | None]],
) -> None:
    last: dict[bytes, bytes] = {}
    held: dict[bytes, dict[int, bytes]] = {box: {} for box in boxes}
    for clock, (op, which, ids, replace) in enumerate(ops):
        mailbox = boxes[which]
        if op == "put":
            assert ids is not None
            assert replace is not None
            one_time = _otks(b"%d" % clock, ids)
            if replace:
                held[mailbox].clear()
            for prekey_id, bundle in one_time:
                held[mailbox].setdefault(prekey_id, bundle)
            last[mailbox] = b"last-%d" % clock
            count = store.put_prekeys(mailbox, last[mailbox], one_time, replace, float(clock))
            assert count == len(held[mailbox])
        elif op == "take":
            box = held[mailbox]
            expected = box.pop(min(box)) if box else last.get(mailbox)
            assert store.take_prekey(mailbox) == expected
        else:
            assert store.count_prekeys(mailbox) == len(held[mailbox])


def check_prekey_store(
    factory: Callable[[], PrekeyStore], close: Callable[[PrekeyStore], None] | None = None
) -> None:
    """Run the prekey suite against stores made by ``factory``; raises on a failure."""

    class _Suite(PrekeyStoreConformance):
        def make_store(self) -> PrekeyStore:
            return factory()

        def close_store(self, store: PrekeyStore) -> None:
            if close is not None:
                close(store)

    suite = _Suite()
    for name in sorted(dir(suite)):
        if name.startswith("test_"):
            getattr(suite, name)()
