"""Shared fixtures: the conformance vectors folder and deterministic randomness."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest


def vectors_dir() -> Path:
    """``$DCHAT_VECTORS`` if set, else ``<repo>/../shared/vectors``."""
    override = os.environ.get("DCHAT_VECTORS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3].parent / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    path = vectors_dir()
    if not path.is_dir():
        pytest.skip(f"conformance vectors folder not found at {path} (set DCHAT_VECTORS)")
    return path


class SeededRng:
    """A deterministic byte source for tests (SHAKE-256 of a seed and a counter)."""

    def __init__(self, seed: bytes = b"test") -> None:
        self._seed, self._counter = seed, 0

    def __call__(self, n: int) -> bytes:
        self._counter += 1
        return hashlib.shake_256(self._seed + self._counter.to_bytes(8, "big")).digest(n)
