"""dchat-privacy: privacy primitives: size-bucket padding; blind tokens (RFC 9474)."""

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
    "ExpiredTokenError",
    "PaddingError",
    "PaddingTooLargeError",
    "PendingTokens",
    "RedeemedToken",
    "SpentSetFullError",
    "SpentTokenError",
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
    "decode_token_issuance",
    "decode_token_request",
    "pad",
    "request_tokens",
    "unpad",
)
