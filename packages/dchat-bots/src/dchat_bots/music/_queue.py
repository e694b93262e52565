"""A play queue: tracks waiting their turn, bounded, shuffled by an explicit random source."""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING

from ._errors import QueueFullError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ._track import Track

__all__ = ("PlayQueue",)


class PlayQueue:
    """Tracks in the order they will play; ``next()`` takes the first.

    Example::

        queue = PlayQueue()
        queue.add(track)
        queue.shuffle(random.Random(seed))
        playing = queue.next()   # None when empty
    """

    MAX_TRACKS = 1000
    """Default cap: a queue is per chat, and chats are many."""

    def __init__(self, *, max_tracks: int = MAX_TRACKS) -> None:
        if max_tracks < 1:
            raise ValueError("max_tracks must be at least 1")
        self._tracks: deque[Track] = deque()
        self._max = max_tracks

    def __len__(self) -> int:
        return len(self._tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(tuple(self._tracks))

    def add(self, track: Track) -> int:
        """Put ``track`` at the end; returns its position (1 = plays next).

        Raises:
            QueueFullError: the queue holds ``max_tracks`` already.
        """
        if len(self._tracks) >= self._max:
            raise QueueFullError(f"the queue is full ({self._max} tracks)")
        self._tracks.append(track)
        return len(self._tracks)

    def extend(self, tracks: Iterable[Track]) -> None:
        """Add each of ``tracks`` in order (all or none: raises QueueFullError before adding)."""
        batch = list(tracks)
        if len(self._tracks) + len(batch) > self._max:
            raise QueueFullError(f"the queue would exceed {self._max} tracks")
        self._tracks.extend(batch)

    def next(self) -> Track | None:
        """Take the track that plays next, or None if the queue is empty."""
        return self._tracks.popleft() if self._tracks else None

    def peek(self) -> Track | None:
        """The track that plays next, left in the queue."""
        return self._tracks[0] if self._tracks else None

    def shuffle(self, rng: random.Random | None = None) -> None:
        """Put the queue in a random order (``rng`` for a reproducible one)."""
        order = list(self._tracks)
        (rng or random.Random()).shuffle(order)
        self._tracks = deque(order)

    def clear(self) -> int:
        """Empty the queue; returns how many tracks it held."""
        count = len(self._tracks)
        self._tracks.clear()
        return count
