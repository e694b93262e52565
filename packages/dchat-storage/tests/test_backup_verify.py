"""verify: every flipped bit and every truncation anywhere in the repository is found."""

from __future__ import annotations

import contextlib
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_crypto import KdfParams
from dchat_storage.backup import (
    BackupAuthenticationError,
    BackupIntegrityError,
    ChunkerParams,
    LocalDirectoryDestination,
    Repository,
    VerifyReport,
)
from dchat_storage.backup._manifest import Manifest, RepoConfig

PASSPHRASE = b"verify me"
CHUNKS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)


@dataclass
class Fixture:
    root: Path
    dest: LocalDirectoryDestination
    blobs: list[str]
    snapshot: str
    files_of_chunk: dict[str, set[str]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    base = tmp_path_factory.mktemp("verify")
    data = base / "data"
    (data / "sub").mkdir(parents=True)
    rng = random.Random(5)
    (data / "a.bin").write_bytes(rng.randbytes(20_000))
    (data / "sub" / "b.txt").write_bytes(b"hello backup\n" * 3000)
    dest = LocalDirectoryDestination(base / "repo")
    repo = Repository.init(dest, PASSPHRASE, chunker=CHUNKS, kdf=KdfParams.TESTING)
    snapshot = repo.create(data).snapshot.id
    files_of_chunk: dict[str, set[str]] = {}
    for entry in repo._store.manifest(bytes.fromhex(snapshot)).entries:
        for ref in entry.chunks:
            files_of_chunk.setdefault(ref.id.hex(), set()).add(entry.path)
    blobs = sorted(p.relative_to(dest.root).as_posix() for p in dest.root.rglob("*") if p.is_file())
    yield Fixture(base, dest, blobs, snapshot, files_of_chunk)
    shutil.rmtree(base)


def _check(dest: LocalDirectoryDestination) -> VerifyReport | None:
    """The verify report, or None when the damage already stops the repository opening."""
    try:
        return Repository.open(dest, PASSPHRASE).verify()
    except (BackupAuthenticationError, BackupIntegrityError):
        return None


def test_a_sound_repository_verifies(built: Fixture) -> None:
    report = _check(built.dest)
    assert report is not None
    assert report.ok
    assert report.snapshots == 1
    assert report.chunks == len(built.files_of_chunk) >= 4


@settings(max_examples=150, deadline=None)
@given(blob=st.integers(0, 10_000), offset=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_any_flipped_bit_is_detected_and_attributed(
    built: Fixture, blob: int, offset: int, bit: int
) -> None:
    name = built.blobs[blob % len(built.blobs)]
    path = built.dest.root / name
    original = path.read_bytes()
    damaged = bytearray(original)
    damaged[offset % len(damaged)] ^= 1 << bit
    path.write_bytes(bytes(damaged))
    try:
        report = _check(built.dest)
    finally:
        path.write_bytes(original)
    if name.startswith(("keys/", "config")):
        assert report is None  # cannot even be opened
        return
    assert report is not None
    assert not report.ok
    assert report.damaged_snapshots == {built.snapshot}
    (problem,) = {(p.blob, p.reason) for p in report.problems}
    assert problem == (name, "damaged")
    if name.startswith("data/"):
        affected = {p.path for p in report.problems}
        assert affected == built.files_of_chunk[name.rsplit("/", 1)[1]]


@pytest.mark.parametrize("keep", [0, 1, 18, 19, 34, -1])
def test_a_truncated_chunk_is_detected_and_restore_refuses_it(
    built: Fixture, tmp_path: Path, keep: int
) -> None:
    name = next(n for n in built.blobs if n.startswith("data/"))
    path = built.dest.root / name
    original = path.read_bytes()
    path.write_bytes(original[:keep])
    try:
        repo = Repository.open(built.dest, PASSPHRASE)
        report = repo.verify()
        with pytest.raises(BackupIntegrityError):
            repo.restore(built.snapshot, tmp_path / "r")
    finally:
        path.write_bytes(original)
    assert [(p.blob, p.reason) for p in report.problems][:1] == [(name, "damaged")]
    # The damaged file never appears under its real name.
    (damaged_file,) = built.files_of_chunk[name.rsplit("/", 1)[1]]
    assert not (tmp_path / "r" / damaged_file).exists()


def test_a_missing_chunk_is_reported_with_the_files_it_breaks(built: Fixture) -> None:
    name = next(n for n in built.blobs if n.startswith("data/"))
    path = built.dest.root / name
    original = path.read_bytes()
    path.unlink()
    try:
        report = _check(built.dest)
    finally:
        path.write_bytes(original)
    assert report is not None
    assert {(p.blob, p.reason, p.snapshot) for p in report.problems} == {
        (name, "missing", built.snapshot)
    }
    assert {p.path for p in report.problems} == built.files_of_chunk[name.rsplit("/", 1)[1]]


def test_a_chunk_moved_to_another_name_is_damaged(built: Fixture) -> None:
    first, second = [n for n in built.blobs if n.startswith("data/")][:2]
    a, b = built.dest.root / first, built.dest.root / second
    original = b.read_bytes()
    b.write_bytes(a.read_bytes())
    try:
        report = _check(built.dest)
    finally:
        b.write_bytes(original)
    assert report is not None
    assert {p.blob for p in report.problems} == {second}


# -- hostile records -------------------------------------------------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.binary(max_size=80) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_entry = st.fixed_dictionaries(
    {
        "path": st.text(max_size=12),
        "kind": st.sampled_from(["file", "dir", "link"]),
        "mode": st.integers(0, 2**16),
        "mtime_ns": st.integers(0, 2**62),
        "size": st.integers(0, 2**20),
        "digest": st.binary(max_size=32),
        "chunks": st.binary(max_size=80),
    }
)


@given(st.one_of(st.binary(max_size=300), _values.map(canonical_encode)))
def test_garbage_manifests_and_configs_give_only_the_integrity_error(data: bytes) -> None:
    for decode in (lambda: Manifest.decode(b"\x00" * 16, data), lambda: RepoConfig.decode(data)):
        with contextlib.suppress(BackupIntegrityError):
            decode()


@given(st.lists(_entry, max_size=3))
def test_decoded_entries_are_safe_and_consistent(entries: list[dict[str, object]]) -> None:
    raw = canonical_encode({"v": 1, "time_ns": 1, "source": "/x", "entries": entries})
    try:
        manifest = Manifest.decode(b"\x00" * 16, raw)
    except BackupIntegrityError:
        return
    for entry in manifest.entries:
        parts = entry.path.split("/")
        assert entry.path == "" or ("" not in parts and ".." not in parts and "." not in parts)
        assert entry.size == sum(ref.size for ref in entry.chunks)


@pytest.mark.parametrize(
    "path", ["../escape", "/etc/passwd", "a/../../b", "a//b", "./a", "a/", "."]
)
def test_a_manifest_naming_a_path_outside_the_target_is_refused(path: str) -> None:
    entry = {"path": path, "kind": "dir", "mode": 0o700, "mtime_ns": 0, "size": 0}
    raw = {
        "v": 1,
        "time_ns": 1,
        "source": "/x",
        "entries": [{**entry, "digest": b"", "chunks": b""}],
    }
    with pytest.raises(BackupIntegrityError, match="unsafe path"):
        Manifest.decode(b"\x00" * 16, canonical_encode(raw))
