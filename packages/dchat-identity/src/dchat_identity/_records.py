"""Shared plumbing for signed records: hashing, signing, strict decoding, time.

Every signed record in this package is a canonical map (see
:mod:`dchat_core`); the signature covers ``domain || canonical(fields without
"sig")`` where ``domain`` is a per-record tag ending in ``0x00``, so a
signature made for one kind of record never verifies as another. Record
hashes are BLAKE2b-256 with a per-kind personalisation, for the same reason.

Times on the wire are integer milliseconds since the Unix epoch; the public
API takes ``now`` as float seconds, the way :class:`dchat_core.Clock` gives it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    InvalidIdError,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import BadSignatureError, InvalidKeyError, SigningKey, VerifyKey

from ._errors import ForgedRecordError, MalformedRecordError

__all__ = (
    "Rng",
    "check_version",
    "decode_fields",
    "default_rng",
    "record_hash",
    "sign_fields",
    "strict",
    "to_ms",
    "verify_fields",
)

Rng: TypeAlias = Callable[[int], bytes]
"""A source of random bytes: ``rng(n)`` returns ``n`` bytes (``os.urandom`` by default)."""

default_rng: Rng = os.urandom


def to_ms(now: float) -> int:
    """Seconds (float, as :meth:`dchat_core.Clock.now` returns) to integer milliseconds."""
    return int(now * 1000)


def record_hash(person: bytes, data: bytes) -> bytes:
    """BLAKE2b-256 of ``data`` personalised with ``person`` (at most 16 bytes)."""
    return hashlib.blake2b(data, digest_size=32, person=person).digest()


def sign_fields(key: SigningKey, domain: bytes, fields: dict[str, Any]) -> bytes:
    """Sign ``domain || canonical(fields)`` with ``key``."""
    return key.sign(domain + canonical_encode(fields))


def verify_fields(key: VerifyKey, domain: bytes, fields: dict[str, Any], signature: bytes) -> None:
    """Check a signature made by :func:`sign_fields`.

    Raises:
        ForgedRecordError: the signature does not verify (opaque).
    """
    try:
        key.verify(signature, domain + canonical_encode(fields))
    except BadSignatureError:
        raise ForgedRecordError from None


def decode_fields(
    data: bytes, what: str, allowed: frozenset[str | int], limits: DecodeLimits
) -> Fields:
    """Strictly decode one canonical map of the fields ``allowed``.

    Raises:
        MalformedRecordError: not canonical CBOR within ``limits``, or not such a map.
    """
    try:
        return Fields(canonical_decode(data, limits), what, allowed)
    except DecodeError as exc:
        raise MalformedRecordError(f"malformed {what}: {exc}") from None


@contextmanager
def strict(what: str) -> Iterator[None]:
    """Translate field, key and id errors raised while building a record.

    Only errors that mean "these bytes are not a valid record" are translated;
    the package's own typed errors (expiry, forgery, ...) pass through.
    """
    try:
        yield
    except (DecodeError, InvalidKeyError, InvalidIdError) as exc:
        raise MalformedRecordError(f"malformed {what}: {exc}") from None


def check_version(fields: Fields, what: str, version: int = 1) -> None:
    """Reject any record format version other than ``version``."""
    if fields.get_int("v") != version:
        raise MalformedRecordError(f"unsupported {what} version")
