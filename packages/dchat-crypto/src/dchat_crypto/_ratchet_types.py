"""Inputs of the Double Ratchet: session secrets, policy, and the ratchet errors.

The ratchet adds a small subtree under :class:`DchatCryptoError`; failures to
authenticate or decrypt a message stay the package-wide opaque
:class:`DecryptionError`::

    DchatCryptoError
    ├── DecryptionError(PeerError)                      any message that does not decrypt
    └── RatchetError
        ├── RatchetArgumentError(CallerError, ValueError)  bad policy value or non-finite time
        ├── RatchetStateError(CallerError)               encrypt before the session may send,
        │                                                or a sending chain is exhausted
        └── RatchetFormatError(PeerError, ValueError)    a stored state is malformed
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dchat_core import CallerError, PeerError

from ._errors import DchatCryptoError, InvalidKeyError
from ._primitives import constant_time_equal

__all__ = (
    "MAX_STORED_SKIPPED_LIMIT",
    "RatchetArgumentError",
    "RatchetError",
    "RatchetFormatError",
    "RatchetPolicy",
    "RatchetStateError",
    "SessionSecrets",
    "check_time",
)

SECRET_SIZE = 32

MAX_STORED_SKIPPED_LIMIT = 100_000
"""Upper bound on ``RatchetPolicy.max_stored_skipped``, so a stored state stays bounded."""

_MAX_COUNTER = 2**32 - 1  # counters travel as 4-byte integers


class RatchetError(DchatCryptoError):
    """Root of the Double Ratchet errors other than :class:`DecryptionError`."""


class RatchetArgumentError(RatchetError, CallerError, ValueError):
    """A policy value or a ``now`` timestamp is out of range."""


class RatchetStateError(RatchetError, CallerError):
    """The session cannot do this now (e.g. a responder encrypting before any reply)."""


class RatchetFormatError(RatchetError, PeerError, ValueError):
    """A serialized ratchet state is malformed, inconsistent or of an unknown version."""


def check_time(now: float) -> float:
    """Return ``now`` as a float, rejecting NaN, infinities and non-numbers.

    Raises:
        RatchetArgumentError: If ``now`` is not a finite real number.
    """
    if type(now) is float and math.isfinite(now):
        return now  # the common case, checked first because it runs per message
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise RatchetArgumentError("now must be a finite number of seconds")
    return float(now)


@dataclass(frozen=True, slots=True, repr=False)
class SessionSecrets:
    """The output of session setup and the input of the ratchet.

    All three values are 32-byte secrets shared by both parties. ``repr`` never
    shows them and equality is constant-time.

    Attributes:
        root_key: The initial root key (``SK`` in the Signal specification).
        initiator_header_key: The initiator's first sending header key (``HKa``).
        responder_next_header_key: The responder's first next header key (``NHKb``).
    """

    root_key: bytes
    initiator_header_key: bytes
    responder_next_header_key: bytes

    def __post_init__(self) -> None:
        for name in ("root_key", "initiator_header_key", "responder_next_header_key"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != SECRET_SIZE:
                raise InvalidKeyError(f"SessionSecrets.{name} must be {SECRET_SIZE} bytes")
        if constant_time_equal(self.initiator_header_key, self.responder_next_header_key):
            # Equal header keys would let each side's headers open under the other's key.
            raise InvalidKeyError("SessionSecrets header keys must differ")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionSecrets):
            return NotImplemented
        mine = self.root_key + self.initiator_header_key + self.responder_next_header_key
        theirs = other.root_key + other.initiator_header_key + other.responder_next_header_key
        return constant_time_equal(mine, theirs)

    def __hash__(self) -> int:
        return hash((SessionSecrets, self.root_key))

    def __repr__(self) -> str:
        return "SessionSecrets(<secret>)"


@dataclass(frozen=True, slots=True)
class RatchetPolicy:
    """Limits and rotation schedule of a :class:`RatchetSession`.

    Attributes:
        max_skip: Most message keys skipped in one chain by a single message
            (``MAX_SKIP``); a message further ahead is rejected.
        max_stored_skipped: Bound on all stored skipped keys; the oldest are
            evicted first (their messages then no longer decrypt).
        rotate_after_messages: Once the sending chain has carried this many
            messages, headers ask the peer to reply (``None`` disables).
        rotate_after_seconds: Likewise once the sending chain is this old.
    """

    max_skip: int = 1000
    max_stored_skipped: int = 2000
    rotate_after_messages: int | None = 100
    rotate_after_seconds: float | None = 3600.0

    def __post_init__(self) -> None:
        _check_int("max_skip", self.max_skip, 0, _MAX_COUNTER)
        _check_int("max_stored_skipped", self.max_stored_skipped, 0, MAX_STORED_SKIPPED_LIMIT)
        if self.rotate_after_messages is not None:
            _check_int("rotate_after_messages", self.rotate_after_messages, 1, _MAX_COUNTER)
        seconds = self.rotate_after_seconds
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise RatchetArgumentError("rotate_after_seconds must be a positive finite number")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RatchetArgumentError(f"{name} must be an integer in {low}..{high}")
