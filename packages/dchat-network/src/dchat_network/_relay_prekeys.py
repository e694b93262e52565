"""What a relay checks before it hosts prekey bundles (``pk_put``).

The bundles are opaque to the relay: the owner wraps each one under a key only
holders of its contact card or identity document can derive, because a bundle
names its owner's identity key and the relay must not learn which person owns
a mailbox. So the relay checks the shape of the set, never its content: every
blob (``last`` and each one-time one) is 1 to ``MAX_PREKEY_BUNDLE`` bytes, and
every one-time prekey id is in ``0..2**32-1`` and appears once in the put. A
set that fails any check is refused as a whole. Whether a bundle opens and
verifies is for the sender to find out; only the mailbox owner can publish, so
a bad bundle hurts only the owner's own senders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._errors import DchatNetworkError
from ._relay import MAX_PREKEY_BUNDLE

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("BadPrekeysError", "check_prekey_put")

_MAX_PREKEY_ID: Final = 2**32 - 1


class BadPrekeysError(DchatNetworkError):
    """The published set is malformed; the message says why (for the error reply)."""


def check_prekey_put(last: bytes, one_time: Sequence[tuple[int, bytes]]) -> None:
    """Check the shape of a ``pk_put``: blob sizes, prekey id range and uniqueness.

    Raises:
        BadPrekeysError: Any check above failed.
    """
    _check_blob(last, "the last-resort bundle")
    seen: set[int] = set()
    for prekey_id, blob in one_time:
        if not 0 <= prekey_id <= _MAX_PREKEY_ID:
            raise BadPrekeysError("a one-time prekey id is out of range")
        if prekey_id in seen:
            raise BadPrekeysError("a one-time prekey id repeats")
        seen.add(prekey_id)
        _check_blob(blob, "a one-time bundle")


def _check_blob(blob: bytes, what: str) -> None:
    if not blob:
        raise BadPrekeysError(f"{what} is empty")
    if len(blob) > MAX_PREKEY_BUNDLE:
        raise BadPrekeysError(f"{what} is larger than {MAX_PREKEY_BUNDLE} bytes")
