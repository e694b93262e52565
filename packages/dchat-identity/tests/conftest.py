"""Identity tests draw keys from :class:`dchat_testing.SeededRng` (re-exported here)."""

from __future__ import annotations

from dchat_testing import SeededRng

__all__ = ("SeededRng",)
