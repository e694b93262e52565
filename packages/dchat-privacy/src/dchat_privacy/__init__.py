"""dchat-privacy: the privacy primitives dchat's relays and nodes use.

Size-bucket padding; rotating mailbox tags; a cover-traffic scheduler; Sphinx
onion packets (BOLT 4) for onion deposits, with reply blocks (a library: the
node does not use them yet); blind tokens (RFC 9474) that relays sell for
deposits; zero-knowledge contact proofs on ristretto255 (put authorization).

The everyday names are here; the building blocks, wire records and the errors
a caller rarely catches are in :mod:`dchat_privacy.lowlevel`.
"""

from __future__ import annotations

from ._blind_errors import BadTokenError as BadTokenError
from ._blind_errors import ExpiredTokenError as ExpiredTokenError
from ._blind_errors import SpentTokenError as SpentTokenError
from ._blind_errors import TokenError as TokenError
from ._blind_errors import UnknownKeyError as UnknownKeyError
from ._contact_proof import ContactContext as ContactContext
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
from ._sphinx import OnionPrivateKey as OnionPrivateKey
from ._sphinx import OnionPublicKey as OnionPublicKey
from ._sphinx_errors import InvalidPacketError as InvalidPacketError
from ._sphinx_errors import SphinxError as SphinxError
from ._sphinx_message import OnionRelay as OnionRelay
from ._sphinx_message import build_message as build_message
from ._sphinx_surb import ReplyBook as ReplyBook
from ._sphinx_surb import build_reply_block as build_reply_block
from ._sphinx_surb import write_reply as write_reply
from ._token_redeem import TokenRedeemer as TokenRedeemer
from ._token_redeem import TokenWallet as TokenWallet
from ._tokens import PendingTokens as PendingTokens
from ._tokens import Token as Token
from ._tokens import TokenIssuer as TokenIssuer
from ._tokens import TokenIssuerKey as TokenIssuerKey
from ._tokens import request_tokens as request_tokens
from ._zk_errors import InvalidProofError as InvalidProofError
from ._zk_errors import ZkError as ZkError

__all__ = (
    "BadTokenError",
    "ContactContext",
    "ContactRing",
    "ContactSecret",
    "ContactVerifier",
    "DEFAULT_BUCKETS",
    "DchatPrivacyError",
    "ExpiredTokenError",
    "InvalidPacketError",
    "InvalidProofError",
    "OnionPrivateKey",
    "OnionPublicKey",
    "OnionRelay",
    "PaddingError",
    "PaddingTooLargeError",
    "PendingTokens",
    "ReplyBook",
    "SpentTokenError",
    "SphinxError",
    "Token",
    "TokenError",
    "TokenIssuer",
    "TokenIssuerKey",
    "TokenRedeemer",
    "TokenWallet",
    "UnknownKeyError",
    "ZkError",
    "build_message",
    "build_reply_block",
    "pad",
    "prove_contact",
    "request_tokens",
    "unpad",
    "verify_contact",
    "write_reply",
)
