"""What a relay checks before it hosts prekey bundles (``pk_put``).

A relay serves bundles to strangers, so it only stores a set that a sender could
use: every bundle parses and its signature verifies at ``now``, all of them
belong to one identity (same ``identity_key`` and ``static_key``), the
last-resort bundle carries no one-time prekey, every other one carries exactly
one, and no one-time prekey id repeats. A set that fails any check is refused
as a whole. The relay cannot tell whether the identity is the mailbox owner's:
that is for the sender to check against the contact card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dchat_crypto import InvalidBundleError, PrekeyBundle

from ._errors import DchatNetworkError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("BadPrekeysError", "check_prekey_put")


class BadPrekeysError(DchatNetworkError):
    """The published set is unusable; the message says why (for the error reply)."""


def check_prekey_put(last: bytes, one_time: Sequence[bytes], now: float) -> list[tuple[int, bytes]]:
    """Validate a ``pk_put``; return the one-time bundles keyed by their prekey id.

    Raises:
        BadPrekeysError: Any check above failed.
    """
    last_bundle = _verified(last, now)
    if last_bundle.one_time is not None:
        raise BadPrekeysError("the last-resort bundle carries a one-time prekey")
    owner = (last_bundle.identity_key, last_bundle.static_key)
    keyed: dict[int, bytes] = {}
    for data in one_time:
        bundle = _verified(data, now)
        if (bundle.identity_key, bundle.static_key) != owner:
            raise BadPrekeysError("the bundles belong to different identities")
        if bundle.one_time_prekey_id is None:
            raise BadPrekeysError("a one-time bundle carries no one-time prekey")
        if bundle.one_time_prekey_id in keyed:
            raise BadPrekeysError("a one-time prekey id repeats")
        keyed[bundle.one_time_prekey_id] = data
    return list(keyed.items())


def _verified(data: bytes, now: float) -> PrekeyBundle:
    try:
        bundle = PrekeyBundle.from_bytes(data)
        bundle.verify(now)
    except InvalidBundleError as exc:
        raise BadPrekeysError(f"invalid bundle: {exc}") from None
    return bundle
