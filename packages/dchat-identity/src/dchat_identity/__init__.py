"""dchat-identity: self-certifying identities, contact cards and keystores."""

from __future__ import annotations

from ._card import ContactCard as ContactCard
from ._errors import DchatIdentityError as DchatIdentityError
from ._errors import InvalidCardError as InvalidCardError
from ._errors import KeystoreError as KeystoreError
from ._identity import Identity as Identity

__all__ = (
    "ContactCard",
    "DchatIdentityError",
    "Identity",
    "InvalidCardError",
    "KeystoreError",
)
