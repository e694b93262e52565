"""The local directory destination: names, atomic puts, listing, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_storage.backup import (
    BackupDestination,
    BackupIntegrityError,
    BackupIOError,
    BackupUsageError,
    LocalDirectoryDestination,
)

_ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789._-/")


def test_put_get_list_delete(tmp_path: Path) -> None:
    dest = LocalDirectoryDestination(tmp_path / "repo")
    assert isinstance(dest, BackupDestination)
    assert dest.list("data") == []
    dest.put("data/ab/abcd", b"one")
    dest.put("data/cd/cdef", b"two")
    dest.put("config", b"cfg")
    assert dest.get("data/ab/abcd") == b"one"
    assert dest.list("data") == ["data/ab/abcd", "data/cd/cdef"]
    assert dest.exists("config")
    assert not dest.exists("data/ab/zzzz")
    dest.put("config", b"new")
    assert dest.get("config") == b"new"
    dest.delete("data/ab/abcd")
    dest.delete("data/ab/abcd")  # idempotent
    assert dest.list("data") == ["data/cd/cdef"]
    with pytest.raises(BackupIntegrityError, match="missing"):
        dest.get("data/ab/abcd")
    assert (tmp_path / "repo" / "config").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "repo" / "data").stat().st_mode & 0o777 == 0o700


def test_a_failed_put_keeps_the_old_blob_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = LocalDirectoryDestination(tmp_path / "repo")
    dest.put("snapshots/aa", b"old")

    def no_space(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(BackupIOError, match="No space left"):
        dest.put("snapshots/aa", b"new content")
    monkeypatch.undo()
    assert dest.get("snapshots/aa") == b"old"
    assert [p.name for p in (tmp_path / "repo" / "snapshots").iterdir()] == ["aa"]


def test_temporary_files_are_not_listed(tmp_path: Path) -> None:
    dest = LocalDirectoryDestination(tmp_path / "repo")
    dest.put("data/aa/aa01", b"x")
    (tmp_path / "repo" / "data" / "aa" / ".aa02.1234.tmp").write_bytes(b"half")
    assert dest.list("data") == ["data/aa/aa01"]


@given(
    st.one_of(
        st.sampled_from(["", "/abs", "a/../b", "..", "a//b", "a/", "A", "x.tmp", "a/.hidden"]),
        st.text().filter(lambda s: any(c not in _ALLOWED for c in s)),
    )
)
def test_bad_names_are_refused(name: str) -> None:
    dest = LocalDirectoryDestination("/nonexistent-dchat-test-root")
    with pytest.raises(BackupUsageError):
        dest.put(name, b"x")
    with pytest.raises(BackupUsageError):
        dest.get(name)


def test_unwritable_destination_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    dest = LocalDirectoryDestination(tmp_path / "file" / "repo")
    with pytest.raises(BackupIOError):
        dest.put("config", b"x")
