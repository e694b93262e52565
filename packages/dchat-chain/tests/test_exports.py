"""The public surfaces of dchat_chain are exactly the `__all__` of it and of its lowlevel module."""

from __future__ import annotations

from types import ModuleType

import pytest

import dchat_chain
import dchat_chain.lowlevel

SURFACES = [dchat_chain, dchat_chain.lowlevel]


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
    assert not set(dchat_chain.__all__) & set(dchat_chain.lowlevel.__all__)


def test_everyday_api_fits_one_screen() -> None:
    assert len(dchat_chain.__all__) <= 35


def test_lowlevel_names_are_not_reachable_from_the_package_root() -> None:
    for name in dchat_chain.lowlevel.__all__:
        assert not hasattr(dchat_chain, name), name


def test_the_validator_driver_and_its_wire_are_lowlevel() -> None:
    names = {"ValidatorDriver", "DriverEffect", "PeerTag", "split_peer_message", "store_effect"}
    names |= {"HeightTimeline"}
    assert names <= set(dchat_chain.lowlevel.__all__)
    assert not names & set(dchat_chain.__all__)


def test_the_validator_node_book_and_link_decoding_are_lowlevel() -> None:
    names = {
        "ValidatorBook",
        "PeerStats",
        "slash_tx",
        "decode_inbound",
        "sync_response_payload",
        "light_state_name",
    }
    assert names <= set(dchat_chain.lowlevel.__all__)
    assert not names & set(dchat_chain.__all__)


def test_validator_set_up_is_lowlevel() -> None:
    names = {
        "NetPlan",
        "PlannedTestnet",
        "PlannedValidator",
        "plan_testnet",
        "ValidatorKeys",
        "KeyRecordError",
        "encode_validator_keys",
        "decode_validator_keys",
        "encode_wallet_key",
        "decode_wallet_key",
    }
    assert names <= set(dchat_chain.lowlevel.__all__)
    assert not names & set(dchat_chain.__all__)


def test_public_handles_are_lowlevel() -> None:
    names = {"HandleLookup", "HandleRecord", "InvalidHandleError", "normalize_handle"}
    names |= {"handle_key", "handle_work_bits", "solve_handle_pow", "HandleOwner"}
    assert names <= set(dchat_chain.lowlevel.__all__)
    assert not names & set(dchat_chain.__all__)
