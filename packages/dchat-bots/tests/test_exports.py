"""The public surface of dchat_bots is exactly its `__all__`."""

from __future__ import annotations

import dchat_bots


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(dchat_bots) if not name.startswith("_")}
    public -= {"annotations"}
    submodules = {
        name for name, value in vars(dchat_bots).items() if type(value).__name__ == "module"
    }
    assert set(dchat_bots.__all__) == public - submodules


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_bots.__all__, tuple)
    assert list(dchat_bots.__all__) == sorted(dchat_bots.__all__)
