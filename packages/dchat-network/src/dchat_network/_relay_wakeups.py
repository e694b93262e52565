"""The wake-up bookkeeping of held pulls, without I/O: per-mailbox versions.

Theory of operation
-------------------
A relay holds a ``pull`` that found its mailbox empty (``RelayReply.park``)
until mail arrives for that mailbox or the pull's wait ends. The wake-up must
not be lost between the server looking at the mailbox and the pull going to
sleep. :class:`PullWakeups` makes that a level check instead of an edge:

* each mailbox whose owner has a link open has a *version*
  (:meth:`PullWakeups.opened` / :meth:`PullWakeups.closed` count the links;
  versions exist only while there is one, so the book stays as small as the
  set of connected owners);
* the host notes the owner's version (:meth:`PullWakeups.version`) *before*
  the server handles a request;
* after every commit, the host bumps the mailboxes the reply names
  (``RelayReply.notify``) with :meth:`PullWakeups.bump`, which returns the
  ones that are watched (for the host to wake their held pulls);
* a held pull sleeps only while :meth:`PullWakeups.changed` is false for the
  version it noted.

A store that committed before the server looked is in the pull's answer; one
that commits after it bumps the version after the pull noted it, so the pull
does not sleep through it. The hosts put their own waiting on top: trio
events in :class:`~dchat_network.RelayHost`, timers and callbacks in the
simulator's relay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ("PullWakeups",)


class PullWakeups:
    """Versions of the mailboxes whose owners have links open."""

    __slots__ = ("_links", "_versions")

    def __init__(self) -> None:
        self._versions: dict[bytes, int] = {}
        self._links: dict[bytes, int] = {}

    def opened(self, owner: bytes) -> None:
        """A link proven for mailbox ``owner`` opened: watch it."""
        self._links[owner] = self._links.get(owner, 0) + 1
        self._versions.setdefault(owner, 0)

    def closed(self, owner: bytes) -> bool:
        """One of ``owner``'s links closed; returns True if it was the last (no longer watched)."""
        left = self._links.get(owner, 0) - 1
        if left > 0:
            self._links[owner] = left
            return False
        self._links.pop(owner, None)
        self._versions.pop(owner, None)
        return True

    def watched(self, owner: bytes) -> bool:
        """Whether ``owner`` has a link open."""
        return owner in self._links

    def version(self, owner: bytes) -> int:
        """The current version of ``owner``'s mailbox (0 if not watched): note it before looking."""
        return self._versions.get(owner, 0)

    def bump(self, mailboxes: Iterable[bytes]) -> list[bytes]:
        """A commit stored entries in ``mailboxes``; returns the watched ones, now bumped."""
        bumped = []
        for mailbox in mailboxes:
            if mailbox in self._versions:
                self._versions[mailbox] += 1
                bumped.append(mailbox)
        return bumped

    def changed(self, owner: bytes, seen: int) -> bool:
        """Whether ``owner``'s mailbox got mail since its version was ``seen``.

        A mailbox no longer watched counts as changed: whoever waits on it
        should look again (and finds its link gone).
        """
        return self._versions.get(owner, seen + 1) != seen
