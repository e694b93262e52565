"""Private data directories and database files (issue 14, item 5)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dchat_storage import check_private_directory, open_database
from dchat_storage.lowlevel import ExposedDirectoryError


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that keeps every permission bit a file is created with."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("loose_umask")
def test_a_new_database_and_its_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "node.db"
    with open_database(path, passphrase=b"pw") as db:
        db.settings.set("k", b"v", 1.0)  # a write: the WAL exists now
        created = sorted(p.name for p in path.parent.iterdir())
        assert {_mode(path.parent / name) for name in created} == {0o600}, created
    assert _mode(path.parent) == 0o700


@pytest.mark.usefixtures("loose_umask")
def test_a_database_in_an_existing_directory_is_private(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o700)
    with open_database(tmp_path / "data" / "node.db"):
        pass
    assert _mode(tmp_path / "data" / "node.db") == 0o600


def test_a_private_directory_passes(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o700)
    check_private_directory(tmp_path / "d")
    (tmp_path / "d").chmod(0o500)
    check_private_directory(tmp_path / "d")


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o705, 0o720, 0o702, 0o777, 0o701])
def test_a_directory_others_can_reach_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "d"
    target.mkdir()
    target.chmod(mode)
    with pytest.raises(ExposedDirectoryError, match=f"chmod 700 {target}") as refused:
        check_private_directory(target)
    assert f"mode {mode:04o}" in str(refused.value)
    assert _mode(target) == mode  # reported, not silently changed


def test_a_missing_path_or_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExposedDirectoryError, match="cannot use data directory"):
        check_private_directory(tmp_path / "absent")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ExposedDirectoryError, match="is not a directory"):
        check_private_directory(tmp_path / "file")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory to another user")
def test_another_users_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "d"
    target.mkdir(mode=0o700)
    os.chown(target, 54321, -1)
    with pytest.raises(ExposedDirectoryError, match="belongs to uid 54321, not to this user"):
        check_private_directory(target)


def test_read_private_reads_what_write_private_wrote_and_bounds_the_size(tmp_path: Path) -> None:
    from dchat_storage.lowlevel import read_private, write_private

    path = tmp_path / "state" / "s.bin"
    assert read_private(path, 8) is None  # no file yet
    write_private(path, b"12345678")
    assert read_private(path, 8) == b"12345678"
    write_private(path, b"123456789")
    with pytest.raises(ValueError, match="larger than 8 bytes"):
        read_private(path, 8)
    path.unlink()
    path.mkdir()
    with pytest.raises(IsADirectoryError):
        read_private(path, 8)  # there, but not readable as a file
