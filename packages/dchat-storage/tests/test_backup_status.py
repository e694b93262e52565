"""The last-verified-backup record: round trip, atomic 0600 file, damaged records read as none."""

from __future__ import annotations

import json
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_storage.backup import (
    BACKUP_STATUS_FILE,
    BackupIOError,
    BackupStatus,
    read_backup_status,
    write_backup_status,
)


def test_round_trip_private_and_replaced(tmp_path: Path) -> None:
    assert read_backup_status(tmp_path) is None
    write_backup_status(tmp_path, BackupStatus(1_700_000_000.5, 1_700_000_100.0, 3))
    path = tmp_path / BACKUP_STATUS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_backup_status(tmp_path) == BackupStatus(1_700_000_000.5, 1_700_000_100.0, 3)
    write_backup_status(tmp_path, BackupStatus(1_700_086_400.0, 1_700_086_500.0, 4))
    assert read_backup_status(tmp_path) == BackupStatus(1_700_086_400.0, 1_700_086_500.0, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [BACKUP_STATUS_FILE]  # no side file


def test_an_unwritable_directory_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")  # a file where the data directory's parent should be
    with pytest.raises(BackupIOError):
        write_backup_status(tmp_path / "file" / "data", BackupStatus(1.0, 2.0, 1))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"snapshot_time": 1}',
        b'{"snapshot_time": "1", "verified_at": 2, "snapshots": 1}',
        b'{"snapshot_time": 1, "verified_at": -2, "snapshots": 1}',
        b'{"snapshot_time": 1, "verified_at": 2, "snapshots": true}',
        b'{"snapshot_time": 1, "verified_at": 2, "snapshots": 1.5}',
        b'{"snapshot_time": NaN, "verified_at": 2, "snapshots": 1}',
        b'{"snapshot_time": 1, "verified_at": 2, "snapshots": 1, "x": "' + b"a" * 5000 + b'"}',
    ],
)
def test_a_damaged_record_reads_as_none(tmp_path: Path, body: bytes) -> None:
    (tmp_path / BACKUP_STATUS_FILE).write_bytes(body)
    assert read_backup_status(tmp_path) is None


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_read_as_a_valid_status_or_none(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / BACKUP_STATUS_FILE).write_bytes(body)
        status = read_backup_status(directory)
    assert status is None or (status.snapshot_time >= 0 and status.snapshots >= 0)


def test_a_written_record_is_plain_json(tmp_path: Path) -> None:
    write_backup_status(tmp_path, BackupStatus(10.0, 20.0, 1))
    record = json.loads((tmp_path / BACKUP_STATUS_FILE).read_text())
    assert record == {"snapshot_time": 10.0, "verified_at": 20.0, "snapshots": 1}
