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
- The device agents the node drives (sans-IO: ``now`` in, items and events
  out): :class:`PairingSession` (with :class:`PairingOutput`,
  :class:`Certify`, :class:`JoinedDevice`), :class:`SyncAgent` (with
  :class:`SyncDelivery`, :class:`SyncedContact`, :func:`contact_changes`,
  :func:`open_ops`, :func:`state_ops`), :class:`LocalDevice` and the device-list
  rules (:func:`find_devices`, :func:`plan_revocation`, :class:`Revocation`,
  :func:`device_rows`), :class:`ProfileAgent` (with :class:`CachedProfile`,
  :func:`profile_fields`, :func:`synced_profile_fields` and the control kinds
  ``PROFILE_REQUEST_KIND`` / ``PROFILE_VIEW_KIND``), and :func:`error_code`.
- Their wire codecs (``docs/protocol.md`` section 17): rendezvous and sync
  mailbox keys (:func:`rendezvous_keys`, :func:`sync_mailbox_key`), pairing
  items (:class:`PairItem`, :func:`encode_pair_item`, :func:`decode_pair_item`,
  :func:`encode_starter`, :func:`decode_starter`) and sync items
  (:class:`SyncItem`, :class:`Rekey`, :func:`encode_sync_item`,
  :func:`decode_sync_item`, :func:`seal_sync_item`, :func:`open_sync_item`).
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
from ._device_state import LocalDevice as LocalDevice
from ._device_state import Revocation as Revocation
from ._device_state import device_rows as device_rows
from ._device_state import find_devices as find_devices
from ._device_state import plan_revocation as plan_revocation
from ._device_wire import PairItem as PairItem
from ._device_wire import Rekey as Rekey
from ._device_wire import SyncItem as SyncItem
from ._device_wire import decode_pair_item as decode_pair_item
from ._device_wire import decode_starter as decode_starter
from ._device_wire import decode_sync_item as decode_sync_item
from ._device_wire import encode_pair_item as encode_pair_item
from ._device_wire import encode_starter as encode_starter
from ._device_wire import encode_sync_item as encode_sync_item
from ._device_wire import open_sync_item as open_sync_item
from ._device_wire import rendezvous_keys as rendezvous_keys
from ._device_wire import seal_sync_item as seal_sync_item
from ._device_wire import sync_mailbox_key as sync_mailbox_key
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
from ._errors import error_code as error_code
from ._guardians import GuardianShare as GuardianShare
from ._hlc import HybridClock as HybridClock
from ._hlc import Timestamp as Timestamp
from ._pairing_joiner import PairedDevice as PairedDevice
from ._pairing_session import Certify as Certify
from ._pairing_session import JoinedDevice as JoinedDevice
from ._pairing_session import PairingOutput as PairingOutput
from ._pairing_session import PairingSession as PairingSession
from ._profile_agent import PROFILE_REQUEST_KIND as PROFILE_REQUEST_KIND
from ._profile_agent import PROFILE_VIEW_KIND as PROFILE_VIEW_KIND
from ._profile_agent import CachedProfile as CachedProfile
from ._profile_agent import ProfileAgent as ProfileAgent
from ._profile_agent import profile_fields as profile_fields
from ._profile_agent import synced_profile_fields as synced_profile_fields
from ._recovery import GuardianApproval as GuardianApproval
from ._recovery import ShareRelease as ShareRelease
from ._recovery_process import RecoveryCertificate as RecoveryCertificate
from ._slip10 import ExtendedKey as ExtendedKey
from ._slip39 import combine_shares as combine_shares
from ._slip39 import split_secret as split_secret
from ._sync import SyncKey as SyncKey
from ._sync import open_sync_message as open_sync_message
from ._sync import seal_sync_message as seal_sync_message
from ._sync_agent import SyncAgent as SyncAgent
from ._sync_agent import SyncDelivery as SyncDelivery
from ._sync_agent import SyncedContact as SyncedContact
from ._sync_agent import contact_changes as contact_changes
from ._sync_agent import open_ops as open_ops
from ._sync_agent import state_ops as state_ops

__all__ = (
    "BrokenChainError",
    "COIN_TYPE",
    "CachedProfile",
    "Certify",
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
    "JoinedDevice",
    "LocalDevice",
    "NotEnoughApprovalsError",
    "OpKind",
    "PROFILE_REQUEST_KIND",
    "PROFILE_VIEW_KIND",
    "PairItem",
    "PairedDevice",
    "PairingOutput",
    "PairingSession",
    "ProfileAgent",
    "Purpose",
    "RecoveryCertificate",
    "Rekey",
    "ReplayedDocumentError",
    "Revocation",
    "ShareRelease",
    "StaleDocumentError",
    "SyncAgent",
    "SyncDelivery",
    "SyncItem",
    "SyncKey",
    "SyncOp",
    "SyncReplica",
    "SyncState",
    "SyncedContact",
    "TimeLockedError",
    "Timestamp",
    "TokenBucket",
    "VetoedError",
    "combine_shares",
    "contact_changes",
    "decode_pair_item",
    "decode_starter",
    "decode_sync_item",
    "device_rows",
    "encode_pair_item",
    "encode_starter",
    "encode_sync_item",
    "error_code",
    "find_devices",
    "key_path",
    "open_ops",
    "open_sync_item",
    "open_sync_message",
    "phrase_to_seed",
    "plan_revocation",
    "profile_fields",
    "rendezvous_keys",
    "seal_sync_item",
    "seal_sync_message",
    "split_secret",
    "state_ops",
    "sync_mailbox_key",
    "synced_profile_fields",
    "verify_update",
)
