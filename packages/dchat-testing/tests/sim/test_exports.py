"""The public surface of dchat_testing.sim is exactly its `__all__`."""

from __future__ import annotations

import dchat_testing.sim


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(dchat_testing.sim) if not name.startswith("_")}
    public -= {"annotations"}
    assert set(dchat_testing.sim.__all__) == public


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_testing.sim.__all__, tuple)
    assert list(dchat_testing.sim.__all__) == sorted(dchat_testing.sim.__all__)
