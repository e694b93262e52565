"""The sans-IO wake-up bookkeeping of held pulls (shared by RelayHost and the simulator)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dchat_network.lowlevel import PullWakeups

A, B = b"a" * 32, b"b" * 32


def test_a_store_after_the_version_was_noted_is_seen_as_a_change() -> None:
    book = PullWakeups()
    book.opened(A)
    seen = book.version(A)
    assert not book.changed(A, seen)
    assert book.bump([A]) == [A]
    assert book.changed(A, seen)
    assert not book.changed(A, book.version(A))  # noted again after the bump: asleep again


def test_only_mailboxes_with_an_open_owner_link_are_bumped_and_kept() -> None:
    book = PullWakeups()
    book.opened(A)
    assert book.bump([B, A, B]) == [A]
    assert not book.watched(B)
    assert book.version(B) == 0


def test_versions_live_while_any_of_the_owners_links_is_open() -> None:
    book = PullWakeups()
    book.opened(A)
    book.opened(A)
    book.bump([A])
    assert not book.closed(A)
    assert book.watched(A)
    assert book.version(A) == 1
    assert book.closed(A)
    assert not book.watched(A)
    assert book.version(A) == 0
    assert book.closed(A)  # closing an unknown owner is harmless


def test_a_mailbox_no_longer_watched_counts_as_changed() -> None:
    book = PullWakeups()
    book.opened(A)
    seen = book.version(A)
    book.closed(A)
    assert book.changed(A, seen)


@given(st.lists(st.tuples(st.sampled_from(["open", "close", "bump"]), st.sampled_from([A, B]))))
def test_no_wakeup_is_lost_whatever_the_interleaving(steps: list[tuple[str, bytes]]) -> None:
    """A pull that noted a version sees every later bump of its watched mailbox."""
    book = PullWakeups()
    book.opened(A)  # the pull's own link stays open throughout
    seen = book.version(A)
    bumped = False
    for step, mailbox in steps:
        if step == "open":
            book.opened(mailbox)
        elif step == "close" and mailbox == B:  # other links come and go
            book.closed(mailbox)
        elif step == "bump":
            bumped |= A in book.bump([mailbox])
    assert book.changed(A, seen) == bumped
