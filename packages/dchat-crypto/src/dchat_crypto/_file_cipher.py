"""Chunked, streaming AEAD for attachment files (a STREAM construction).

Theory of operation. A file is sealed under a :class:`FileKey` that is fresh
and random for that file and travels only inside a ratcheted message. The
sealed *plaintext stream* is::

    u64 big-endian content length L || content || zero bytes

padded to ``T = padded_size(L)`` bytes (Padmé, below), cut into chunks of
:data:`FILE_CHUNK` bytes (the last one shorter or equal), and each chunk ``i``
is sealed with ChaCha20-Poly1305 under the file key, with the nonce::

    i as 11 bytes big-endian || 0x01 if this is the last chunk else 0x00

and the associated data ``b"dchat-attachment-v1"``. The sealed file is the
concatenation of the sealed chunks, each ``16`` bytes longer than its chunk.
This is the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár
(2015), as in age and Tink's streaming AEAD:

* reordering or moving a chunk changes its index, and so its nonce: it fails;
* truncation at a chunk boundary leaves a last chunk sealed as "not last": it
  fails; appending anything after the last chunk makes the last chunk be
  opened as "not last": it fails;
* a wrong key fails on the first chunk.

Every failure raises the one opaque :class:`DecryptionError`. Content is
released chunk by chunk as it authenticates, so a reader must treat what it
got as tentative until :meth:`FileDecryptor.finish` returns (the relay-side
analogue of "do not act on a partial download").

Nonces never repeat under a key because a key seals one file; sealing the same
file twice under the same key gives the same bytes (deterministic), which is
what lets an interrupted upload resume by re-sealing and skipping what the
relay already has.

Padding: ``T = padme(8 + L)`` (Nikitin et al., "Reducing Metadata Leakage
from Encrypted Files and Communication with PURBs", 2019): the length keeps
its top ``floor(log2(E)) + 1`` significant bits (``E = floor(log2(len))``) and
the rest rounds up, so the overhead is at most about 12 % (under 2 % at
100 MiB) and the sealed size reveals ``O(log log L)`` bits of the length.
The zero tail and ``T`` are checked when opening, so a sealed file has exactly
one reading.

Memory: an encryptor or decryptor holds at most one chunk and one sealed
chunk, whatever the file size.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, NoReturn, Self

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ._errors import DecryptionError, FileSizeError
from ._keys import _RawKey
from ._primitives import AEAD_FAILURES, AEAD_TAG_SIZE

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = (
    "FILE_CHUNK",
    "SEALED_CHUNK",
    "FileDecryptor",
    "FileEncryptor",
    "FileKey",
    "open_file_chunks",
    "padded_size",
    "seal_file_chunks",
    "sealed_size",
)

FILE_CHUNK: Final = 64 * 1024
SEALED_CHUNK: Final = FILE_CHUNK + AEAD_TAG_SIZE
_AD: Final = b"dchat-attachment-v1"
_HEADER: Final = 8
_MAX_SIZE: Final = 2**62


class FileKey(_RawKey):
    """The 32-byte key that seals one file; ``repr`` never shows it."""

    __slots__ = ()

    @classmethod
    def generate(cls) -> Self:
        """A fresh random key (use it for one file only)."""
        return cls(os.urandom(cls.SIZE))

    def __repr__(self) -> str:
        return "FileKey(<secret>)"


def _padme(length: int) -> int:
    if length < 2:
        return length
    exponent = length.bit_length() - 1  # floor(log2(length))
    kept = exponent.bit_length()  # floor(log2(exponent)) + 1
    mask = (1 << (exponent - kept)) - 1
    return (length + mask) & ~mask


def padded_size(size: int) -> int:
    """The plaintext stream's length for content of ``size`` bytes (header included)."""
    if not 0 <= size <= _MAX_SIZE:
        raise FileSizeError(f"a file must be 0 to {_MAX_SIZE} bytes")
    return _padme(_HEADER + size)


