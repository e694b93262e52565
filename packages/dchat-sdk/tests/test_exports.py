"""The public surface of dchat_sdk is exactly its `__all__`."""

from __future__ import annotations

import dchat_sdk


def test_all_lists_exactly_the_public_names() -> None:
    for name in dchat_sdk.__all__:  # each loads on first use (PEP 562)
        getattr(dchat_sdk, name)
    public = {name for name in vars(dchat_sdk) if not name.startswith("_")}
    public -= {"annotations"}
    submodules = {
        name for name, value in vars(dchat_sdk).items() if type(value).__name__ == "module"
    }
    assert set(dchat_sdk.__all__) == public - submodules


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_sdk.__all__, tuple)
    assert list(dchat_sdk.__all__) == sorted(dchat_sdk.__all__)
