"""A relay's memory of the onion packets it has processed, per onion-key epoch.

A replayed Sphinx packet derives the same shared secret, so a relay that kept no
memory would forward it again and let an observer follow the duplicate through
the route. The cache keeps a short tag of each shared secret
(:meth:`SharedSecret.replay_tag`) for every key epoch the relay still holds a
key for. When the relay rotates its onion key the oldest epoch's tags are
dropped with the key: a packet for a deleted key cannot be processed at all.
Memory is bounded by ``max_entries`` per epoch; a full epoch refuses new
packets (:class:`ReplayCacheFullError`) rather than forgetting old tags, which
would reopen replays: the relay must rotate sooner.
"""

from __future__ import annotations

from typing import Final

from ._sphinx_errors import ReplayCacheFullError, SphinxUsageError

__all__ = ("DEFAULT_REPLAY_ENTRIES", "ReplayCache")

DEFAULT_REPLAY_ENTRIES: Final = 250_000
_TAG_SIZE: Final = 16


class ReplayCache:
    """Seen-tags per key epoch, at most ``keep_epochs`` epochs of ``max_entries`` each."""

    def __init__(
        self, *, epoch: int, max_entries: int = DEFAULT_REPLAY_ENTRIES, keep_epochs: int = 2
    ) -> None:
        if max_entries < 1 or keep_epochs < 1:
            raise SphinxUsageError("a replay cache holds at least one entry and one epoch")
        self._max_entries = max_entries
        self._keep_epochs = keep_epochs
        self._epochs: dict[int, set[bytes]] = {epoch: set()}

    @property
    def epochs(self) -> tuple[int, ...]:
        """The epochs still remembered, oldest first."""
        return tuple(self._epochs)

    def rotate(self, epoch: int) -> None:
        """Open ``epoch`` (newer than every open one); forget the oldest beyond ``keep_epochs``.

        Raises:
            SphinxUsageError: ``epoch`` is not newer than the current one.
        """
        if epoch <= max(self._epochs):
            raise SphinxUsageError("a new epoch must be newer than the current one")
        self._epochs[epoch] = set()
        while len(self._epochs) > self._keep_epochs:
            del self._epochs[min(self._epochs)]

    def seen(self, epoch: int, tag: bytes) -> bool:
        """Record ``tag`` under ``epoch``; ``True`` if it was already there (a replay).

        Raises:
            SphinxUsageError: ``epoch`` is not open, or the tag is not 16 bytes.
            ReplayCacheFullError: the tag is new but the epoch is full.
        """
        tags = self._epochs.get(epoch)
        if tags is None or len(tag) != _TAG_SIZE:
            raise SphinxUsageError("unknown epoch or malformed replay tag")
        if tag in tags:
            return True
        if len(tags) >= self._max_entries:
            raise ReplayCacheFullError("replay cache full for this epoch; rotate the onion key")
        tags.add(bytes(tag))
        return False

    def __len__(self) -> int:
        return sum(len(tags) for tags in self._epochs.values())
