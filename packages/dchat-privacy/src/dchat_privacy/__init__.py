"""dchat-privacy: privacy primitives. So far: size-bucket padding, zero-knowledge contact proofs."""

from __future__ import annotations

from ._contact_proof import MAX_RING_SIZE as MAX_RING_SIZE
from ._contact_proof import RING_SIZE_CLASSES as RING_SIZE_CLASSES
from ._contact_proof import ContactContext as ContactContext
from ._contact_proof import ContactKey as ContactKey
from ._contact_proof import ContactProof as ContactProof
from ._contact_proof import ContactRing as ContactRing
from ._contact_proof import ContactSecret as ContactSecret
from ._contact_proof import prove_contact as prove_contact
from ._contact_proof import verify_contact as verify_contact
from ._contact_verifier import ContactVerifier as ContactVerifier
from ._padding import DEFAULT_BUCKETS as DEFAULT_BUCKETS
from ._padding import DchatPrivacyError as DchatPrivacyError
from ._padding import PaddingError as PaddingError
from ._padding import PaddingTooLargeError as PaddingTooLargeError
from ._padding import pad as pad
from ._padding import unpad as unpad
from ._zk_errors import InvalidProofError as InvalidProofError
from ._zk_errors import ReplayedProofError as ReplayedProofError
from ._zk_errors import ZkDecodeError as ZkDecodeError
from ._zk_errors import ZkError as ZkError
from ._zk_errors import ZkInputError as ZkInputError

__all__ = (
    "ContactContext",
    "ContactKey",
    "ContactProof",
    "ContactRing",
    "ContactSecret",
    "ContactVerifier",
    "DEFAULT_BUCKETS",
    "DchatPrivacyError",
    "InvalidProofError",
    "MAX_RING_SIZE",
    "PaddingError",
    "PaddingTooLargeError",
    "RING_SIZE_CLASSES",
    "ReplayedProofError",
    "ZkDecodeError",
    "ZkError",
    "ZkInputError",
    "pad",
    "prove_contact",
    "unpad",
    "verify_contact",
)
