"""The public surfaces of dchat_identity are exactly their `__all__`.

The everyday API (`dchat_identity`) fits one screen; everything else lives in
`dchat_identity.lowlevel`, and each name is importable from exactly one of them.
"""

from __future__ import annotations

from types import ModuleType

import pytest

import dchat_identity
import dchat_identity.lowlevel

SURFACES = [dchat_identity, dchat_identity.lowlevel]


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


def test_each_name_has_exactly_one_home() -> None:
    assert not set(dchat_identity.__all__) & set(dchat_identity.lowlevel.__all__)


def test_everyday_api_fits_one_screen() -> None:
    assert len(dchat_identity.__all__) <= 35


def test_lowlevel_is_the_only_public_submodule() -> None:
    submodules = {
        name for name, value in vars(dchat_identity).items() if isinstance(value, ModuleType)
    }
    assert {name for name in submodules if not name.startswith("_")} == {"lowlevel"}


def test_the_device_agents_and_their_codecs_are_low_level() -> None:
    agents = {
        "PairingSession", "PairingOutput", "Certify", "JoinedDevice", "SyncAgent",
        "SyncDelivery", "SyncedContact", "LocalDevice", "plan_revocation", "find_devices",
        "device_rows", "ProfileAgent", "CachedProfile", "error_code",
    }  # fmt: skip
    codecs = {
        "rendezvous_keys", "sync_mailbox_key", "encode_pair_item", "decode_pair_item",
        "encode_starter", "decode_starter", "encode_sync_item", "decode_sync_item",
        "seal_sync_item", "open_sync_item", "Rekey", "SyncItem", "PairItem",
    }  # fmt: skip
    assert agents | codecs <= set(dchat_identity.lowlevel.__all__)
    assert not (agents | codecs) & set(dchat_identity.__all__)


def test_recovery_agents_and_their_codecs_are_lowlevel() -> None:
    agents = {
        "GuardianAgent", "RecoveryAgent", "Outgoing", "ShareMessage", "LookupMessage",
        "InfoMessage", "RequestMessage", "ApprovalMessage", "VetoMessage", "KIND_SHARE",
        "DocumentTrust", "Accepted", "LEARNED",
        "follow", "Followed", "check_origin", "answer_lookup", "restored_chain", "first_chain",
        "RecoveryStateError", "RecoveryRefusedError", "ReplayedRecoveryError",
        "UnexpectedRecoveryError", "RecoveryLockTooShortError", "decode_map", "encode_map",
        "GuardianStep", "GUARDIAN_KINDS",
    }  # fmt: skip
    assert agents <= set(dchat_identity.lowlevel.__all__)
    assert not agents & set(dchat_identity.__all__)


def test_the_burner_book_is_lowlevel() -> None:
    names = {"BurnerBook", "BURNER_KEYS", "BurnerStateError", "burner_row"}
    assert names <= set(dchat_identity.lowlevel.__all__)
    assert not names & set(dchat_identity.__all__)
