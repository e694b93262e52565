"""Checking a dchat bot webhook delivery: the ``X-Dchat-Signature`` header.

A bot's node posts each update to the bot's webhook URL with
``X-Dchat-Signature: t=<unix seconds>,v1=<hex>``, where the hex is
HMAC-SHA256 over ``"<t>." + body`` keyed with the ASCII bytes of the bot's
signing secret (docs/protocol.md, "Bot webhooks"). A receiver calls
:func:`verify_webhook` with the raw body, before parsing it: the signature
proves the node that holds the secret sent these bytes, and the time bound
limits replays of a captured delivery to ``tolerance`` seconds (deduplicate by
``update_id`` within that window). Standard library only: a receiver needs no
more than ``dchat-sdk``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final

from dchat_core import PeerError

from ._errors import DchatSdkError

__all__ = ("SIGNATURE_HEADER", "WebhookSignatureError", "verify_webhook")

SIGNATURE_HEADER: Final = "X-Dchat-Signature"
DEFAULT_TOLERANCE: Final = 300.0
"""Seconds a signature's time may be off the receiver's clock (either way)."""
_MAX_HEADER: Final = 1024


class WebhookSignatureError(DchatSdkError, PeerError, ValueError):
    """A delivery is not signed with the secret, or too old or new: refuse it.

    One message for every reason (missing, malformed, wrong, out of the window),
    so a prober learns nothing about which check failed.
    """

    def __init__(self) -> None:
        super().__init__("the webhook signature does not verify")


def _fields(header: str) -> tuple[int, list[str]]:
    at, signatures = None, []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureError
        if key == "t" and value.isascii() and value.isdecimal() and len(value) <= 12:
            at = int(value)
        elif key == "v1":
            signatures.append(value)
    if at is None or not signatures:
        raise WebhookSignatureError
    return at, signatures


def verify_webhook(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery's ``X-Dchat-Signature`` ``header`` for the raw ``body``.

    Args:
        body: The request body exactly as received (before any JSON parsing).
        header: The ``X-Dchat-Signature`` header's value (None if absent).
        secret: The bot's signing secret (``dchat bot webhook show`` shows it once).
        tolerance: Seconds the signed time may differ from ``now``.
        now: The receiver's clock (unix seconds); default ``time.time()``.

    Returns:
        The signed time (unix seconds).

    Raises:
        WebhookSignatureError: No header, a malformed one, a signature that does
            not match, or a time outside ``now ± tolerance`` (one error for all).
    """
    if not header or len(header) > _MAX_HEADER or not secret or not secret.isascii():
        raise WebhookSignatureError
    at, signatures = _fields(header)
    clock = time.time() if now is None else now
    if abs(clock - at) > tolerance:
        raise WebhookSignatureError
    expected = hmac.new(secret.encode("ascii"), f"{at}.".encode() + body, hashlib.sha256)
    wanted = expected.hexdigest().encode()
    # v1 may be repeated (a receiver then accepts any): compare each in constant time
    if not any(
        hmac.compare_digest(wanted, s.strip().encode("ascii", "replace")) for s in signatures
    ):
        raise WebhookSignatureError
    return at
