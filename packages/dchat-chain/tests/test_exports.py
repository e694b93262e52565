"""The public surface of dchat_chain is exactly its `__all__`."""

from __future__ import annotations

import dchat_chain


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(dchat_chain) if not name.startswith("_")}
    public -= {"annotations"}
    submodules = {
        name for name, value in vars(dchat_chain).items() if type(value).__name__ == "module"
    }
    assert set(dchat_chain.__all__) == public - submodules


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_chain.__all__, tuple)
    assert list(dchat_chain.__all__) == sorted(dchat_chain.__all__)
