"""The public surfaces of dchat_network are exactly the `__all__` of it and of its lowlevel."""

from __future__ import annotations

from types import ModuleType

import pytest

import dchat_network
import dchat_network.lowlevel

SURFACES = [dchat_network, dchat_network.lowlevel]


def _public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, ModuleType)
    }


@pytest.mark.parametrize("module", SURFACES, ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(module: ModuleType) -> None:
    assert set(module.__all__) == _public_names(module)


@pytest.mark.parametrize("module", SURFACES, ids=lambda m: m.__name__)
def test_all_is_a_sorted_tuple(module: ModuleType) -> None:
    assert isinstance(module.__all__, tuple)
    assert list(module.__all__) == sorted(module.__all__)
    assert len(set(module.__all__)) == len(module.__all__)


def test_every_name_has_exactly_one_home() -> None:
    assert not set(dchat_network.__all__) & set(dchat_network.lowlevel.__all__)


def test_everyday_api_fits_one_screen() -> None:
    assert len(dchat_network.__all__) <= 35
