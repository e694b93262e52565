"""Errors of :mod:`dchat_identity`.

::

    DchatIdentityError(DchatError)
    ├── InvalidCardError(PeerError, ValueError)        a contact card is malformed or forged
    ├── KeystoreError(CallerError, ValueError)         an identity keystore cannot be unlocked
    ├── IdentityArgumentError(CallerError, ValueError) bad phrase, path, threshold, field, ...
    ├── IdentityStateError(CallerError)                a call in the wrong state or order
    ├── RateLimitedError(CallerError)                  too many burners too quickly (.retry_after)
    ├── BurnerStateError(CallerError)                  a burner call does not fit the stored
    │                                                  burners (``.code``: not_found, ...)
    ├── MalformedRecordError(PeerError, ValueError)    bytes are not a well-formed record
    ├── ForgedRecordError(PeerError)                   a signature or MAC does not verify (opaque)
    ├── ExpiredError(PeerError, ValueError)            a document, card, code or request expired
    ├── RevokedDeviceError(PeerError)                  the device was revoked (or never listed)
    ├── ClockSkewError(PeerError, ValueError)          a remote clock is too far ahead
    ├── PairingCodeError(PeerError, ValueError)        unknown, already used or expired code
    ├── DocumentChainError(PeerError, ValueError)      a document does not extend the chain
    │   ├── StaleDocumentError                         version not above the current one
    │   ├── ForkedDocumentError                        a second document for one version
    │   ├── ReplayedDocumentError                      a document already accepted, again
    │   └── BrokenChainError                           wrong prev hash, subject, gap or key
    └── RecoveryError                                  guardian recovery cannot proceed
        ├── TimeLockedError(CallerError)               before the time lock ends / veto too late
        ├── VetoedError(CallerError)                   the current key vetoed the request
        ├── NotEnoughApprovalsError(CallerError)       fewer than the threshold of approvals
        ├── InvalidShareError(PeerError, ValueError)   a recovery share is wrong or corrupt
        ├── RecoveryStateError(CallerError)            a step does not fit the stored state
        │                                              (``.code``: not_found, no_recovery, ...)
        └── RecoveryRefusedError(PeerError)            a peer's recovery message is refused
            ├── ReplayedRecoveryError                  request or approval seen before
            ├── UnexpectedRecoveryError                not ours, not from a guardian, stale
            └── RecoveryLockTooShortError              the request's time lock is below policy

Authentication failures (signatures, MACs, AEAD tags) all raise
:class:`ForgedRecordError` with one fixed message, never saying which check failed.
:func:`error_code` names a failure for machines (the node's API and the
pairing and sync agents report these codes).
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError

__all__ = (
    "BrokenChainError",
    "BurnerStateError",
    "ClockSkewError",
    "DchatIdentityError",
    "DocumentChainError",
    "ExpiredError",
    "ForgedRecordError",
    "ForkedDocumentError",
    "IdentityArgumentError",
    "IdentityStateError",
    "InvalidCardError",
    "InvalidShareError",
    "KeystoreError",
    "MalformedRecordError",
    "NotEnoughApprovalsError",
    "PairingCodeError",
    "RateLimitedError",
    "RecoveryError",
    "RecoveryLockTooShortError",
    "RecoveryRefusedError",
    "RecoveryStateError",
    "ReplayedDocumentError",
    "ReplayedRecoveryError",
    "RevokedDeviceError",
    "StaleDocumentError",
    "TimeLockedError",
    "UnexpectedRecoveryError",
    "VetoedError",
    "error_code",
)


class DchatIdentityError(DchatError):
    """Root of the errors raised by :mod:`dchat_identity`."""


class InvalidCardError(DchatIdentityError, PeerError, ValueError):
    """A contact card is malformed, or its signature does not verify."""


class KeystoreError(DchatIdentityError, CallerError, ValueError):
    """An identity keystore is malformed, or the passphrase is wrong (one opaque error)."""


class IdentityArgumentError(DchatIdentityError, CallerError, ValueError):
    """A caller passed an invalid argument (phrase, path, threshold, profile field, ...)."""


class IdentityStateError(DchatIdentityError, CallerError):
    """An object was used in the wrong state, e.g. a pairing step out of order."""


class RateLimitedError(DchatIdentityError, CallerError):
    """An action was refused by a rate limit; ``retry_after`` says when to try again.

    Args:
        message: What was refused.
        retry_after: Seconds until one more action will be allowed.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BurnerStateError(DchatIdentityError, CallerError):
    """A burner operation does not fit the stored burners.

    Attributes:
        code: Machine-readable reason (``not_found``, ``burner_expired``,
            ``rate_limited``, ``corrupt_state``); the node's API answers with it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MalformedRecordError(DchatIdentityError, PeerError, ValueError):
    """Bytes are not a well-formed record of the expected kind."""


class ForgedRecordError(DchatIdentityError, PeerError):
    """A signature, MAC or AEAD tag does not verify; deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("authentication failed")


