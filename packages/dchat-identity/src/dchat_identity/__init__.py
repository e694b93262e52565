"""dchat-identity: self-sovereign identities, devices, burners, guardians, profiles.

This is the everyday API. Key derivation internals, SLIP-0039 shares, the
device-sync machinery (CRDT, clocks, sealed sync messages), recovery wire
records and the specific subclasses of the error families live in
:mod:`dchat_identity.lowlevel`.
"""

from __future__ import annotations

from ._burners import Burner as Burner
from ._burners import BurnerStore as BurnerStore
from ._card import ContactCard as ContactCard
from ._chain import DocumentChain as DocumentChain
from ._derivation import generate_phrase as generate_phrase
from ._devices import DeviceCertificate as DeviceCertificate
from ._devices import DeviceRevocation as DeviceRevocation
from ._document import IdentityDocument as IdentityDocument
from ._errors import DchatIdentityError as DchatIdentityError
from ._errors import DocumentChainError as DocumentChainError
from ._errors import ExpiredError as ExpiredError
from ._errors import ForgedRecordError as ForgedRecordError
from ._errors import IdentityArgumentError as IdentityArgumentError
from ._errors import InvalidCardError as InvalidCardError
from ._errors import KeystoreError as KeystoreError
from ._errors import MalformedRecordError as MalformedRecordError
from ._errors import PairingCodeError as PairingCodeError
from ._errors import RateLimitedError as RateLimitedError
from ._errors import RecoveryError as RecoveryError
from ._errors import RevokedDeviceError as RevokedDeviceError
from ._guardians import Guardian as Guardian
from ._guardians import GuardianSet as GuardianSet
from ._guardians import setup_guardians as setup_guardians
from ._identity import Identity as Identity
from ._pairing import PairingHost as PairingHost
from ._pairing_joiner import PairingJoiner as PairingJoiner
from ._profile import Profile as Profile
from ._profile import ProfileView as ProfileView
from ._profile import Relation as Relation
from ._profile import Visibility as Visibility
from ._recovery import RecoveryRequest as RecoveryRequest
from ._recovery import RecoveryVeto as RecoveryVeto
from ._recovery import approve_recovery as approve_recovery
from ._recovery_process import RecoveryProcess as RecoveryProcess

__all__ = (
    "Burner",
    "BurnerStore",
    "ContactCard",
    "DchatIdentityError",
    "DeviceCertificate",
    "DeviceRevocation",
    "DocumentChain",
    "DocumentChainError",
    "ExpiredError",
    "ForgedRecordError",
    "Guardian",
    "GuardianSet",
    "Identity",
    "IdentityArgumentError",
    "IdentityDocument",
    "InvalidCardError",
    "KeystoreError",
    "MalformedRecordError",
    "PairingCodeError",
    "PairingHost",
    "PairingJoiner",
    "Profile",
    "ProfileView",
    "RateLimitedError",
    "RecoveryError",
    "RecoveryProcess",
    "RecoveryRequest",
    "RecoveryVeto",
    "Relation",
    "RevokedDeviceError",
    "Visibility",
    "approve_recovery",
    "generate_phrase",
    "setup_guardians",
)
