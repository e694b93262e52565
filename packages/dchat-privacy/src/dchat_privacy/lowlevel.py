"""The low-level API of dchat-privacy: building blocks beneath the everyday API.

:mod:`dchat_privacy` exports padding and the blind-token scheme (issuer,
client, wallet, redeemer and their wire records). This module holds the rest:

- RSA blind signatures, RFC 9474 (RSABSSA-SHA384, four variants):
  ``BlindVariant``, ``Blinded``, ``prepare``, ``blind``, ``blind_sign``,
  ``finalize``, ``verify``
- the blind tokens' building blocks: ``token_message`` (what is signed),
  ``token_hash`` (the spent-set key), ``MAX_TOKENS_PER_REQUEST``

Every name is importable from exactly one of :mod:`dchat_privacy` and this module.
"""

from __future__ import annotations

from ._rsabssa import Blinded as Blinded
from ._rsabssa import BlindVariant as BlindVariant
from ._rsabssa import blind as blind
from ._rsabssa import blind_sign as blind_sign
from ._rsabssa import finalize as finalize
from ._rsabssa import prepare as prepare
from ._rsabssa import verify as verify
from ._token_redeem import token_hash as token_hash
from ._tokens import MAX_TOKENS_PER_REQUEST as MAX_TOKENS_PER_REQUEST
from ._tokens import token_message as token_message

__all__ = (
    "MAX_TOKENS_PER_REQUEST",
    "BlindVariant",
    "Blinded",
    "blind",
    "blind_sign",
    "finalize",
    "prepare",
    "token_hash",
    "token_message",
    "verify",
)
