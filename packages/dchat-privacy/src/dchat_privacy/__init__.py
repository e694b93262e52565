"""dchat-privacy: privacy primitives.

So far: size-bucket padding; blind tokens (RFC 9474); Sphinx onion packets (BOLT 4).
"""

from __future__ import annotations

from ._blind_errors import BadTokenError as BadTokenError
from ._blind_errors import BlindInputError as BlindInputError
from ._blind_errors import BlindSignatureError as BlindSignatureError
from ._blind_errors import BlindSigningFaultError as BlindSigningFaultError
from ._blind_errors import ExpiredTokenError as ExpiredTokenError
from ._blind_errors import SpentSetFullError as SpentSetFullError
from ._blind_errors import SpentTokenError as SpentTokenError
from ._blind_errors import TokenError as TokenError
from ._blind_errors import TokenMessageError as TokenMessageError
from ._blind_errors import UnknownKeyError as UnknownKeyError
from ._padding import DEFAULT_BUCKETS as DEFAULT_BUCKETS
from ._padding import DchatPrivacyError as DchatPrivacyError
from ._padding import PaddingError as PaddingError
from ._padding import PaddingTooLargeError as PaddingTooLargeError
from ._padding import pad as pad
from ._padding import unpad as unpad
from ._sphinx import OnionPrivateKey as OnionPrivateKey
from ._sphinx import OnionPublicKey as OnionPublicKey
from ._sphinx_errors import InvalidPacketError as InvalidPacketError
from ._sphinx_errors import MalformedPacketError as MalformedPacketError
from ._sphinx_errors import ReplayedPacketError as ReplayedPacketError
from ._sphinx_errors import SphinxError as SphinxError
from ._sphinx_message import Deliver as Deliver
from ._sphinx_message import Forward as Forward
from ._sphinx_message import OnionRelay as OnionRelay
from ._sphinx_message import build_message as build_message
from ._sphinx_message import read_body as read_body
from ._sphinx_surb import ReplyBlock as ReplyBlock
from ._sphinx_surb import ReplyBook as ReplyBook
from ._sphinx_surb import build_reply_block as build_reply_block
from ._sphinx_surb import write_reply as write_reply
from ._token_redeem import RedeemedToken as RedeemedToken
from ._token_redeem import TokenRedeemer as TokenRedeemer
from ._token_redeem import TokenWallet as TokenWallet
from ._tokens import PendingTokens as PendingTokens
from ._tokens import Token as Token
from ._tokens import TokenIssuance as TokenIssuance
from ._tokens import TokenIssuer as TokenIssuer
from ._tokens import TokenIssuerKey as TokenIssuerKey
from ._tokens import TokenKey as TokenKey
from ._tokens import TokenRequest as TokenRequest
from ._tokens import decode_token_issuance as decode_token_issuance
from ._tokens import decode_token_request as decode_token_request
from ._tokens import request_tokens as request_tokens

__all__ = (
    "BadTokenError",
    "BlindInputError",
    "BlindSignatureError",
    "BlindSigningFaultError",
    "DEFAULT_BUCKETS",
    "DchatPrivacyError",
    "Deliver",
    "ExpiredTokenError",
    "Forward",
    "InvalidPacketError",
    "MalformedPacketError",
    "OnionPrivateKey",
    "OnionPublicKey",
    "OnionRelay",
    "PaddingError",
    "PaddingTooLargeError",
    "PendingTokens",
    "RedeemedToken",
    "ReplayedPacketError",
    "ReplyBlock",
    "ReplyBook",
    "SpentSetFullError",
    "SpentTokenError",
    "SphinxError",
    "Token",
    "TokenError",
    "TokenIssuance",
    "TokenIssuer",
    "TokenIssuerKey",
    "TokenKey",
    "TokenMessageError",
    "TokenRedeemer",
    "TokenRequest",
    "TokenWallet",
    "UnknownKeyError",
    "build_message",
    "build_reply_block",
    "decode_token_issuance",
    "decode_token_request",
    "pad",
    "read_body",
    "request_tokens",
    "unpad",
    "write_reply",
)
