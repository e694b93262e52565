"""Errors of :mod:`dchat_chain`.

::

    DchatChainError(DchatError)
    ├── InvalidBlockError(PeerError, ValueError)         a block or header breaks a chain rule
    ├── InvalidMessageError(PeerError, ValueError)       bytes are no known consensus message
    │   ├── InvalidVoteError                             a vote is malformed, out of range or forged
    │   └── InvalidProposalError                         a proposal is malformed, forged or not
    │                                                    from the round's proposer
    ├── InvalidCertificateError(PeerError, ValueError)   a commit certificate proves no commit
    ├── InvalidEvidenceError(PeerError, ValueError)      misbehaviour evidence does not hold
    ├── InvalidTransactionError(PeerError, ValueError)   a transaction is malformed or invalid now
    ├── InvalidValidatorSetError(PeerError, ValueError)  a validator set is malformed or a key
    │                                                    lacks its proof of possession
    ├── SyncError(PeerError, ValueError)                 a sync response does not extend our chain
    ├── ChannelError(PeerError, ValueError)              a payment-channel message is malformed,
    │                                                    forged, stale or out of turn
    ├── ChainAnswerError(PeerError, ValueError)          a node's chain answer is malformed or does
    │   │                                                not match what the light client verified
    │   └── StaleAnswerError                             it is about a state older than one verified
    ├── ChainArgumentError(CallerError, ValueError)      a bad argument to a chain API
    │   ├── LightStateError                              a light-client state is corrupt or
    │   │                                                anchored to another genesis
    │   ├── InvalidHandleError                           a handle breaks the naming rule
    │   │                                                (_handle_names)
    │   ├── KeyRecordError                               a key record is corrupt, of another
    │   │                                                kind or holds an invalid key
    │   └── PeerAddressError                             a peer is not NODEID@HOST:PORT
    └── ChainStateError(CallerError)                     a call in the wrong state or order
        ├── SnapshotError                                a stored state snapshot is corrupt or
        │                                                not the stored chain's (_snapshot)
        ├── CorruptStoreError                            a stored block record does not decode
        └── NotCertifiedError                            no stored header proves a kept state yet

Every peer-caused error leaves the object that raised it unchanged, so a node
can drop the message, score the peer and go on.
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError

__all__ = (
    "ChainArgumentError",
    "ChainAnswerError",
    "ChainStateError",
    "ChannelError",
    "ChannelFileError",
    "CorruptStoreError",
    "DchatChainError",
    "InvalidBlockError",
    "InvalidCertificateError",
    "InvalidEvidenceError",
    "InvalidMessageError",
    "InvalidProposalError",
    "InvalidTransactionError",
    "InvalidValidatorSetError",
    "InvalidVoteError",
    "KeyRecordError",
    "LightStateError",
    "NotCertifiedError",
    "PeerAddressError",
    "StaleAnswerError",
    "SyncError",
)


class DchatChainError(DchatError):
    """Root of the errors raised by :mod:`dchat_chain`."""


class InvalidBlockError(DchatChainError, PeerError, ValueError):
    """A block or header is malformed or breaks a chain rule (height, hashes, time, proposer)."""


class InvalidMessageError(DchatChainError, PeerError, ValueError):
    """Bytes are not a well-formed consensus message of a known type."""


class InvalidVoteError(InvalidMessageError):
    """A vote is malformed, for an unknown validator, out of range, or its signature is bad."""


class InvalidProposalError(InvalidMessageError):
    """A proposal is malformed, badly signed or not from the round's proposer."""


class InvalidCertificateError(DchatChainError, PeerError, ValueError):
    """A commit certificate is malformed, lacks quorum power or its aggregate does not verify."""


class InvalidEvidenceError(DchatChainError, PeerError, ValueError):
    """Evidence of misbehaviour is malformed or does not prove what it claims."""


class InvalidTransactionError(DchatChainError, PeerError, ValueError):
    """A transaction is malformed or not valid against the current state."""


class InvalidValidatorSetError(DchatChainError, PeerError, ValueError):
    """A validator set is malformed, or a BLS key lacks a valid proof of possession."""


class SyncError(DchatChainError, PeerError, ValueError):
    """A block-sync response is malformed or does not extend the local chain."""


class ChainArgumentError(DchatChainError, CallerError, ValueError):
    """A chain API was given a bad argument."""


class ChainStateError(DchatChainError, CallerError):
    """A chain API was called in the wrong state or order."""


class CorruptStoreError(ChainStateError):
    """A stored block record does not decode: the block store is damaged."""


class NotCertifiedError(ChainStateError):
    """No stored header proves a state this node keeps yet (retry after the next block)."""


class ChannelError(DchatChainError, PeerError, ValueError):
    """A payment-channel message or request is malformed, forged, stale or out of turn."""


class ChainAnswerError(DchatChainError, PeerError, ValueError):
    """A node's chain answer is malformed or does not match what the light client verified."""


class StaleAnswerError(ChainAnswerError):
    """The answer is for a state older than the newest header the light client verified."""


class LightStateError(ChainArgumentError):
    """A persisted light-client state is corrupt or anchored to another genesis."""


class ChannelFileError(ChainArgumentError):
    """A wallet's channel file cannot be read or unlocked, or holds another wallet's book."""


class PeerAddressError(ChainArgumentError):
    """A validator peer's address is not ``NODEID@HOST:PORT``."""


class KeyRecordError(ChainArgumentError):
    """A decrypted validator or wallet key record is corrupt, of another kind or holds a bad key.

    Attributes:
        reason: What is wrong, phrased to follow the record's name ("is corrupt: ...",
            "is not a wallet key file", "holds an invalid key: ..."), so a caller that
            knows the file can say which one.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"key record {reason}")
        self.reason = reason
