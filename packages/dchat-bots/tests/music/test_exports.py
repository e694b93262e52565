"""The public surface of dchat_bots.music is exactly its `__all__`."""

from __future__ import annotations

import dchat_bots.music


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(dchat_bots.music) if not name.startswith("_")}
    public -= {"annotations"}
    assert set(dchat_bots.music.__all__) == public


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_bots.music.__all__, tuple)
    assert list(dchat_bots.music.__all__) == sorted(dchat_bots.music.__all__)
