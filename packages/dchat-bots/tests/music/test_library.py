"""LocalLibrary on real tagged files: scan, search, rescan on change, and hostile libraries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_bots.music import (
    InvalidQueryError,
    LibraryRootError,
    LocalLibrary,
    PathOutsideLibraryError,
    TrackNotFoundError,
    TrackTooLargeError,
    UnreadableTrackError,
)
from dchat_core import CallerError, ManualClock, PeerError


def test_a_scan_indexes_the_tags_and_search_finds_every_word(library_dir: Path) -> None:
    with LocalLibrary(library_dir) as library:
        report = library.scan()
        assert (report.added, report.errors) == (3, [])
        blue, red = library.search("testers")
        assert (blue.title, blue.artist, blue.album, blue.track_no) == (
            "Blue Moon", "The Testers", "Tones", 1,
        )  # fmt: skip
        assert (red.title, red.duration_ms, red.media_type) == ("Red Sun", 1500, "audio/wav")
        assert red.label == "The Testers - Red Sun (0:01)"
        assert [t.title for t in library.search("TONES sun")] == ["Red Sun"]
        assert [t.title for t in library.search("hum")] == ["hum"]  # untagged: its file name
        assert library.search("testers moon sun") == []
        assert library.search("%") == library.search("_") == []  # LIKE wildcards are literal
        assert library.get(blue.id) == blue
        assert blue.file_name == "01 blue.wav"
        assert len(blue.id) == 24  # a digest: the id does not spell the path
        assert "blue" not in blue.id


def test_stream_open_and_cover_hand_over_the_files_bytes(library_dir: Path, audio) -> None:
    with LocalLibrary(library_dir) as library:
        (blue,) = library.search("blue")
        path = library_dir / "The Testers" / "Tones" / "01 blue.wav"
        assert b"".join(library.stream(blue.id)) == path.read_bytes()
        with library.open(blue.id) as opened:
            assert opened == path.resolve()
        assert blue.cover_art == blue.id
        assert library.cover_art(blue.id) == audio.png  # cover.png beside it
        (hum,) = library.search("hum")
        assert (hum.cover_art, library.cover_art(hum.id)) == (None, None)


def test_an_embedded_picture_is_the_cover(tmp_path: Path, audio) -> None:
    song = audio.write_wav(tmp_path / "lib" / "song.wav")
    audio.tag_wav(song, title="Pic", artist="A", album="B", track="1", picture=b"\x89PNG fake")
    with LocalLibrary(tmp_path / "lib") as library:
        (track,) = library.search("pic")
        assert library.cover_art(track.id) == b"\x89PNG fake"


def test_rescan_follows_added_changed_and_removed_files(library_dir: Path, audio) -> None:
    clock = ManualClock()
    with LocalLibrary(library_dir, rescan_interval=30, clock=clock) as library:
        assert len(library.search("wav")) == 3
        late = audio.write_wav(library_dir / "late" / "late.wav")
        audio.tag_wav(late, title="Late Night", artist="X", album="Y", track="1")
        assert library.search("night") == []  # not yet: the last scan is fresh
        clock.advance(30)
        (found,) = library.search("night")
        audio.tag_wav(late, title="Early Morning", artist="X", album="Y", track="1")
        os.utime(late, ns=(1, 1))  # a different mtime, whatever the file system's resolution
        clock.advance(30)
        assert library.search("night") == []
        assert [t.id for t in library.search("morning")] == [found.id]  # same file, same id
        late.unlink()
        report = library.scan()
        assert (report.removed, report.unchanged) == (1, 3)
        with pytest.raises(TrackNotFoundError):
            library.get(found.id)


def test_the_index_persists_and_unchanged_files_are_not_reread(
    library_dir: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    with LocalLibrary(library_dir, index=index) as library:
        assert library.scan().added == 3
    with LocalLibrary(library_dir, index=index) as library:
        report = library.scan()
        assert (report.added, report.updated, report.unchanged) == (0, 0, 3)


def test_broken_files_are_reported_and_the_scan_goes_on(library_dir: Path) -> None:
    broken = library_dir / "broken"
    broken.mkdir()
    (broken / "noise.mp3").write_bytes(os.urandom(4096))
    (broken / "empty.flac").write_bytes(b"")
    (broken / "cut.flac").write_bytes(b"fLaC\x00\x00\x00\x22" + b"\xff" * 10)
    (broken / "huge-id3.mp3").write_bytes(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\x00" * 64)
    riff = (library_dir / "The Testers" / "Tones" / "01 blue.wav").read_bytes()
    (broken / "lying.wav").write_bytes(riff[:12] + b"id3 \xff\xff\xff\x7f" + riff[12:40])
    with LocalLibrary(library_dir) as library:
        report = library.scan()
        failed = {path: type(error) for path, error in report.errors}
        assert failed == dict.fromkeys(
            [
                f"broken/{n}"
                for n in ("noise.mp3", "empty.flac", "cut.flac", "huge-id3.mp3", "lying.wav")
            ],
            UnreadableTrackError,
        )
        assert report.added == 3
        assert len(library.search("testers")) == 2


def test_a_size_cap_skips_large_files_and_refuses_one_that_grew(library_dir: Path) -> None:
    with LocalLibrary(library_dir, max_file_bytes=10_000) as library:
        report = library.scan()
        ((path, error),) = report.errors
        assert path == "The Testers/Tones/02 red.wav"
        assert isinstance(error, TrackTooLargeError)
        assert isinstance(error, PeerError)
        (blue,) = library.search("blue")
        with (library_dir / "The Testers" / "Tones" / "01 blue.wav").open("ab") as grow:
            grow.write(bytes(20_000))
        with pytest.raises(TrackTooLargeError):
            library.path_of(blue.id)
        with pytest.raises(TrackTooLargeError):
            b"".join(library.stream(blue.id))


def test_a_huge_file_is_skipped_unread_at_the_default_cap(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    with (tmp_path / "lib" / "huge.flac").open("wb") as sparse:
        sparse.truncate(LocalLibrary.MAX_FILE_BYTES + 1)  # sparse: no disk used
    with LocalLibrary(tmp_path / "lib") as library:
        ((path, error),) = library.scan().errors
    assert (path, type(error)) == ("huge.flac", TrackTooLargeError)


@pytest.mark.parametrize(
    "path", ["../secret.wav", "/etc/passwd", "a/../../secret.wav", "", "a\\..\\..\\x", "a\x00b"]
)
def test_paths_that_leave_the_root_are_refused(library_dir: Path, path: str) -> None:
    with LocalLibrary(library_dir) as library, pytest.raises(PathOutsideLibraryError) as refused:
        library.resolve(path)
    assert isinstance(refused.value, CallerError)


def test_symlinks_out_of_the_root_are_neither_indexed_nor_opened(
    library_dir: Path, tmp_path: Path, audio
) -> None:
    outside = tmp_path / "outside"
    audio.tag_wav(
        audio.write_wav(outside / "secret.wav"), title="Secret", artist="S", album="S", track="1"
    )
    (library_dir / "link.wav").symlink_to(outside / "secret.wav")
    (library_dir / "linkdir").symlink_to(outside, target_is_directory=True)
    (library_dir / "loop.wav").symlink_to(library_dir / "loop.wav")
    with LocalLibrary(library_dir) as library:
        report = library.scan()
        assert {path for path, _ in report.errors} == {"link.wav", "loop.wav"}
        assert all(isinstance(e, PathOutsideLibraryError) for _, e in report.errors)
        assert library.search("secret") == []  # linkdir/ was not walked either
        # A file indexed while it was inside, then swapped for a symlink out:
        (hum,) = library.search("hum")
        inside = library_dir / "loose" / "hum.wav"
        inside.unlink()
        inside.symlink_to(outside / "secret.wav")
        with pytest.raises(PathOutsideLibraryError):
            b"".join(library.stream(hum.id))
        with pytest.raises(PathOutsideLibraryError), library.open(hum.id):
            pass


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(st.sampled_from(["..", ".", "a", "b", "", "/", "loose", "c:"]), max_size=6))
def test_no_path_resolves_outside_the_root(library_dir: Path, parts: list[str]) -> None:
    with LocalLibrary(library_dir) as library:
        try:
            real = library.resolve("/".join(parts))
        except PathOutsideLibraryError:
            return
        assert real.is_relative_to(library_dir.resolve())


@pytest.mark.parametrize(
    ("query", "limit"),
    [("", 10), ("   ", 10), ("x" * 201, 10), ("a b c d e f g h i", 10), ("x", 0)],
)
def test_bad_queries_are_caller_errors(library_dir: Path, query: str, limit: int) -> None:
    with LocalLibrary(library_dir) as library, pytest.raises(InvalidQueryError) as refused:
        library.search(query, limit=limit)
    assert isinstance(refused.value, ValueError)


def test_a_root_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LibraryRootError):
        LocalLibrary(tmp_path / "missing")
    with pytest.raises(TrackNotFoundError), LocalLibrary(tmp_path) as empty:
        empty.get("0" * 24)
