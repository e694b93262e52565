"""``LocalLibrary``: the music under one directory, indexed in SQLite, searchable, shareable.

Theory of operation: :meth:`LocalLibrary.scan` walks the root (never into
symlinked directories), and for each audio file compares its size and mtime
with the index: unchanged files cost one ``stat``; new or changed ones are
read with mutagen; files gone are dropped. A file that cannot be read, is over
the size cap, or whose symlink leads out of the root is reported in the
:class:`ScanReport` and the scan goes on. ``search`` and ``get`` rescan first
when the last scan is older than ``rescan_interval`` (time from the
:class:`~dchat_core.Clock` given), so files added later are found.

Every path is checked when it is used, not only when it was indexed
(:meth:`LocalLibrary.resolve`): the file is opened by its resolved path with
``O_NOFOLLOW`` and must still be a regular file under the cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dchat_core import SystemClock

from ._errors import (
    InvalidQueryError,
    LibraryRootError,
    MusicError,
    PathOutsideLibraryError,
    TrackNotFoundError,
    TrackTooLargeError,
    UnreadableTrackError,
)
from ._tags import picture, read_tags
from ._track import Track, clean_text

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from dchat_core import Clock

__all__ = ("LocalLibrary", "ScanReport", "check_query")

EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".m4a"})
COVER_NAMES = ("cover.jpg", "cover.jpeg", "cover.png", "folder.jpg", "folder.png")
MAX_COVER_BYTES = 5 * 1024 * 1024
MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 8
MAX_RESULTS = 100
CHUNK = 256 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    id TEXT PRIMARY KEY, path TEXT UNIQUE NOT NULL, mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL, title TEXT NOT NULL, artist TEXT NOT NULL, album TEXT NOT NULL,
    duration_ms INTEGER NOT NULL, track_no INTEGER NOT NULL, media_type TEXT NOT NULL,
    has_cover INTEGER NOT NULL, words TEXT NOT NULL
)
"""
_COLUMNS = "id, path, title, artist, album, duration_ms, track_no, media_type, size, has_cover"


