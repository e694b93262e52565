"""Low-level building blocks of dchat-identity, for the node and protocol code.

Ordinary use needs only :mod:`dchat_identity`. What lives here, and why it is
kept apart:

- Key derivation internals (:class:`IdentitySeed`, :class:`ExtendedKey`,
  :func:`key_path`, :class:`Purpose`, ``COIN_TYPE``, :func:`phrase_to_seed`):
  :meth:`dchat_identity.Identity.from_phrase` covers the common case; these
  reach any key of the path scheme directly.
- SLIP-0039 (:func:`split_secret`, :func:`combine_shares`): used by
  :func:`dchat_identity.setup_guardians` and recovery, easy to misuse alone.
- Device sync (:class:`SyncReplica`, :class:`SyncOp`, :class:`SyncState`,
  :class:`OpKind`, :class:`HybridClock`, :class:`Timestamp`, :class:`SyncKey`,
  :func:`seal_sync_message`, :func:`open_sync_message`): the node runs it.
- Records the everyday entry points produce and consume, normally handled as
  values or bytes (:class:`GuardianShare`, :class:`GuardianApproval`,
  :class:`ShareRelease`, :class:`RecoveryCertificate`, :class:`PairedDevice`,
  :class:`DeviceAttestation`, :class:`TokenBucket`) and
  :func:`verify_update`, the single-step check behind
  :meth:`dchat_identity.DocumentChain.update`.
- Specific errors: the subclasses of :class:`dchat_identity.DocumentChainError`
  and :class:`dchat_identity.RecoveryError`, :class:`ClockSkewError` and
  :class:`IdentityStateError` (a call in the wrong order: fix it, don't catch it).
  Catch the family roots exported by :mod:`dchat_identity` instead.
"""

from __future__ import annotations

from ._burners import TokenBucket as TokenBucket
from ._chain import verify_update as verify_update
from ._crdt import OpKind as OpKind
from ._crdt import SyncOp as SyncOp
from ._crdt import SyncReplica as SyncReplica
from ._crdt import SyncState as SyncState
from ._derivation import COIN_TYPE as COIN_TYPE
from ._derivation import IdentitySeed as IdentitySeed
from ._derivation import Purpose as Purpose
from ._derivation import key_path as key_path
from ._derivation import phrase_to_seed as phrase_to_seed
from ._devices import DeviceAttestation as DeviceAttestation
from ._errors import BrokenChainError as BrokenChainError
from ._errors import ClockSkewError as ClockSkewError
from ._errors import ForkedDocumentError as ForkedDocumentError
from ._errors import IdentityStateError as IdentityStateError
from ._errors import InvalidShareError as InvalidShareError
from ._errors import NotEnoughApprovalsError as NotEnoughApprovalsError
from ._errors import ReplayedDocumentError as ReplayedDocumentError
from ._errors import StaleDocumentError as StaleDocumentError
from ._errors import TimeLockedError as TimeLockedError
from ._errors import VetoedError as VetoedError
from ._guardians import GuardianShare as GuardianShare
from ._hlc import HybridClock as HybridClock
from ._hlc import Timestamp as Timestamp
from ._pairing_joiner import PairedDevice as PairedDevice
from ._recovery import GuardianApproval as GuardianApproval
from ._recovery import ShareRelease as ShareRelease
from ._recovery_process import RecoveryCertificate as RecoveryCertificate
from ._slip10 import ExtendedKey as ExtendedKey
from ._slip39 import combine_shares as combine_shares
from ._slip39 import split_secret as split_secret
from ._sync import SyncKey as SyncKey
from ._sync import open_sync_message as open_sync_message
from ._sync import seal_sync_message as seal_sync_message

__all__ = (
    "BrokenChainError",
    "COIN_TYPE",
    "ClockSkewError",
    "DeviceAttestation",
    "ExtendedKey",
    "ForkedDocumentError",
    "GuardianApproval",
    "GuardianShare",
    "HybridClock",
    "IdentitySeed",
    "IdentityStateError",
    "InvalidShareError",
    "NotEnoughApprovalsError",
    "OpKind",
    "PairedDevice",
    "Purpose",
    "RecoveryCertificate",
    "ReplayedDocumentError",
    "ShareRelease",
    "StaleDocumentError",
    "SyncKey",
    "SyncOp",
    "SyncReplica",
    "SyncState",
    "TimeLockedError",
    "Timestamp",
    "TokenBucket",
    "VetoedError",
    "combine_shares",
    "key_path",
    "open_sync_message",
    "phrase_to_seed",
    "seal_sync_message",
    "split_secret",
    "verify_update",
)
