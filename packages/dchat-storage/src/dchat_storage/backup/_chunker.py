"""Content-defined chunking: where to cut a byte stream so that edits stay local.

Theory of operation. A cut is placed after byte ``e - 1`` of the current chunk
when two content tests pass on the bytes just before ``e``; both are keyed by a
per-repository secret, so the sizes of stored blobs do not reveal which known
files a repository holds (restic keys its chunker polynomial for the same reason).

1. *Candidate*: every byte is mapped to one bit by a keyed table that splits the
   256 byte values 128/128, and the last ``k`` bits must read ``1 0 ... 0``. This
   pattern cannot overlap itself, so candidates are on average ``2**k`` bytes
   apart on random data; ``bytes.translate`` and ``bytes.find`` test millions of
   positions per second without a Python-level loop.
2. *Cut*: at a candidate, keyed BLAKE2b-64 of the last 64 bytes must fall below a
   threshold. Like FastCDC's normalized chunking, the threshold is strict before
   the average size and lax after it, which narrows the size distribution.

With ``k = log2(avg) - 6`` the cut probabilities per byte are ``1/(2 avg)``
before ``avg`` and ``2/avg`` after, as in FastCDC with normalization level 1
(level 2 narrowed sizes further but, after a large insertion, let the chunk
sequence take many chunks to fall back into step; see docs/rationale.md). A
cut never falls before ``min_size`` (which is at least 64, so the window never
leaves the chunk) nor after ``max_size``: a boundary depends only on the content
of its own chunk, and an insertion shifts only the boundaries near it. Data that
yields no candidate at all (a run of one byte value) is cut at ``max_size``,
which still deduplicates, since the runs cut identically.

A pure-Python gear hash (the rolling hash of FastCDC) ran at about 2 MB/s on
our 2-core benchmark machine; this two-stage test chunked random data at about
400 MB/s there (docs/rationale.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from ._errors import BackupUsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("Chunker", "ChunkerParams")

WINDOW = 64  # bytes hashed at a candidate
_KIB, _MIB = 1 << 10, 1 << 20
_MAX_LIMIT = 64 * _MIB
# Stage-2 acceptance (out of 2**64) before and after the average size; with
# candidates every avg/64 bytes this gives 1/(2 avg) and 2/avg per byte.
_STRICT = 1 << (64 - 7)
_LAX = 1 << (64 - 5)
_CANDIDATES_PER_AVG_LOG2 = 6


@dataclass(frozen=True, slots=True)
class ChunkerParams:
    """Chunk size bounds, in bytes.

    Attributes:
        min_size: No cut before this many bytes (at least 64).
        avg_size: Target average; a power of two, at least 256.
        max_size: Always cut here (at most 64 MiB).
    """

    min_size: int
    avg_size: int
    max_size: int

    DEFAULT: ClassVar[ChunkerParams]
    """256 KiB / 1 MiB / 4 MiB, restic's and FastCDC's usual proportions."""

    def __post_init__(self) -> None:
        if self.avg_size < 256 or self.avg_size & (self.avg_size - 1):
            raise BackupUsageError("avg_size must be a power of two, at least 256")
        if not WINDOW <= self.min_size <= self.avg_size <= self.max_size <= _MAX_LIMIT:
            raise BackupUsageError("need 64 <= min_size <= avg_size <= max_size <= 64 MiB")


ChunkerParams.DEFAULT = ChunkerParams(256 * _KIB, _MIB, 4 * _MIB)


class Chunker:
    """Finds content-defined cut points with a repository's chunker key.

    Args:
        params: The size bounds.
        key: 32 secret bytes (derived from the repository master key).
    """

    __slots__ = ("_key", "_params", "_pattern", "_table")

    def __init__(self, params: ChunkerParams, key: bytes) -> None:
        self._params = params
        self._key = key
        # A keyed permutation of the byte values: the first half map to bit 1.
        order = sorted(range(256), key=lambda b: hashlib.blake2b(bytes((b,)), key=key).digest())
        table = bytearray(256)
        for value in order[:128]:
            table[value] = 1
        self._table = bytes(table)
        bits = params.avg_size.bit_length() - 1 - _CANDIDATES_PER_AVG_LOG2
        self._pattern = b"\x01" + b"\x00" * (bits - 1)

    @property
    def params(self) -> ChunkerParams:
        """The size bounds."""
        return self._params

    def cut(self, data: bytes, start: int = 0) -> int:
        """Where the chunk starting at ``data[start]`` ends (an index into ``data``).

        ``data`` must extend at least ``max_size`` bytes past ``start`` unless it
        is the end of the stream; the last chunk of a stream is what remains.
        """
        p = self._params
        end = min(len(data), start + p.max_size)
        if end - start <= p.min_size:
            return end
        k = len(self._pattern)
        # Classify in windows of about one average chunk: most cuts fall in the
        # first, so we rarely translate the bytes up to max_size.
        lo = start + p.min_size - k  # first byte a pattern may start on
        while lo < end - k:
            hi = min(end, lo + p.avg_size + k)
            cut = self._first_cut(data, lo, hi, start + p.avg_size)
            if cut is not None:
                return cut
            lo = hi - k + 1  # patterns may straddle the windows
        return end

    def _first_cut(self, data: bytes, lo: int, hi: int, normal: int) -> int | None:
        """The first cut whose pattern lies within ``data[lo:hi]``, if any."""
        classes = data[lo:hi].translate(self._table)
        k = len(self._pattern)
        pos = classes.find(self._pattern)
        while pos >= 0:
            cut = lo + pos + k
            threshold = _STRICT if cut < normal else _LAX
            digest = hashlib.blake2b(data[cut - WINDOW : cut], key=self._key, digest_size=8)
            if int.from_bytes(digest.digest(), "big") < threshold:
                return cut
            pos = classes.find(self._pattern, pos + 1)
        return None

    def split(self, data: bytes) -> Iterator[bytes]:
        """Yield the chunks of ``data``, a complete stream held in memory."""
        start = 0
        while start < len(data):
            end = self.cut(data, start)
            yield data[start:end]
            start = end

    def stream(self, source: BinaryIO) -> Iterator[bytes]:
        """Yield the chunks of a binary file, holding at most ~2 ``max_size`` bytes."""
        buf = b""
        eof = False
        while True:
            while not eof and len(buf) < self._params.max_size:
                more = source.read(self._params.max_size)
                eof = not more
                buf += more
            if not buf:
                return
            end = self.cut(buf)
            yield buf[:end]
            buf = buf[end:]
