"""``dchat-node backup``: the command line, and backup -> wipe -> restore of a live node."""

from __future__ import annotations

import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dchat_node import NodeProcess
from dchat_node.cli import node_app
from dchat_storage.backup import read_backup_status

runner = CliRunner()
PASSPHRASE = "backup passphrase for tests"


def _backup(*args: str, passphrase: str | None = PASSPHRASE, code: int = 0) -> str:
    env = {"DCHAT_BACKUP_PASSPHRASE": passphrase}
    result = runner.invoke(node_app, ["backup", *args], env=env)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "node"
    (root / "files").mkdir(parents=True)
    (root / "dchat.toml").write_text('[node]\nrole = "user"\n')
    (root / "files" / "blob.bin").write_bytes(
        random.Random(1).randbytes(200_000)
    )  # < min chunk: one chunk
    (root / "api.json").write_text('{"token": "secret"}')
    return root


def test_init_create_list_verify_restore_prune(data_dir: Path, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    assert "created backup repository" in _backup("init", "--repo", repo)
    first = _backup("create", "--repo", repo, "--data-dir", str(data_dir))
    assert "2 files" in first
    (data_dir / "dchat.toml").write_text("changed\n")
    second = _backup("create", "--repo", repo, "--data-dir", str(data_dir))
    assert "1 new of 2 chunks" in second
    listing = _backup("list", "--repo", repo)
    ids = re.findall(r"^\W+([0-9a-f]{8})\W", listing, re.MULTILINE)
    assert len(ids) == 2
    assert "ok: 2 snapshots" in _backup("verify", "--repo", repo)
    target = tmp_path / "restored"
    _backup("restore", ids[0], "--target", str(target), "--repo", repo)
    assert (target / "dchat.toml").read_text() == '[node]\nrole = "user"\n'
    assert (target / "files" / "blob.bin").read_bytes() == (
        data_dir / "files" / "blob.bin"
    ).read_bytes()
    assert not (target / "api.json").exists()
    assert "removed 1 snapshots" in _backup("prune", "--repo", repo, "--keep-last", "1")
    assert "removed 0 snapshots and 0 chunks" in _backup(
        "prune", "--repo", repo, "--keep-last", "1"
    )


def test_passphrase_from_a_file(data_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("from a file\n")
    repo = str(tmp_path / "repo")
    _backup("init", "--repo", repo, "--passphrase-file", str(secret), passphrase=None)
    _backup("create", "--repo", repo, "--data-dir", str(data_dir), passphrase="from a file")


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error:")
    return lines[0]


def test_errors_are_one_line_and_exit_1(data_dir: Path, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    missing = _backup("list", "--repo", repo, code=1)
    assert "no backup repository" in _one_error_line(missing)
    assert "DCHAT_BACKUP_PASSPHRASE" in _one_error_line(
        _backup("init", "--repo", repo, passphrase=None, code=1)
    )
    _backup("init", "--repo", repo)
    _backup("create", "--repo", repo, "--data-dir", str(data_dir))
    wrong = _backup("list", "--repo", repo, passphrase="wrong", code=1)
    assert "wrong passphrase" in _one_error_line(wrong)
    busy = _backup("restore", "latest", "--target", str(data_dir), "--repo", repo, code=1)
    assert "not empty" in _one_error_line(busy)
    assert "already" in _one_error_line(_backup("init", "--repo", repo, code=1))


def test_verify_names_the_damaged_file_and_exits_1(data_dir: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _backup("init", "--repo", str(repo))
    _backup("create", "--repo", str(repo), "--data-dir", str(data_dir))
    biggest = max(
        (p for p in (repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    biggest.write_bytes(biggest.read_bytes()[:-1])  # truncated
    output = _backup("verify", "--repo", str(repo), code=1)
    assert "files/blob.bin" in output
    assert "damaged" in output
    assert "error: 1 problem;" in output


def test_verify_records_the_newest_verified_snapshot_in_the_data_dir(
    data_dir: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    _backup("init", "--repo", str(repo))
    _backup("verify", "--repo", str(repo), "--data-dir", str(data_dir))
    assert read_backup_status(data_dir) is None  # an empty repository proves no backup
    _backup("create", "--repo", str(repo), "--data-dir", str(data_dir))
    _backup("verify", "--repo", str(repo))  # no --data-dir: records nothing
    assert read_backup_status(data_dir) is None
    before = time.time()
    _backup("verify", "--repo", str(repo), "--data-dir", str(data_dir))
    status = read_backup_status(data_dir)
    assert status is not None
    assert status.snapshots == 1
    assert before - 60 < status.snapshot_time <= status.verified_at <= time.time()


def test_a_failed_verify_keeps_the_previous_record(data_dir: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _backup("init", "--repo", str(repo))
    _backup("create", "--repo", str(repo), "--data-dir", str(data_dir))
    _backup("verify", "--repo", str(repo), "--data-dir", str(data_dir))
    recorded = read_backup_status(data_dir)
    for chunk in (p for p in (repo / "data").rglob("*") if p.is_file()):
        chunk.write_bytes(chunk.read_bytes()[:-1])
    _backup("verify", "--repo", str(repo), "--data-dir", str(data_dir), code=1)
    assert read_backup_status(data_dir) == recorded


# -- the full cycle on a live node ---------------------------------------------------------


def _state(node: NodeProcess) -> tuple[str, list[object], list[object]]:
    with node.client() as client:
        return str(client.status()["identity_id"]), client.contacts(), client.messages()


@pytest.mark.slow
def test_backup_wipe_restore_gives_back_a_working_node(
    user_pair: tuple[NodeProcess, NodeProcess],
    wait_until: Callable[..., None],
    tmp_path: Path,
) -> None:
    alice, bob = user_pair
    with alice.client() as a, bob.client() as b:
        a.send("bob", "before the backup")
        wait_until(lambda: [m.text for m in b.messages()] == ["before the backup"])
        b.send("alice", "a reply, also before")
        wait_until(lambda: len(a.messages()) == 2)
    before = _state(alice)
    repo = str(tmp_path / "repo")
    _backup("init", "--repo", repo)
    # Taken while alice runs: the database is copied with SQLite's backup API.
    _backup("create", "--repo", repo, "--data-dir", str(alice.data_dir))
    alice.stop()
    shutil.rmtree(alice.data_dir)
    _backup("restore", "latest", "--target", str(alice.data_dir), "--repo", repo)
    alice.start()
    assert _state(alice) == before
    with alice.client() as a, bob.client() as b:
        a.send("bob", "after the restore")
        wait_until(lambda: "after the restore" in [m.text for m in b.messages()])


def test_a_node_with_its_database_on_postgresql_is_not_backed_up_by_accident(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DCHAT_DATABASE_URL", raising=False)
    repo = str(tmp_path / "repo")
    _backup("init", "--repo", repo)
    url = "postgresql://dchat:hunter2@db.example.org/relay"
    (data_dir / "dchat.toml").write_text(f'[node]\nrole = "relay"\ndatabase_url = "{url}"\n')
    refused = _backup("create", "--repo", repo, "--data-dir", str(data_dir), code=1)
    assert "is on PostgreSQL (database_url)" in refused
    assert "--without-database" in refused
    assert "hunter2" not in refused
    assert len(refused.strip().splitlines()) == 1
    assert "Traceback" not in refused
    assert "ok: 0 snapshots" in _backup("verify", "--repo", repo)
    taken = _backup("create", "--repo", repo, "--data-dir", str(data_dir), "--without-database")
    assert "2 files" in taken
