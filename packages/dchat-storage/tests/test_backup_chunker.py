"""The content-defined chunker: lossless, bounded, content-defined, keyed."""

from __future__ import annotations

import io
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_storage.backup import BackupUsageError, ChunkerParams
from dchat_storage.backup._chunker import Chunker

PARAMS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
KEY = bytes(range(32))
CHUNKER = Chunker(PARAMS, KEY)


def _random(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


@given(st.binary(max_size=40_000))
def test_chunks_concatenate_to_the_input(data: bytes) -> None:
    assert b"".join(CHUNKER.split(data)) == data


@given(st.integers(0, 2**32), st.integers(0, 120_000))
def test_chunk_sizes_stay_within_bounds(seed: int, size: int) -> None:
    chunks = list(CHUNKER.split(_random(seed, size)))
    assert all(PARAMS.min_size <= len(c) <= PARAMS.max_size for c in chunks[:-1])
    assert all(0 < len(c) <= PARAMS.max_size for c in chunks[-1:])


@given(st.integers(0, 2**32), st.integers(1, 5000))
def test_streaming_cuts_where_the_in_memory_split_cuts(seed: int, read_size: int) -> None:
    data = _random(seed, 60_000)

    class Trickle(io.RawIOBase):
        """Returns short reads, as pipes and network files do."""

        def __init__(self) -> None:
            self.pos = 0

        def read(self, size: int = -1) -> bytes:
            piece = data[self.pos : self.pos + min(size, read_size)]
            self.pos += len(piece)
            return piece

    assert list(CHUNKER.stream(Trickle())) == list(CHUNKER.split(data))  # type: ignore[arg-type]


def _new_chunks(seed: int, prefix: bytes) -> tuple[int, int]:
    data = _random(seed, 200_000)
    old = list(CHUNKER.split(data))
    new = list(CHUNKER.split(prefix + data))
    return len(set(new) - set(old)), len(old)


@settings(derandomize=True, max_examples=60)
@given(st.integers(0, 2**32), st.integers(1, PARAMS.min_size))
def test_an_insertion_at_the_front_changes_only_the_first_few_chunks(
    seed: int, insert: int
) -> None:
    changed, total = _new_chunks(seed, _random(~seed, insert))
    # The cut sequence falls back in step after a few chunks (one, mostly: see the
    # next test); fixed-size chunking would change every one of ~40 chunks.
    assert changed <= 6 < total


def test_an_insertion_usually_changes_one_chunk() -> None:
    counts = [_new_chunks(seed, _random(-seed, 1 + seed % 64))[0] for seed in range(200)]
    assert statistics.mean(counts) < 1.3
    assert sum(c <= 2 for c in counts) >= 0.95 * len(counts)


def test_an_edit_in_the_middle_changes_the_chunks_around_it_only() -> None:
    data = bytearray(_random(7, 200_000))
    old = list(CHUNKER.split(bytes(data)))
    data[100_000:100_010] = b"0123456789"
    new = list(CHUNKER.split(bytes(data)))
    changed = len(set(new) - set(old))
    assert 1 <= changed <= 4  # of ~40
    assert new[:15] == old[:15]
    assert new[-15:] == old[-15:]


def test_average_size_is_near_the_target_on_random_data() -> None:
    sizes = [len(c) for c in CHUNKER.split(_random(1, 2_000_000))][:-1]
    assert PARAMS.avg_size * 0.8 < statistics.mean(sizes) < PARAMS.avg_size * 1.5


def test_data_without_content_boundaries_is_cut_at_max_size() -> None:
    chunks = list(CHUNKER.split(bytes(50_000)))
    assert [len(c) for c in chunks] == [16384, 16384, 16384, 50_000 - 3 * 16384]


def test_boundaries_depend_on_the_key() -> None:
    data = _random(3, 200_000)
    ours = [len(c) for c in CHUNKER.split(data)]
    theirs = [len(c) for c in Chunker(PARAMS, bytes(32)).split(data)]
    assert ours != theirs


@pytest.mark.parametrize(
    ("min_size", "avg_size", "max_size"),
    [(32, 256, 1024), (1024, 3000, 8192), (4096, 2048, 8192), (1024, 4096, 2048), (1, 2, 3)],
)
def test_bad_parameters_are_refused(min_size: int, avg_size: int, max_size: int) -> None:
    with pytest.raises(BackupUsageError):
        ChunkerParams(min_size, avg_size, max_size)
