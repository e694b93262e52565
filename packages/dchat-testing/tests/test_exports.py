"""The public surface of dchat_testing is exactly its `__all__`."""

from __future__ import annotations

import dchat_testing


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(dchat_testing) if not name.startswith("_")}
    public -= {"annotations"}
    submodules = {
        name for name, value in vars(dchat_testing).items() if type(value).__name__ == "module"
    }
    assert set(dchat_testing.__all__) == public - submodules


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(dchat_testing.__all__, tuple)
    assert list(dchat_testing.__all__) == sorted(dchat_testing.__all__)


def test_the_messaging_engine_harness_is_exported() -> None:
    harness = {
        "ENGINE_RELAY",
        "EngineDevice",
        "EngineNet",
        "MemoryRelay",
        "StubDirectory",
        "envelope_mailbox",
    }
    assert harness <= set(dchat_testing.__all__)
