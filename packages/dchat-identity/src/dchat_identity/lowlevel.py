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
  :class:`SyncDelivery`, :class:`SyncedContact`, :class:`SyncCounters`, :func:`contact_changes`,
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
- Guardian recovery and document trust as sans-IO agents for the node's
  shells: :class:`GuardianAgent` (owner and guardian; :meth:`~GuardianAgent.receive`
  takes the :data:`GUARDIAN_KINDS` messages and returns a :class:`GuardianStep`),
  :class:`RecoveryAgent`
  (the recovering node) with their control payloads (:class:`ShareMessage`,
  :class:`LookupMessage`, :class:`InfoMessage`, :class:`RequestMessage`,
  :class:`ApprovalMessage`, :class:`VetoMessage`, the ``KIND_*`` names) and
  the :class:`Outgoing` values they return; the rules for which documents to
  believe (:class:`DocumentTrust`, :func:`follow`, :class:`Followed`, :func:`check_origin`,
  :func:`check_forwarder`, :func:`answer_lookup`, :func:`first_chain`,
  :func:`restored_chain` and the ``identity.*`` kinds); the stored maps the
  agents keep (:data:`Entry`, :data:`EntryMap`, :func:`decode_map`,
  :func:`encode_map`).
- Specific errors: the subclasses of :class:`dchat_identity.DocumentChainError`
  and :class:`dchat_identity.RecoveryError`, :class:`ClockSkewError` and
  :class:`IdentityStateError` (a call in the wrong order: fix it, don't catch it).
  :class:`RecoveryStateError` carries a ``code`` a node answers its API with;
  :class:`RecoveryRefusedError` and its subclasses refuse a peer's recovery message.
  Catch the family roots exported by :mod:`dchat_identity` instead.
- A device's burners as the node keeps them: :class:`BurnerBook` (keys, cards,
  recently expired ids, the seeds of expired burners held for their stealth
  funds; stored under :data:`BURNER_KEYS`), :func:`burner_row`,
  and :class:`BurnerStateError`, whose ``code`` the node answers with.
