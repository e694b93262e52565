"""Deterministic randomness for tests: the same seed gives the same keys and bytes.

:class:`SeededRng` is a byte source (``rng(n) -> bytes``) of the shape the
crypto and identity constructors accept for their randomness; it is SHAKE-256
over the seed and a counter, so two tests with the same seed draw the same
keys and a failure can be replayed exactly. (For ``random.Random`` users,
:func:`seeded_random` gives one seeded from a test's name.)
"""

from __future__ import annotations

import hashlib
import random

__all__ = ("SeededRng", "seeded_random")


class SeededRng:
    """A deterministic byte source: SHAKE-256 of a seed and a counter."""

    def __init__(self, seed: bytes = b"test") -> None:
        self._seed, self._counter = seed, 0

    def __call__(self, n: int) -> bytes:
        self._counter += 1
        return hashlib.shake_256(self._seed + self._counter.to_bytes(8, "big")).digest(n)


def seeded_random(label: str) -> random.Random:
    """A ``random.Random`` seeded from ``label`` (a test's node id, say)."""
    return random.Random(hashlib.sha256(label.encode()).digest())
