"""Length hiding: pad plaintexts to a small set of bucket sizes before encryption.

A relay sees only ciphertext lengths; padding every message up to the next bucket
means it learns which bucket a message fell into, not its length. The padded form
is ``u32 big-endian length || data || zero bytes``; the zero tail is checked on
unpadding so that a padded blob has exactly one valid reading.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Final

from dchat_core import CallerError, DchatError, PeerError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "DEFAULT_BUCKETS",
    "DchatPrivacyError",
    "PaddingError",
    "PaddingTooLargeError",
    "pad",
    "unpad",
)

DEFAULT_BUCKETS: Final = (256, 1024, 4096, 16384, 65536)
_HEADER = 4


class DchatPrivacyError(DchatError):
    """Root of the errors raised by :mod:`dchat_privacy`."""


class PaddingError(DchatPrivacyError, PeerError, ValueError):
    """A padded blob is malformed (bad length header or non-zero padding)."""


class PaddingTooLargeError(DchatPrivacyError, CallerError, ValueError):
    """The data does not fit the largest bucket."""


def pad(data: bytes, buckets: Sequence[int] = DEFAULT_BUCKETS) -> bytes:
    """Pad ``data`` to the smallest bucket that holds it and its length header.

    Raises:
        PaddingTooLargeError: ``data`` does not fit the largest bucket.
    """
    needed = len(data) + _HEADER
    for size in sorted(buckets):
        if needed <= size:
            return len(data).to_bytes(_HEADER, "big") + data + bytes(size - needed)
    raise PaddingTooLargeError("data too large for the largest padding bucket")


def unpad(padded: bytes, buckets: Sequence[int] = DEFAULT_BUCKETS) -> bytes:
    """Recover the data from :func:`pad` output.

    Raises:
        PaddingError: the size is not a bucket, the header lies or the tail is not zero.
    """
    if len(padded) not in buckets:
        raise PaddingError("padded size is not a bucket size")
    length = int.from_bytes(padded[:_HEADER], "big")
    if length > len(padded) - _HEADER:
        raise PaddingError("padding header exceeds the blob")
    tail = padded[_HEADER + length :]
    if not hmac.compare_digest(tail, bytes(len(tail))):
        raise PaddingError("padding is not zero")
    return padded[_HEADER : _HEADER + length]
