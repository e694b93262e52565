"""The public surface of dchat_messaging is exactly its `__all__`."""

from __future__ import annotations

import dchat_messaging


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(dchat_messaging) if not name.startswith("_")}
    public -= {"annotations"}
    submodules = {
        name for name, value in vars(dchat_messaging).items() if type(value).__name__ == "module"
    }
    assert set(dchat_messaging.__all__) == public - submodules


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_messaging.__all__, tuple)
    assert list(dchat_messaging.__all__) == sorted(dchat_messaging.__all__)