def sealed_size(size: int) -> int:
    """The sealed file's length for content of ``size`` bytes: what a relay sees."""
    total = padded_size(size)
    return total + AEAD_TAG_SIZE * -(-total // FILE_CHUNK)


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class FileEncryptor:
    """Seals a file of ``size`` bytes fed in pieces of any length.

    Args:
        key: The file's key.
        size: The content's exact length.

    Raises:
        FileSizeError: ``size`` out of range, or (from :meth:`feed` and
            :meth:`finish`) more or fewer bytes than ``size`` fed.
    """

    def __init__(self, key: FileKey, size: int) -> None:
        self._aead = ChaCha20Poly1305(key.to_bytes())
        self._size, self._total = size, padded_size(size)
        self._chunks = -(-self._total // FILE_CHUNK)
        self._buf = bytearray(size.to_bytes(_HEADER, "big"))
        self._fed = self._index = 0

    def feed(self, data: bytes) -> bytes:
        """Take more content; return the sealed chunks it completed (maybe b"")."""
        self._fed += len(data)
        if self._fed > self._size:
            raise FileSizeError(f"more than the declared {self._size} bytes")
        self._buf += data
        out, pos = bytearray(), 0
        while len(self._buf) - pos >= FILE_CHUNK and self._index < self._chunks - 1:
            out += self._seal(bytes(self._buf[pos : pos + FILE_CHUNK]))
            pos += FILE_CHUNK
        del self._buf[:pos]
        return bytes(out)

    def finish(self) -> Iterator[bytes]:
        """The remaining sealed chunks (the zero padding included), one at a time."""
        if self._fed != self._size:
            raise FileSizeError(f"{self._fed} bytes fed, {self._size} declared")
        while self._index < self._chunks:
            length = min(FILE_CHUNK, self._total - self._index * FILE_CHUNK)
            self._buf += bytes(length - len(self._buf))  # the zero padding
            yield self._seal(bytes(self._buf))
            self._buf.clear()

    def _seal(self, chunk: bytes) -> bytes:
        last = self._index == self._chunks - 1
        sealed = self._aead.encrypt(_nonce(self._index, last), chunk, _AD)
        self._index += 1
        return sealed


class FileDecryptor:
    """Opens a sealed file fed in pieces of any length, releasing content as it authenticates.

    Args:
        key: The file's key.
        expected_size: The content length the sender declared (None: any).

    Raises:
        DecryptionError: from :meth:`feed` or :meth:`finish`, for any damage:
            a wrong key, a flipped bit, truncation, reordering, extension, a
            length that disagrees with ``expected_size`` or with the padding.
    """

    def __init__(self, key: FileKey, expected_size: int | None = None) -> None:
        self._aead = ChaCha20Poly1305(key.to_bytes())
        self._expected = expected_size
        self._buf = bytearray()
        self._index = 0
        self._size: int | None = None  # the content length, from chunk 0
        self._seen = 0  # plaintext stream bytes opened so far
        self._failed = False

    def feed(self, data: bytes) -> bytes:
        """Take more sealed bytes; return the content they authenticated (maybe b"")."""
        self._check_usable()
        self._buf += data
        out, pos = bytearray(), 0
        # A chunk is opened only once a byte follows it, so it is known not to be the last.
        while len(self._buf) - pos > SEALED_CHUNK:
            out += self._open(bytes(self._buf[pos : pos + SEALED_CHUNK]), last=False)
            pos += SEALED_CHUNK
        del self._buf[:pos]
        return bytes(out)

    def finish(self) -> bytes:
        """Open the last chunk and check the whole; return its content."""
        self._check_usable()
        if not self._buf:
            self._fail()
        out = self._open(bytes(self._buf), last=True)
        self._buf.clear()
        if self._size is None or padded_size(self._size) != self._seen:
            self._fail()
        return out

    def _check_usable(self) -> None:
        if self._failed:
            raise DecryptionError

    def _fail(self) -> NoReturn:
        self._failed = True
        raise DecryptionError

    def _open(self, sealed: bytes, *, last: bool) -> bytes:
        try:
            chunk = self._aead.decrypt(_nonce(self._index, last), sealed, _AD)
        except AEAD_FAILURES:
            self._fail()
        start = self._seen
        self._index += 1
        self._seen += len(chunk)
        if start == 0:
            self._size = int.from_bytes(chunk[:_HEADER], "big")
            if len(chunk) < _HEADER or self._size > _MAX_SIZE:
                self._fail()
            if self._expected is not None and self._size != self._expected:
                self._fail()
        assert self._size is not None
        end = _HEADER + self._size  # where content ends in the plaintext stream
        keep = max(0, min(end, self._seen) - max(start, _HEADER))
        skip = max(0, _HEADER - start)
        tail = chunk[skip + keep :]
        if tail.count(0) != len(tail):
            self._fail()
        return chunk[skip : skip + keep]


def seal_file_chunks(key: FileKey, size: int, content: Iterable[bytes]) -> Iterator[bytes]:
    """Seal ``content`` (pieces of any length, ``size`` bytes in all) as a stream of bytes."""
    encryptor = FileEncryptor(key, size)
    for piece in content:
        if sealed := encryptor.feed(piece):
            yield sealed
    yield from encryptor.finish()


def open_file_chunks(
    key: FileKey, sealed: Iterable[bytes], expected_size: int | None = None
) -> Iterator[bytes]:
    """Open a sealed file given in pieces; raises :class:`DecryptionError` on any damage."""
    decryptor = FileDecryptor(key, expected_size)
    for piece in sealed:
        if content := decryptor.feed(piece):
            yield content
    if content := decryptor.finish():
        yield content
