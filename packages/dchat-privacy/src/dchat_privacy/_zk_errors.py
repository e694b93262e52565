"""Errors of the zero-knowledge proofs (Ristretto255 group, transcripts, sigma and contact proofs).

Tree (all under :class:`~dchat_privacy.DchatPrivacyError`)::

    ZkError
    ├── ZkInputError        caller mistake: a secret not in the ring, an empty or
    │                       oversized ring, a context field out of range (CallerError, ValueError)
    ├── ZkDecodeError       malformed bytes from a peer: a non-canonical scalar, an
    │                       invalid or identity element, a malformed proof (PeerError, ValueError)
    ├── InvalidProofError   a well-formed proof that does not verify (PeerError)
    └── ReplayedProofError  a proof on a nonce not issued, expired or already used (PeerError)

:class:`InvalidProofError` is deliberately opaque: it never says which check
failed, and no error message carries a secret.
"""

from __future__ import annotations

from dchat_core import CallerError, PeerError

from ._padding import DchatPrivacyError

__all__ = ("InvalidProofError", "ReplayedProofError", "ZkDecodeError", "ZkError", "ZkInputError")


class ZkError(DchatPrivacyError):
    """Root of the errors raised by the zero-knowledge proof code."""


class ZkInputError(ZkError, CallerError, ValueError):
    """The caller passed an argument the proof code cannot use."""


class ZkDecodeError(ZkError, PeerError, ValueError):
    """Bytes are not the canonical encoding of a scalar, element, ring or proof."""


class InvalidProofError(ZkError, PeerError):
    """The proof does not verify for this statement and context."""

    def __init__(self) -> None:
        super().__init__("invalid proof")


class ReplayedProofError(ZkError, PeerError):
    """The proof's nonce was not issued by this verifier, has expired or was already used."""
