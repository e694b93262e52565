"""Backups: round trips, deduplication, keys, restore rules, prune, live SQLite."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import dchat_storage.backup as backup
from dchat_core import ManualClock
from dchat_crypto import KdfParams
from dchat_storage.backup import (
    BackupAuthenticationError,
    BackupIntegrityError,
    BackupUsageError,
    ChunkerParams,
    LocalDirectoryDestination,
    Repository,
    SnapshotNotFoundError,
)
from dchat_storage.backup._store import chunk_name

PASSPHRASE = "correct horse battery staple"
CHUNKS = ChunkerParams(min_size=16 << 10, avg_size=64 << 10, max_size=256 << 10)
MARKER = b"a-plaintext-marker-that-must-never-reach-the-repository"


class CountingDestination(LocalDirectoryDestination):
    """A local destination that counts the bytes put into it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written = 0

    def put(self, name: str, data: bytes) -> None:
        self.written += len(data)
        super().put(name, data)


def _make_tree(root: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "dchat.toml").write_text('[node]\nrole = "user"\n')
    (root / "random.bin").write_bytes(rng.randbytes(2_000_000))
    (root / "sub" / "text.log").write_bytes(MARKER + b"\n" + b"a line of a log\n" * 60_000)
    (root / "sub" / "deeper" / "empty").write_bytes(b"")
    (root / "node.key").write_bytes(rng.randbytes(120))
    os.chmod(root / "node.key", 0o600)
    os.chmod(root / "sub" / "text.log", 0o640)
    os.chmod(root / "sub" / "deeper", 0o750)
    os.utime(root / "dchat.toml", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))


