"""Self-certifying identifiers.

An id is a 32-byte BLAKE2b-256 digest of a public key under a domain tag, so
whoever holds the key can prove the id is theirs and nobody can claim someone
else's id. The text form is a short prefix plus lowercase, unpadded base32.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import ClassVar, Self

from ._errors import CallerError

__all__ = ("IdentityId", "InvalidIdError", "MailboxId", "MessageId", "NodeId")


class InvalidIdError(CallerError, ValueError):
    """Text or bytes that do not form a valid identifier."""


class _Id:
    """Base for fixed-size identifiers with a textual prefix."""

    PREFIX: ClassVar[str]
    SIZE: ClassVar[int] = 32
    __slots__ = ("_raw", "_text")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != self.SIZE:
            raise InvalidIdError(f"{type(self).__name__} must be {self.SIZE} bytes")
        self._raw = raw
        self._text: str | None = None  # the text form, computed on first use

    def __bytes__(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Id)
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._raw))

    def __str__(self) -> str:
        if self._text is None:
            text = base64.b32encode(self._raw).decode("ascii").rstrip("=").lower()
            self._text = f"{self.PREFIX}{text}"
        return self._text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse the text form (``PREFIX`` + base32)."""
        if not isinstance(text, str) or not text.startswith(cls.PREFIX):
            raise InvalidIdError(f"not a {cls.__name__}: wrong prefix")
        body = text[len(cls.PREFIX) :].upper()
        if len(body) > 128:
            raise InvalidIdError(f"not a {cls.__name__}: too long")
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except (ValueError, TypeError):
            raise InvalidIdError(f"not a {cls.__name__}: bad base32") from None
        parsed = cls(raw)
        if str(parsed) != text:
            raise InvalidIdError(f"not a {cls.__name__}: non-canonical text")
        return parsed


class _DerivedId(_Id):
    DOMAIN: ClassVar[bytes]
    __slots__ = ()

    @classmethod
    def derive(cls, public_key: bytes) -> Self:
        """The id that belongs to ``public_key`` (raw public key bytes).

        Ids are immutable and keys public, so the same key yields the same
        (shared) object from a bounded cache: the messaging path derives the
        ids of its identities and contacts several times per message.
        """
        key = (cls, bytes(public_key))
        found = _DERIVED.get(key)
        if found is None:
            if len(_DERIVED) >= _DERIVED_MAX:
                _DERIVED.clear()
            digest = hashlib.blake2b(key[1], digest_size=32, person=cls.DOMAIN).digest()
            found = _DERIVED[key] = cls(digest)
        assert isinstance(found, cls)
        return found


_DERIVED: dict[tuple[type[_DerivedId], bytes], _DerivedId] = {}
_DERIVED_MAX = 4096


class IdentityId(_DerivedId):
    """A person's or bot's identity: the digest of their identity signing key."""

    PREFIX = "dcid1"
    DOMAIN = b"dchat-identity"
    __slots__ = ()


class NodeId(_DerivedId):
    """A node's link identity, as proven in the link handshake."""

    PREFIX = "dcnd1"
    DOMAIN = b"dchat-node"
    __slots__ = ()


class MailboxId(_DerivedId):
    """A relay mailbox: the digest of the mailbox owner's link key."""

    PREFIX = "dcmb1"
    DOMAIN = b"dchat-mailbox"
    __slots__ = ()


class MessageId(_Id):
    """A random 16-byte message identifier chosen by the sender."""

    PREFIX = "dcmsg1"
    SIZE = 16
    __slots__ = ()

    @classmethod
    def random(cls) -> Self:
        """A fresh random id."""
        return cls(os.urandom(cls.SIZE))
