"""The public surface of dchat_privacy is exactly its `__all__`."""

from __future__ import annotations

import dchat_privacy
import dchat_privacy.lowlevel
from dchat_testing import check_export_surfaces


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(dchat_privacy) if not name.startswith("_")}
    public -= {"annotations"}
    submodules = {
        name for name, value in vars(dchat_privacy).items() if type(value).__name__ == "module"
    }
    assert set(dchat_privacy.__all__) == public - submodules


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_privacy.__all__, tuple)
    assert list(dchat_privacy.__all__) == sorted(dchat_privacy.__all__)


def test_the_export_surfaces_follow_the_rules() -> None:
    check_export_surfaces(dchat_privacy, dchat_privacy.lowlevel)


def test_lowlevel_all_lists_exactly_its_public_names() -> None:
    import dchat_privacy.lowlevel as lowlevel

    public = {name for name in vars(lowlevel) if not name.startswith("_")} - {"annotations"}
    assert set(lowlevel.__all__) == public
    assert list(lowlevel.__all__) == sorted(lowlevel.__all__)
    assert not set(lowlevel.__all__) & set(dchat_privacy.__all__)