def _tree(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path under ``root`` with its mode, mtime (files) and content."""
    out: dict[str, tuple[int, int, bytes | None]] = {}
    for path in sorted(root.rglob("*")):
        info = path.stat()
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            out[rel] = (info.st_mode, 0, None)
        else:
            out[rel] = (info.st_mode, info.st_mtime_ns, path.read_bytes())
    return out


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "node"
    root.mkdir(mode=0o700)
    _make_tree(root)
    return root


@pytest.fixture
def dest(tmp_path: Path) -> CountingDestination:
    return CountingDestination(tmp_path / "repo")


@pytest.fixture
def repo(dest: CountingDestination) -> Repository:
    return Repository.init(dest, PASSPHRASE, chunker=CHUNKS, kdf=KdfParams.TESTING)


def test_round_trip_restores_a_byte_identical_tree(
    repo: Repository, data_dir: Path, tmp_path: Path
) -> None:
    result = repo.create(data_dir)
    target = tmp_path / "restored"
    restored = repo.restore(result.snapshot.id, target)
    assert restored == result.snapshot
    assert _tree(target) == _tree(data_dir)
    assert target.stat().st_mode == data_dir.stat().st_mode


def test_snapshot_lists_files_and_sizes(repo: Repository, data_dir: Path) -> None:
    clock = ManualClock(1_700_000_123.0)
    result = repo.create(data_dir, clock=clock)
    (listed,) = Repository.open(repo._store.destination, PASSPHRASE).snapshots()
    assert listed == result.snapshot
    assert listed.time == 1_700_000_123.0
    assert listed.files == 5
    assert listed.size == sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
    assert listed.source == str(data_dir.resolve())


def test_unchanged_data_writes_almost_nothing(
    repo: Repository, dest: CountingDestination, data_dir: Path
) -> None:
    dest.written = 0
    first = repo.create(data_dir)
    first_written, dest.written = dest.written, 0
    second = repo.create(data_dir)
    assert first.bytes_written == first_written > 2_000_000
    assert second.new_chunks == 0
    assert dest.written == second.bytes_written < first_written / 100


def test_a_small_change_writes_about_one_chunk(
    repo: Repository, dest: CountingDestination, data_dir: Path
) -> None:
    first = repo.create(data_dir)
    blob = bytearray((data_dir / "random.bin").read_bytes())
    blob[1_000_000:1_000_100] = bytes(100)
    (data_dir / "random.bin").write_bytes(bytes(blob))
    dest.written = 0
    second = repo.create(data_dir)
    # One chunk in >99 % of random chunker keys (measured); an unlucky key makes
    # the cut sequence fall back into step a chunk or two later.
    assert 1 <= second.new_chunks <= 4
    assert dest.written == second.bytes_written < first.bytes_written / 5


def test_repository_holds_no_plaintext_and_ids_are_keyed(tmp_path: Path, data_dir: Path) -> None:
    repos = []
    for name in ("a", "b"):
        dest = LocalDirectoryDestination(tmp_path / name)
        repos.append(dest)
        Repository.init(dest, PASSPHRASE, chunker=CHUNKS, kdf=KdfParams.TESTING).create(data_dir)
    for path in (tmp_path / "a").rglob("*"):
        if path.is_file():
            assert MARKER not in path.read_bytes()
            assert b"a line of a log" not in path.read_bytes()
    # Same content, different repositories: no chunk name in common.
    assert set(repos[0].list("data")).isdisjoint(repos[1].list("data"))


def test_wrong_passphrase_and_tampered_key_give_one_opaque_error(
    repo: Repository, dest: CountingDestination
) -> None:
    with pytest.raises(BackupAuthenticationError) as wrong:
        Repository.open(dest, "not the passphrase")
    (key_name,) = dest.list("keys")
    blob = bytearray(dest.get(key_name))
    blob[40] ^= 1
    dest.put(key_name, bytes(blob))
    with pytest.raises(BackupAuthenticationError) as tampered:
        Repository.open(dest, PASSPHRASE)
    assert str(wrong.value) == str(tampered.value)
    assert "passphrase" in str(wrong.value)


def test_init_refuses_an_existing_repository(repo: Repository, dest: CountingDestination) -> None:
    with pytest.raises(BackupUsageError):
        Repository.init(dest, PASSPHRASE, kdf=KdfParams.TESTING)


def test_open_without_a_repository_says_so(tmp_path: Path) -> None:
    with pytest.raises(BackupUsageError, match="no backup repository"):
        Repository.open(LocalDirectoryDestination(tmp_path / "nothing"), PASSPHRASE)


def test_restore_refuses_a_non_empty_target(
    repo: Repository, data_dir: Path, tmp_path: Path
) -> None:
    snapshot = repo.create(data_dir).snapshot
    target = tmp_path / "busy"
    target.mkdir()
    (target / "precious").write_bytes(b"keep me")
    with pytest.raises(BackupUsageError, match="not empty"):
        repo.restore(snapshot.id, target)
    assert [p.name for p in target.iterdir()] == ["precious"]
    assert (target / "precious").read_bytes() == b"keep me"
    with pytest.raises(BackupUsageError, match="not a directory"):
        repo.restore(snapshot.id, target / "precious")
    empty = tmp_path / "empty"
    empty.mkdir()
    repo.restore(snapshot.id[:8], empty)
    assert _tree(empty) == _tree(data_dir)


def test_restore_checks_whole_file_hashes(repo: Repository, data_dir: Path, tmp_path: Path) -> None:
    # A manifest whose digest disagrees with authentic chunks (a writer bug):
    # restore must refuse the file rather than write a plausible wrong one.
    result = repo.create(data_dir)
    store = repo._store
    manifest = store.manifest(bytes.fromhex(result.snapshot.id))
    entries = tuple(
        replace(e, digest=bytes(32)) if e.path == "random.bin" else e for e in manifest.entries
    )
    store.put_manifest(replace(manifest, entries=entries))
    with pytest.raises(BackupIntegrityError, match=r"random\.bin does not match"):
        repo.restore(result.snapshot.id, tmp_path / "r")
    assert not (tmp_path / "r" / "random.bin").exists()
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.startswith(".random.bin")]


def test_a_chunk_whose_content_does_not_hash_to_its_id_is_damaged(
    repo: Repository, data_dir: Path
) -> None:
    repo.create(data_dir)
    store = repo._store
    victim = sorted(store.chunk_ids())[0]
    # Authentic under the repository key, but not the content its id names.
    store.destination.put(chunk_name(victim), store.keys.seal(b"c", victim, b"other bytes"))
    problems = repo.verify().problems
    assert {(p.blob, p.reason) for p in problems} == {(chunk_name(victim), "damaged")}


def test_progress_reports_reach_the_total(repo: Repository, data_dir: Path, tmp_path: Path) -> None:
    seen: dict[str, list[tuple[int, int]]] = {"create": [], "restore": [], "verify": []}
    repo.create(data_dir, progress=lambda d, t: seen["create"].append((d, t)))
    repo.restore("latest", tmp_path / "r", progress=lambda d, t: seen["restore"].append((d, t)))
    repo.verify(progress=lambda d, t: seen["verify"].append((d, t)))
    for calls in seen.values():
        assert len(calls) > 3
        assert calls[-1][0] == calls[-1][1] > 0
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_snapshot_selection(repo: Repository, data_dir: Path, tmp_path: Path) -> None:
    clock = ManualClock(1_000.0)
    old = repo.create(data_dir, clock=clock).snapshot
    (data_dir / "dchat.toml").write_text("changed\n")
    clock.advance(60.0)
    repo.create(data_dir, clock=clock)
    repo.restore("latest", tmp_path / "latest")
    assert (tmp_path / "latest" / "dchat.toml").read_text() == "changed\n"
    repo.restore(old.id[:6], tmp_path / "old")
    assert (tmp_path / "old" / "dchat.toml").read_text() == '[node]\nrole = "user"\n'
    with pytest.raises(SnapshotNotFoundError):
        repo.restore("", tmp_path / "x")
    with pytest.raises(SnapshotNotFoundError):
        repo.restore("zz", tmp_path / "x")


def test_prune_keeps_referenced_chunks_and_is_idempotent(
    repo: Repository, data_dir: Path, tmp_path: Path
) -> None:
    clock = ManualClock(1_000.0)
    snapshots = []
    for generation in range(3):
        (data_dir / "random.bin").write_bytes(random.Random(generation + 10).randbytes(500_000))
        snapshots.append(repo.create(data_dir, clock=clock).snapshot)
        clock.advance(10.0)
    before = len(repo._store.chunk_ids())
    result = repo.prune(keep_last=2)
    assert result.removed_snapshots == (snapshots[0].id,)
    assert set(result.kept_snapshots) == {snapshots[1].id, snapshots[2].id}
    assert result.removed_chunks > 0
    assert len(repo._store.chunk_ids()) == before - result.removed_chunks
    assert repo.verify().ok
    for kept in snapshots[1:]:
        target = tmp_path / kept.id
        repo.restore(kept.id, target)
        assert (target / "random.bin").read_bytes() == random.Random(
            snapshots.index(kept) + 10
        ).randbytes(500_000)
    again = repo.prune(keep_last=2)
    assert again.removed_snapshots == ()
    assert again.removed_chunks == 0
    with pytest.raises(SnapshotNotFoundError):
        repo.restore(snapshots[0].id, tmp_path / "gone")


def test_prune_deletes_nothing_when_a_manifest_is_unreadable(
    repo: Repository, dest: CountingDestination, data_dir: Path
) -> None:
    repo.create(data_dir)
    (data_dir / "random.bin").write_bytes(b"different")
    repo.create(data_dir)
    names = dest.list("snapshots")
    dest.put(names[0], dest.get(names[0])[:-1])
    chunks_before = dest.list("data")
    with pytest.raises(BackupIntegrityError, match="nothing was pruned"):
        repo.prune(keep_last=1)
    assert dest.list("data") == chunks_before
    assert dest.list("snapshots") == names
    with pytest.raises(BackupUsageError):
        repo.prune(keep_last=0)


def test_skips_side_files_and_the_repository_inside_the_data_dir(
    data_dir: Path, tmp_path: Path
) -> None:
    for name in ("api.json", "node.db-wal", "node.db-shm", "node.lock", "node.key.tmp"):
        (data_dir / name).write_bytes(b"volatile")
    inner = LocalDirectoryDestination(data_dir / "backups")
    repo = Repository.init(inner, PASSPHRASE, chunker=CHUNKS, kdf=KdfParams.TESTING)
    repo.create(data_dir, exclude=[data_dir / "backups"])
    repo.restore("latest", tmp_path / "r")
    names = {p.relative_to(tmp_path / "r").as_posix() for p in (tmp_path / "r").rglob("*")}
    assert names == {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*")} - {
        "api.json",
        "node.db-wal",
        "node.db-shm",
        "node.lock",
        "node.key.tmp",
        "backups",
        *(p.relative_to(data_dir).as_posix() for p in (data_dir / "backups").rglob("*")),
    }


# -- live SQLite ---------------------------------------------------------------------------


@pytest.fixture
def live_db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(data_dir / "node.db", check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # keep the rows in the WAL
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, pair INTEGER, body BLOB)")
    conn.commit()
    yield conn
    conn.close()


def _rows(path: Path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return conn.execute("SELECT pair, count(*) FROM t GROUP BY pair").fetchall()
    finally:
        conn.close()


def test_a_live_wal_database_is_captured_with_its_wal_contents(
    repo: Repository, data_dir: Path, live_db: sqlite3.Connection, tmp_path: Path
) -> None:
    live_db.executemany("INSERT INTO t (pair, body) VALUES (?, ?)", [(1, b"x" * 100)] * 500)
    live_db.commit()
    # The rows live only in node.db-wal, which a raw copy of node.db would miss.
    assert (data_dir / "node.db-wal").stat().st_size > 0
    repo.create(data_dir)
    repo.restore("latest", tmp_path / "r")
    assert _rows(tmp_path / "r" / "node.db") == [(1, 500)]
    assert not (tmp_path / "r" / "node.db-wal").exists()
    assert not list(data_dir.glob(".backup-*"))  # the temporary copy is gone


def test_snapshots_of_a_database_under_writes_are_consistent(
    repo: Repository, data_dir: Path, live_db: sqlite3.Connection, tmp_path: Path
) -> None:
    live_db.execute("PRAGMA wal_autocheckpoint=50")
    stop = threading.Event()

    def writer() -> None:
        pair = 0
        while not stop.is_set():
            pair += 1
            with live_db:  # both rows of a pair commit together, or neither
                live_db.execute("INSERT INTO t (pair, body) VALUES (?, ?)", (pair, os.urandom(900)))
                live_db.execute("INSERT INTO t (pair, body) VALUES (?, ?)", (pair, os.urandom(900)))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(4):
            repo.create(data_dir)
    finally:
        stop.set()
        thread.join()
    pairs = []
    for snapshot in repo.snapshots():
        target = tmp_path / snapshot.id
        repo.restore(snapshot.id, target)
        rows = _rows(target / "node.db")
        assert all(count == 2 for _pair, count in rows)
        pairs.append(len(rows))
    assert pairs[-1] > 0


def test_public_surface_is_sorted_and_complete() -> None:
    public = {name for name in vars(backup) if not name.startswith("_")} - {"annotations"}
    modules = {n for n, v in vars(backup).items() if type(v).__name__ == "module"}
    assert set(backup.__all__) == public - modules
    assert list(backup.__all__) == sorted(backup.__all__)
    import dchat_storage

    assert "Repository" not in dchat_storage.__all__
