"""Signed prekey bundles: what an identity publishes so others can reach it offline.

A bundle is the canonical map (``docs/protocol.md``, "Session setup")::

    {"v": 1, "ik": identity Ed25519 key(32), "ek": identity X25519 key(32),
     "spk_id": u32, "spk": signed prekey X25519(32), "exp": unix seconds,
     "pq_id": u32, "pq": X-Wing prekey(1216),
     ["opk_id": u32, "opk": one-time prekey X25519(32)], "sig": bytes(64)}

``sig`` is Ed25519 by ``ik`` over ``"dchat-prekey-bundle-v1" 0x00 ||
canonical(map without "sig")``, so every key, id and the expiry are covered.
Both medium-term prekeys (``spk`` and ``pq``) expire at ``exp``. Parsing is
strict and bounded; every structural problem, a bad signature and expiry all
raise :class:`InvalidBundleError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import BadSignatureError, InvalidKeyError
from ._keys import PublicKey, SigningKey, VerifyKey
from ._session_errors import InvalidBundleError
from ._xwing import XWingPublicKey

__all__ = ("MAX_PREKEY_ID", "PrekeyBundle", "bundle_body")

BUNDLE_DOMAIN: Final = b"dchat-prekey-bundle-v1\x00"
MAX_PREKEY_ID: Final = 2**32 - 1
_MAX_TIME: Final = 2**53  # seconds; keeps float comparisons with ``now`` exact
_VERSION: Final = 1
_FIELDS: Final = frozenset(
    {"v", "ik", "ek", "spk_id", "spk", "exp", "pq_id", "pq", "opk_id", "opk", "sig"}
)
_LIMITS: Final = DecodeLimits(max_size=2048, max_depth=1, max_items=32)


def bundle_body(
    *,
    identity_key: VerifyKey,
    static_key: PublicKey,
    signed_prekey_id: int,
    signed_prekey: PublicKey,
    expires_at: int,
    xwing_prekey_id: int,
    xwing_prekey: XWingPublicKey,
    one_time_prekey: tuple[int, PublicKey] | None,
) -> dict[str, Any]:
    """The signed part of a bundle, as a map for :func:`dchat_core.canonical_encode`."""
    body: dict[str, Any] = {
        "v": _VERSION,
        "ik": identity_key.to_bytes(),
        "ek": static_key.to_bytes(),
        "spk_id": signed_prekey_id,
        "spk": signed_prekey.to_bytes(),
        "exp": expires_at,
        "pq_id": xwing_prekey_id,
        "pq": xwing_prekey.to_bytes(),
    }
    if one_time_prekey is not None:
        body["opk_id"], body["opk"] = one_time_prekey[0], one_time_prekey[1].to_bytes()
    return body


def _check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PREKEY_ID:
        raise InvalidBundleError("prekey ids must be integers in 0..2**32-1")
    return value


@dataclass(frozen=True, slots=True)
class PrekeyBundle:
    """A published, signed set of public prekeys of one identity.

    Obtain one from :meth:`PrekeySecrets.bundle` (owner) or :meth:`from_bytes`
    (everyone else), then call :meth:`verify` before use. Verifying proves the
    keys belong to :attr:`identity_key`; whether that identity is the one you
    meant to reach is for the caller to check (e.g. against a contact card).

    Raises:
        InvalidBundleError: On construction, if a field has the wrong type or range.
    """

    VERSION: ClassVar[int] = _VERSION

    identity_key: VerifyKey
    static_key: PublicKey
    signed_prekey_id: int
    signed_prekey: PublicKey
    expires_at: int
    xwing_prekey_id: int
    xwing_prekey: XWingPublicKey
    one_time_prekey_id: int | None
    one_time_prekey: PublicKey | None
    signature: bytes

    def __post_init__(self) -> None:
        kinds = (
            (self.identity_key, VerifyKey),
            (self.static_key, PublicKey),
            (self.signed_prekey, PublicKey),
            (self.xwing_prekey, XWingPublicKey),
        )
        if any(not isinstance(value, kind) for value, kind in kinds):
            raise InvalidBundleError("prekey bundle keys have the wrong types")
        _check_id(self.signed_prekey_id)
        _check_id(self.xwing_prekey_id)
        if (self.one_time_prekey_id is None) != (self.one_time_prekey is None):
            raise InvalidBundleError("one-time prekey id and key must come together")
        if self.one_time_prekey_id is not None:
            _check_id(self.one_time_prekey_id)
            if not isinstance(self.one_time_prekey, PublicKey):
                raise InvalidBundleError("one-time prekey must be an X25519 public key")
        expires = self.expires_at
        if (
            isinstance(expires, bool)
            or not isinstance(expires, int)
            or not 0 <= expires <= _MAX_TIME
        ):
            raise InvalidBundleError("prekey bundle expiry is out of range")
        if (
            not isinstance(self.signature, bytes)
            or len(self.signature) != SigningKey.SIGNATURE_SIZE
        ):
            raise InvalidBundleError("prekey bundle signature must be 64 bytes")

    @property
    def one_time(self) -> tuple[int, PublicKey] | None:
        """``(id, key)`` of the one-time prekey, if the bundle carries one."""
        if self.one_time_prekey_id is None or self.one_time_prekey is None:
            return None
        return self.one_time_prekey_id, self.one_time_prekey

    def body(self) -> dict[str, Any]:
        """The signed part of the bundle as a canonical map (everything but ``sig``)."""
        return bundle_body(
            identity_key=self.identity_key,
            static_key=self.static_key,
            signed_prekey_id=self.signed_prekey_id,
            signed_prekey=self.signed_prekey,
            expires_at=self.expires_at,
            xwing_prekey_id=self.xwing_prekey_id,
            xwing_prekey=self.xwing_prekey,
            one_time_prekey=self.one_time,
        )

    def to_bytes(self) -> bytes:
        """Return the canonical encoding (the signed map plus ``sig``)."""
        return canonical_encode({**self.body(), "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> PrekeyBundle:
        """Parse a bundle strictly; does *not* check the signature (see :meth:`verify`).

        Raises:
            InvalidBundleError: If ``data`` is not exactly a well-formed bundle.
        """
        try:
            fields = Fields(canonical_decode(data, _LIMITS), "prekey bundle", _FIELDS)
            if fields.get_int("v") != _VERSION:
                raise InvalidBundleError("unsupported prekey bundle version")
            return cls._from_fields(fields)
        except (DecodeError, InvalidKeyError):
            raise InvalidBundleError("malformed prekey bundle") from None

    @classmethod
    def _from_fields(cls, fields: Fields) -> PrekeyBundle:
        one_time_id: int | None = None
        one_time: PublicKey | None = None
        if fields.has("opk_id") or fields.has("opk"):
            one_time_id = fields.get_int("opk_id", hi=MAX_PREKEY_ID)
            one_time = PublicKey(fields.get_bytes("opk", size=PublicKey.SIZE))
        return cls(
            identity_key=VerifyKey(fields.get_bytes("ik", size=VerifyKey.SIZE)),
            static_key=PublicKey(fields.get_bytes("ek", size=PublicKey.SIZE)),
            signed_prekey_id=fields.get_int("spk_id", hi=MAX_PREKEY_ID),
            signed_prekey=PublicKey(fields.get_bytes("spk", size=PublicKey.SIZE)),
            expires_at=fields.get_int("exp", hi=_MAX_TIME),
            xwing_prekey_id=fields.get_int("pq_id", hi=MAX_PREKEY_ID),
            xwing_prekey=XWingPublicKey(fields.get_bytes("pq", size=XWingPublicKey.SIZE)),
            one_time_prekey_id=one_time_id,
            one_time_prekey=one_time,
            signature=fields.get_bytes("sig", size=SigningKey.SIGNATURE_SIZE),
        )

    @classmethod
    def sign(
        cls,
        identity: SigningKey,
        *,
        static_key: PublicKey,
        signed_prekey: tuple[int, PublicKey],
        expires_at: int,
        xwing_prekey: tuple[int, XWingPublicKey],
        one_time_prekey: tuple[int, PublicKey] | None = None,
    ) -> PrekeyBundle:
        """Build and sign a bundle (normally via :meth:`PrekeySecrets.bundle`).

        Raises:
            InvalidBundleError: If an id or the expiry is out of range.
        """
        unsigned = cls(
            identity_key=identity.public_key,
            static_key=static_key,
            signed_prekey_id=signed_prekey[0],
            signed_prekey=signed_prekey[1],
            expires_at=expires_at,
            xwing_prekey_id=xwing_prekey[0],
            xwing_prekey=xwing_prekey[1],
            one_time_prekey_id=None if one_time_prekey is None else one_time_prekey[0],
            one_time_prekey=None if one_time_prekey is None else one_time_prekey[1],
            signature=bytes(SigningKey.SIGNATURE_SIZE),
        )
        signature = identity.sign(BUNDLE_DOMAIN + canonical_encode(unsigned.body()))
        return replace(unsigned, signature=signature)

    def verify(self, now: float) -> None:
        """Check the identity's signature and that the signed prekeys have not expired.

        Args:
            now: Current time, seconds since the Unix epoch.

        Raises:
            InvalidBundleError: If the signature is bad, the bundle expired
                (``now >= expires_at``) or ``now`` is not a finite number.
        """
        if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
            raise InvalidBundleError("now must be a finite number of seconds")
        try:
            self.identity_key.verify(self.signature, BUNDLE_DOMAIN + canonical_encode(self.body()))
        except BadSignatureError:
            raise InvalidBundleError("prekey bundle signature is invalid") from None
        if now >= self.expires_at:
            raise InvalidBundleError("prekey bundle has expired")
