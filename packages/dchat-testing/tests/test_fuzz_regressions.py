"""Every kept fuzz input and every seed, replayed through its target on every test run.

``fuzz/run.py`` (atheris) keeps each crashing input in
``fuzz/regressions/<target>/``; once the decoder is fixed the file stays, and
this test proves it stays fixed. The seeds (valid encodings from the real
encoders) check the round-trip half of each target's contract. A few
hypothesis examples of hostile bytes per target keep the replay honest when no
regression is kept yet.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import ChainArgumentError, DchatChainError, InvalidBlockError
from dchat_core import DecodeError
from dchat_testing import hostile_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

FUZZ = Path(__file__).resolve().parents[3] / "fuzz"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dchat_fuzz_targets", FUZZ / "targets.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


targets = _load()
NAMES = sorted(targets.TARGETS)


def _kept() -> list[tuple[str, Path]]:
    root = FUZZ / "regressions"
    return [
        (name.name, path)
        for name in sorted(root.iterdir())
        if name.is_dir()
        for path in sorted(name.iterdir())
        if path.is_file()
    ]


def test_every_decoder_of_the_brief_has_a_target() -> None:
    assert {
        "canonical_cbor",
        "canonical_values",
        "link_frames",
        "relay_requests",
        "envelopes",
        "identity_documents",
        "transactions",
        "blocks",
    } <= set(NAMES)


@pytest.mark.parametrize(("name", "path"), _kept(), ids=lambda v: getattr(v, "name", v))
def test_a_kept_crash_input_no_longer_crashes(name: str, path: Path) -> None:
    targets.TARGETS[name](path.read_bytes())


@pytest.mark.parametrize("name", NAMES)
def test_the_seeds_decode_and_round_trip(name: str, vectors_or_none: Path | None) -> None:
    seeds = targets.seeds(name, vectors_or_none)
    assert seeds
    for seed in seeds:
        targets.TARGETS[name](seed)
        if name in targets.ROUND_TRIPS:
            targets.ROUND_TRIPS[name](seed)  # valid: the round trip was checked


@pytest.fixture
def vectors_or_none() -> Path | None:
    from dchat_testing.pytest_plugin import vectors_dir

    path = vectors_dir()
    return path if path.is_dir() else None


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60)
@given(data=st.one_of(hostile_bytes(), st.binary(max_size=64)))
def test_hostile_bytes_get_a_value_or_the_typed_error(name: str, data: bytes) -> None:
    targets.TARGETS[name](data)


def test_the_value_round_trip_tells_booleans_from_integers() -> None:
    assert targets._same({"a": [1, b"x"]}, {"a": [1, b"x"]})
    assert not targets._same([True], [1])
    assert not targets._same({"a": 0}, {"a": False})


def test_only_the_owners_typed_peer_error_counts_as_a_clean_rejection() -> None:
    def raising(exc: Exception) -> Callable[[bytes], None]:
        def decode(_: bytes) -> None:
            raise exc

        return decode

    assert targets._expect(DchatChainError, raising(InvalidBlockError("x")), b"") is None
    for leak in (KeyError("x"), DecodeError("core's, not chain's"), ChainArgumentError("x")):
        with pytest.raises(type(leak)):
            targets._expect(DchatChainError, raising(leak), b"")