@dataclass
class ScanReport:
    """What one scan did. ``errors``: (relative path, error) for each file skipped."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    errors: list[tuple[str, MusicError]] = field(default_factory=list)


def check_query(query: str, limit: int) -> list[str]:
    """The words of ``query``, casefolded, once checked against the caps.

    Raises:
        InvalidQueryError: empty, over 200 characters or 8 words, or a bad limit.
    """
    if not isinstance(query, str) or len(query) > MAX_QUERY_CHARS:
        raise InvalidQueryError(f"a query is text of at most {MAX_QUERY_CHARS} characters")
    words = clean_text(query, MAX_QUERY_CHARS).casefold().split()
    if not words or len(words) > MAX_QUERY_WORDS:
        raise InvalidQueryError(f"a query has 1 to {MAX_QUERY_WORDS} words")
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidQueryError(f"limit must be 1 to {MAX_RESULTS}")
    return words


class LocalLibrary:
    """The audio files under ``root``, searchable by title, artist, album and file name.

    Example::

        with LocalLibrary("~/Music") as library:
            report = library.scan()            # or let the first search do it
            for track in library.search("blue moon"):
                print(track.id, track.label)
            with library.open(track.id) as path:
                ...                            # e.g. client.send_file(peer, path, kind="audio")

    Args:
        root: the library's directory; nothing outside it is ever read.
        index: SQLite file for the index (kept across runs), or ``:memory:``.
        max_file_bytes: tracks larger than this are skipped (and refused by ``open``).
        rescan_interval: seconds after which ``search``/``get`` rescan first.
        clock: time source for the interval (tests pass a ManualClock).

    Raises:
        LibraryRootError: ``root`` is not a directory.
    """

    MAX_FILE_BYTES = 100 * 1024 * 1024

    def __init__(
        self,
        root: str | Path,
        *,
        index: str | Path = ":memory:",
        max_file_bytes: int = MAX_FILE_BYTES,
        rescan_interval: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise LibraryRootError(f"not a directory: {path}")
        self._root = path.resolve(strict=True)
        self._max = max_file_bytes
        self._interval = rescan_interval
        self._clock = clock or SystemClock()
        self._last_scan: float | None = None
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(index), check_same_thread=False)
        self._db.execute(_SCHEMA)

    @property
    def root(self) -> Path:
        """The library's directory, resolved."""
        return self._root

    def close(self) -> None:
        """Close the index."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> LocalLibrary:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def resolve(self, relative: str | os.PathLike[str]) -> Path:
        """The real path of ``relative`` (a path inside the library), symlinks followed.

        Raises:
            PathOutsideLibraryError: absolute, with ``..``, or leading (through a
                symlink) out of the root; or it cannot be resolved (a loop).
        """
        text = os.fspath(relative)
        parts = PurePosixPath(text.replace("\\", "/")).parts
        if not text or "\x00" in text or PurePosixPath(text).is_absolute() or ".." in parts:
            raise PathOutsideLibraryError("a library path is relative, without '..'")
        try:
            real = (self._root / text).resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise PathOutsideLibraryError(f"cannot resolve: {type(exc).__name__}") from None
        if not real.is_relative_to(self._root):
            raise PathOutsideLibraryError("the path leads out of the library")
        return real

    # Scanning

    def scan(self) -> ScanReport:
        """Bring the index up to date with the files under the root."""
        report, seen = ScanReport(), set()
        with self._lock:
            known = {
                row[0]: (row[1], row[2])
                for row in self._db.execute("SELECT path, mtime_ns, size FROM tracks")
            }
            for relative in self._walk():
                seen.add(relative)
                try:
                    self._scan_file(relative, known.get(relative), report)
                except MusicError as exc:
                    report.errors.append((relative, exc))
                    seen.discard(relative)
            for gone in set(known) - seen:
                self._db.execute("DELETE FROM tracks WHERE path = ?", (gone,))
                report.removed += 1
            self._db.commit()
            self._last_scan = self._clock.monotonic()
        return report

    def _walk(self) -> Iterator[str]:
        for directory, dirs, files in os.walk(self._root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and Path(name).suffix.lower() in EXTENSIONS:
                    yield (Path(directory) / name).relative_to(self._root).as_posix()

    def _scan_file(self, relative: str, known: tuple[int, int] | None, report: ScanReport) -> None:
        real = self.resolve(relative)
        try:
            info = real.stat()
        except OSError as exc:
            raise UnreadableTrackError(f"{relative}: {type(exc).__name__}") from None
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableTrackError(f"{relative}: not a regular file")
        if info.st_size > self._max:
            raise TrackTooLargeError(f"{relative}: {info.st_size} bytes (cap {self._max})")
        if known == (info.st_mtime_ns, info.st_size):
            report.unchanged += 1
            return
        tags = read_tags(real)
        title = tags.title or clean_text(PurePosixPath(relative).stem)
        has_cover = tags.has_picture or self._cover_file(real) is not None
        words = " ".join((title, tags.artist, tags.album, relative)).casefold()
        row = (
            _track_id(relative), relative, info.st_mtime_ns, info.st_size, title, tags.artist,
            tags.album, tags.duration_ms, tags.track_no, tags.media_type, has_cover, words,
        )  # fmt: skip
        self._db.execute("INSERT OR REPLACE INTO tracks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
        if known is None:
            report.added += 1
        else:
            report.updated += 1

    def _fresh(self) -> None:
        last = self._last_scan
        if last is None or self._clock.monotonic() - last >= self._interval:
            self.scan()

    # Finding

    def search(self, query: str, *, limit: int = 10) -> list[Track]:
        """Tracks whose title, artist, album or path contain every word of ``query``.

        Raises:
            InvalidQueryError: see :func:`check_query`.
        """
        words = check_query(query, limit)
        where = " AND ".join(["words LIKE ? ESCAPE '\\'"] * len(words))
        args = [f"%{_escape_like(w)}%" for w in words]
        with self._lock:
            self._fresh()
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM tracks WHERE {where} "  # noqa: S608 (only '?' slots)
                "ORDER BY artist, album, track_no, title LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [_track(row) for row in rows]

    def get(self, track_id: str) -> Track:
        """The track with this id (see :class:`~dchat_bots.music.MusicProvider`)."""
        return _track(self._row(track_id))

    def _row(self, track_id: str) -> tuple[object, ...]:
        with self._lock:
            self._fresh()
            query = f"SELECT {_COLUMNS} FROM tracks WHERE id = ?"  # noqa: S608 (constant)
            row = self._db.execute(query, (str(track_id)[:64],)).fetchone()
        if row is None:
            raise TrackNotFoundError("no track with this id")
        return tuple(row)

    # Reading

    def path_of(self, track_id: str) -> Path:
        """The checked real path of the track's file (see the module's docstring).

        Raises:
            TrackNotFoundError, PathOutsideLibraryError, TrackTooLargeError.
        """
        real = self.resolve(str(self._row(track_id)[1]))
        with self._checked_fd(real):
            return real

    @contextlib.contextmanager
    def _checked_fd(self, real: Path) -> Iterator[int]:
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise TrackNotFoundError(f"the file is gone: {type(exc).__name__}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise UnreadableTrackError("not a regular file")
            if info.st_size > self._max:
                raise TrackTooLargeError(f"{info.st_size} bytes (cap {self._max})")
            yield fd
        finally:
            os.close(fd)

    def stream(self, track_id: str) -> Iterator[bytes]:
        """The track's bytes in chunks (at most ``max_file_bytes`` in all)."""
        real = self.resolve(str(self._row(track_id)[1]))
        with self._checked_fd(real) as fd:
            sent = 0
            while chunk := os.read(fd, CHUNK):
                sent += len(chunk)
                if sent > self._max:  # the file grew while it was read
                    raise TrackTooLargeError(f"over the cap of {self._max} bytes")
                yield chunk

    @contextlib.contextmanager
    def open(self, track_id: str) -> Iterator[Path]:
        """The track's own file (checked; no copy is made)."""
        yield self.path_of(track_id)

    def cover_art(self, track_id: str) -> bytes | None:
        """The picture in the track's tags, else a cover file beside it, else None."""
        real = self.path_of(track_id)
        embedded = picture(real)
        if embedded is not None:
            if len(embedded) > MAX_COVER_BYTES:
                raise TrackTooLargeError("the embedded cover is over 5 MiB")
            return embedded
        cover = self._cover_file(real)
        if cover is None:
            return None
        if cover.stat().st_size > MAX_COVER_BYTES:
            raise TrackTooLargeError("the cover file is over 5 MiB")
        return cover.read_bytes()

    def _cover_file(self, real: Path) -> Path | None:
        for name in COVER_NAMES:
            candidate = real.parent / name
            with contextlib.suppress(PathOutsideLibraryError):
                checked = self.resolve(candidate.relative_to(self._root))
                if checked.is_file():
                    return checked
        return None


def _track_id(relative: str) -> str:
    """A stable id for the file at ``relative`` that does not spell its path."""
    return hashlib.blake2b(relative.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _track(row: tuple[object, ...] | sqlite3.Row) -> Track:
    track_id, path, title, artist, album, duration, number, media_type, size, cover = row
    return Track(
        id=str(track_id),
        title=str(title),
        artist=str(artist),
        album=str(album),
        duration_ms=int(str(duration)),
        track_no=int(str(number)),
        media_type=str(media_type),
        size=int(str(size)),
        cover_art=str(track_id) if cover else None,
        file_name=clean_text(PurePosixPath(str(path)).name),
    )