class ExpiredError(DchatIdentityError, PeerError, ValueError):
    """A document, card, pairing code or recovery request is past its expiry."""


class RevokedDeviceError(DchatIdentityError, PeerError):
    """A device key is revoked at the version in question, or was never certified."""


class ClockSkewError(DchatIdentityError, PeerError, ValueError):
    """A remote hybrid-logical-clock timestamp is further ahead than the allowed drift."""


class PairingCodeError(DchatIdentityError, PeerError, ValueError):
    """A pairing code is unknown, already used or expired."""


class DocumentChainError(DchatIdentityError, PeerError, ValueError):
    """An identity document does not validly extend the chain a verifier holds."""


class StaleDocumentError(DocumentChainError):
    """The document's version is not above the version already accepted."""


class ForkedDocumentError(DocumentChainError):
    """Two different documents claim the same version (the same previous document)."""


class ReplayedDocumentError(DocumentChainError):
    """A document that was already accepted is presented again."""


class BrokenChainError(DocumentChainError):
    """Wrong previous hash, another subject, a version gap or an unauthorised key change."""


class RecoveryError(DchatIdentityError):
    """Root of the reasons a guardian recovery cannot proceed."""


class TimeLockedError(RecoveryError, CallerError):
    """A recovery step came too early (completion) or too late (veto) for its time lock."""


class VetoedError(RecoveryError, CallerError):
    """The identity's current key vetoed this recovery request."""


class NotEnoughApprovalsError(RecoveryError, CallerError):
    """Fewer valid guardian approvals (or shares) than the threshold."""


class InvalidShareError(RecoveryError, PeerError, ValueError):
    """A recovery share is wrong, corrupt or does not combine with the others."""


_CODES = {
    "PairingCodeError": "pairing_code",
    "ForgedRecordError": "authentication_failed",
    "MalformedRecordError": "malformed",
    "ExpiredError": "expired",
    "RevokedDeviceError": "revoked_device",
}


def error_code(exc: BaseException) -> str:
    """The machine-readable code of a failure.

    The common ones have short names (``pairing_code``, ``authentication_failed``,
    ``malformed``, ``expired``, ``revoked_device``); any other is its class name
    (``StaleDocumentError``, ...).
    """
    name = type(exc).__name__
    return _CODES.get(name, name)


class RecoveryStateError(RecoveryError, CallerError):
    """A guardian or recovery step does not fit the stored state.

    Attributes:
        code: Machine-readable reason (``not_found``, ``already_approved``,
            ``stale_request``, ``recovery_in_progress``, ``invalid_recovery``,
            ``no_recovery``, ``corrupt_state``); the node's API answers with it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RecoveryRefusedError(RecoveryError, PeerError):
    """A peer's guardian-recovery message was refused."""


class ReplayedRecoveryError(RecoveryRefusedError):
    """The same request or approval arrived before."""


class UnexpectedRecoveryError(RecoveryRefusedError):
    """The message does not fit the state (not ours, wrong sender, stale)."""


class RecoveryLockTooShortError(RecoveryRefusedError):
    """The request's time lock is shorter than this guardian's policy."""
