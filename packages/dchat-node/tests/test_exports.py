"""The public surface of dchat_node is exactly its `__all__`."""

from __future__ import annotations

import dchat_node


def test_all_lists_exactly_the_public_names() -> None:
    for name in dchat_node.__all__:  # the heavy ones load on first use (PEP 562)
        getattr(dchat_node, name)
    public = {name for name in vars(dchat_node) if not name.startswith("_")}
    public -= {"annotations"}
    submodules = {
        name for name, value in vars(dchat_node).items() if type(value).__name__ == "module"
    }
    assert set(dchat_node.__all__) == public - submodules


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_node.__all__, tuple)
    assert list(dchat_node.__all__) == sorted(dchat_node.__all__)