"""

from __future__ import annotations

from ._burner_book import BURNER_KEYS as BURNER_KEYS
from ._burner_book import BurnerBook as BurnerBook
from ._burner_book import burner_row as burner_row
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
from ._document_trust import DOCUMENT_KIND as DOCUMENT_KIND
from ._document_trust import HEAD_KIND as HEAD_KIND
from ._document_trust import LEARNED as LEARNED
from ._document_trust import LOOKUP_KIND as LOOKUP_KIND
from ._document_trust import LOOKUP_MESSAGE as LOOKUP_MESSAGE
from ._document_trust import PEER_KIND as PEER_KIND
from ._document_trust import Accepted as Accepted
from ._document_trust import DocumentTrust as DocumentTrust
from ._document_trust import Followed as Followed
from ._document_trust import answer_lookup as answer_lookup
from ._document_trust import check_forwarder as check_forwarder
from ._document_trust import check_origin as check_origin
from ._document_trust import first_chain as first_chain
from ._document_trust import follow as follow
from ._document_trust import restored_chain as restored_chain
from ._errors import BrokenChainError as BrokenChainError
from ._errors import BurnerStateError as BurnerStateError
from ._errors import ClockSkewError as ClockSkewError
from ._errors import ForkedDocumentError as ForkedDocumentError
from ._errors import IdentityStateError as IdentityStateError
from ._errors import InvalidShareError as InvalidShareError
from ._errors import NotEnoughApprovalsError as NotEnoughApprovalsError
from ._errors import RecoveryLockTooShortError as RecoveryLockTooShortError
from ._errors import RecoveryRefusedError as RecoveryRefusedError
from ._errors import RecoveryStateError as RecoveryStateError
from ._errors import ReplayedDocumentError as ReplayedDocumentError
from ._errors import ReplayedRecoveryError as ReplayedRecoveryError
from ._errors import StaleDocumentError as StaleDocumentError
from ._errors import TimeLockedError as TimeLockedError
from ._errors import UnexpectedRecoveryError as UnexpectedRecoveryError
from ._errors import VetoedError as VetoedError
from ._errors import error_code as error_code
from ._guardian_agent import GUARDIAN_KINDS as GUARDIAN_KINDS
from ._guardian_agent import GUARDIAN_STATE as GUARDIAN_STATE
from ._guardian_agent import GuardianAgent as GuardianAgent
from ._guardian_agent import GuardianStep as GuardianStep
from ._guardian_wire import KIND_ALERT as KIND_ALERT
from ._guardian_wire import KIND_APPROVAL as KIND_APPROVAL
from ._guardian_wire import KIND_INFO as KIND_INFO
from ._guardian_wire import KIND_LOOKUP as KIND_LOOKUP
from ._guardian_wire import KIND_REQUEST as KIND_REQUEST
from ._guardian_wire import KIND_SHARE as KIND_SHARE
from ._guardian_wire import KIND_VETO as KIND_VETO
from ._guardian_wire import ApprovalMessage as ApprovalMessage
from ._guardian_wire import InfoMessage as InfoMessage
from ._guardian_wire import LookupMessage as LookupMessage
from ._guardian_wire import Outgoing as Outgoing
from ._guardian_wire import RequestMessage as RequestMessage
from ._guardian_wire import ShareMessage as ShareMessage
from ._guardian_wire import VetoMessage as VetoMessage
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
from ._recovery_agent import RECOVERY_STATE as RECOVERY_STATE
from ._recovery_agent import RecoveryAgent as RecoveryAgent
from ._recovery_process import RecoveryCertificate as RecoveryCertificate
from ._slip10 import ExtendedKey as ExtendedKey
from ._slip39 import combine_shares as combine_shares
from ._slip39 import split_secret as split_secret
from ._stored_maps import Entry as Entry
from ._stored_maps import EntryMap as EntryMap
from ._stored_maps import decode_map as decode_map
from ._stored_maps import encode_map as encode_map
from ._sync import SyncKey as SyncKey
from ._sync import open_sync_message as open_sync_message
from ._sync import seal_sync_message as seal_sync_message
from ._sync_agent import SyncAgent as SyncAgent
from ._sync_agent import SyncCounters as SyncCounters
from ._sync_agent import SyncDelivery as SyncDelivery
from ._sync_agent import SyncedContact as SyncedContact
from ._sync_agent import contact_changes as contact_changes
from ._sync_agent import open_ops as open_ops
from ._sync_agent import state_ops as state_ops

__all__ = (
    "Accepted",
    "ApprovalMessage",
    "BURNER_KEYS",
    "BrokenChainError",
    "BurnerBook",
    "BurnerStateError",
    "COIN_TYPE",
    "CachedProfile",
    "Certify",
    "ClockSkewError",
    "DOCUMENT_KIND",
    "DeviceAttestation",
    "DocumentTrust",
    "Entry",
    "EntryMap",
    "ExtendedKey",
    "Followed",
    "ForkedDocumentError",
    "GUARDIAN_KINDS",
    "GUARDIAN_STATE",
    "GuardianAgent",
    "GuardianApproval",
    "GuardianShare",
    "GuardianStep",
    "HEAD_KIND",
    "HybridClock",
    "IdentitySeed",
    "IdentityStateError",
    "InfoMessage",
    "InvalidShareError",
    "JoinedDevice",
    "KIND_ALERT",
    "KIND_APPROVAL",
    "KIND_INFO",
    "KIND_LOOKUP",
    "KIND_REQUEST",
    "KIND_SHARE",
    "KIND_VETO",
    "LEARNED",
    "LOOKUP_KIND",
    "LOOKUP_MESSAGE",
    "LocalDevice",
    "LookupMessage",
    "NotEnoughApprovalsError",
    "OpKind",
    "Outgoing",
    "PEER_KIND",
    "PROFILE_REQUEST_KIND",
    "PROFILE_VIEW_KIND",
    "PairItem",
    "PairedDevice",
    "PairingOutput",
    "PairingSession",
    "ProfileAgent",
    "Purpose",
    "RECOVERY_STATE",
    "RecoveryAgent",
    "RecoveryCertificate",
    "RecoveryLockTooShortError",
    "RecoveryRefusedError",
    "RecoveryStateError",
    "Rekey",
    "ReplayedDocumentError",
    "ReplayedRecoveryError",
    "RequestMessage",
    "Revocation",
    "ShareMessage",
    "ShareRelease",
    "StaleDocumentError",
    "SyncAgent",
    "SyncCounters",
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
    "UnexpectedRecoveryError",
    "VetoMessage",
    "VetoedError",
    "answer_lookup",
    "burner_row",
    "check_forwarder",
    "check_origin",
    "combine_shares",
    "contact_changes",
    "decode_map",
    "decode_pair_item",
    "decode_starter",
    "decode_sync_item",
    "device_rows",
    "encode_map",
    "encode_pair_item",
    "encode_starter",
    "encode_sync_item",
    "error_code",
    "find_devices",
    "first_chain",
    "follow",
    "key_path",
    "open_ops",
    "open_sync_item",
    "open_sync_message",
    "phrase_to_seed",
    "plan_revocation",
    "profile_fields",
    "rendezvous_keys",
    "restored_chain",
    "seal_sync_item",
    "seal_sync_message",
    "split_secret",
    "state_ops",
    "sync_mailbox_key",
    "synced_profile_fields",
    "verify_update",
)
