"""dchat-identity: self-sovereign identities, devices, sync, burners, guardians, profiles."""

from __future__ import annotations

from ._burners import Burner as Burner
from ._burners import BurnerStore as BurnerStore
from ._burners import TokenBucket as TokenBucket
from ._card import ContactCard as ContactCard
from ._chain import DocumentChain as DocumentChain
from ._chain import verify_update as verify_update
from ._crdt import OpKind as OpKind
from ._crdt import SyncOp as SyncOp
from ._crdt import SyncReplica as SyncReplica
from ._crdt import SyncState as SyncState
from ._derivation import COIN_TYPE as COIN_TYPE
from ._derivation import IdentitySeed as IdentitySeed
from ._derivation import Purpose as Purpose
from ._derivation import generate_phrase as generate_phrase
from ._derivation import key_path as key_path
from ._derivation import phrase_to_seed as phrase_to_seed
from ._devices import DeviceAttestation as DeviceAttestation
from ._devices import DeviceCertificate as DeviceCertificate
from ._devices import DeviceRevocation as DeviceRevocation
from ._document import IdentityDocument as IdentityDocument
from ._errors import BrokenChainError as BrokenChainError
from ._errors import ClockSkewError as ClockSkewError
from ._errors import DchatIdentityError as DchatIdentityError
from ._errors import DocumentChainError as DocumentChainError
from ._errors import ExpiredError as ExpiredError
from ._errors import ForgedRecordError as ForgedRecordError
from ._errors import ForkedDocumentError as ForkedDocumentError
from ._errors import IdentityArgumentError as IdentityArgumentError
from ._errors import IdentityStateError as IdentityStateError
from ._errors import InvalidCardError as InvalidCardError
from ._errors import InvalidShareError as InvalidShareError
from ._errors import KeystoreError as KeystoreError
from ._errors import MalformedRecordError as MalformedRecordError
from ._errors import NotEnoughApprovalsError as NotEnoughApprovalsError
from ._errors import PairingCodeError as PairingCodeError
from ._errors import RateLimitedError as RateLimitedError
from ._errors import RecoveryError as RecoveryError
from ._errors import ReplayedDocumentError as ReplayedDocumentError
from ._errors import RevokedDeviceError as RevokedDeviceError
from ._errors import StaleDocumentError as StaleDocumentError
from ._errors import TimeLockedError as TimeLockedError
from ._errors import VetoedError as VetoedError
from ._guardians import Guardian as Guardian
from ._guardians import GuardianSet as GuardianSet
from ._guardians import GuardianShare as GuardianShare
from ._guardians import setup_guardians as setup_guardians
from ._hlc import HybridClock as HybridClock
from ._hlc import Timestamp as Timestamp
from ._identity import Identity as Identity
from ._pairing import PairingHost as PairingHost
from ._pairing_joiner import PairedDevice as PairedDevice
from ._pairing_joiner import PairingJoiner as PairingJoiner
from ._profile import Profile as Profile
from ._profile import ProfileView as ProfileView
from ._profile import Relation as Relation
from ._profile import Visibility as Visibility
from ._recovery import GuardianApproval as GuardianApproval
from ._recovery import RecoveryRequest as RecoveryRequest
from ._recovery import RecoveryVeto as RecoveryVeto
from ._recovery import ShareRelease as ShareRelease
from ._recovery import approve_recovery as approve_recovery
from ._recovery_process import RecoveryCertificate as RecoveryCertificate
from ._recovery_process import RecoveryProcess as RecoveryProcess
from ._slip10 import ExtendedKey as ExtendedKey
from ._slip39 import combine_shares as combine_shares
from ._slip39 import split_secret as split_secret
from ._sync import SyncKey as SyncKey
from ._sync import open_sync_message as open_sync_message
from ._sync import seal_sync_message as seal_sync_message

__all__ = (
    "BrokenChainError",
    "Burner",
    "BurnerStore",
    "COIN_TYPE",
    "ClockSkewError",
    "ContactCard",
    "DchatIdentityError",
    "DeviceAttestation",
    "DeviceCertificate",
    "DeviceRevocation",
    "DocumentChain",
    "DocumentChainError",
    "ExpiredError",
    "ExtendedKey",
    "ForgedRecordError",
    "ForkedDocumentError",
    "Guardian",
    "GuardianApproval",
    "GuardianSet",
    "GuardianShare",
    "HybridClock",
    "Identity",
    "IdentityArgumentError",
    "IdentityDocument",
    "IdentitySeed",
    "IdentityStateError",
    "InvalidCardError",
    "InvalidShareError",
    "KeystoreError",
    "MalformedRecordError",
    "NotEnoughApprovalsError",
    "OpKind",
    "PairedDevice",
    "PairingCodeError",
    "PairingHost",
    "PairingJoiner",
    "Profile",
    "ProfileView",
    "Purpose",
    "RateLimitedError",
    "RecoveryCertificate",
    "RecoveryError",
    "RecoveryProcess",
    "RecoveryRequest",
    "RecoveryVeto",
    "Relation",
    "ReplayedDocumentError",
    "RevokedDeviceError",
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
    "Visibility",
    "approve_recovery",
    "combine_shares",
    "generate_phrase",
    "key_path",
    "open_sync_message",
    "phrase_to_seed",
    "seal_sync_message",
    "setup_guardians",
    "split_secret",
    "verify_update",
)
