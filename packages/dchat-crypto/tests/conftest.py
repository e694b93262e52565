"""Shared fixtures: the location of the conformance vectors."""

from __future__ import annotations

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
