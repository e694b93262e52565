"""RSA blind signatures, RFC 9474 (RSABSSA-SHA384): Prepare, Blind, BlindSign, Finalize, Verify.

Theory of operation
-------------------
The client encodes its (prepared) message with EMSA-PSS, multiplies it by
``r**e`` for a random ``r`` and sends the product: the signer sees a uniformly
random number modulo ``n``. The signer returns its raw RSA signature of that
number; the client multiplies by ``r**-1`` and holds an ordinary RSASSA-PSS
signature of its message, which it checks with ``cryptography``'s standard
PSS verification. The signer cannot link the final signature to the blinded
message it signed.

``cryptography`` has no raw (unpadded) RSA operation, so the three raw
steps use Python's ``pow`` on the key's numbers. The private operation is
itself base-blinded (a fresh random factor per call) because ``pow`` is not
constant time and its input is chosen by the client; and, as the RFC asks,
the signer checks its result against the public key before returning it, so a
faulty computation never leaks a factor of ``n``.

The four variants of RFC 9474 section 5 are offered: ``PSS`` (48-byte salt)
or ``PSSZERO`` (no salt), each ``Randomized`` (Prepare adds a 32-byte random
prefix) or ``Deterministic``. The RFC's vectors pin the random values;
``prepare`` and ``blind`` take them through keyword parameters named
``_test_*`` that only tests use.
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ._blind_errors import BlindInputError, BlindSignatureError, BlindSigningFaultError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = (
    "Blinded",
    "BlindVariant",
    "blind",
    "blind_sign",
    "finalize",
    "prepare",
    "verify",
)

_HLEN: Final = 48  # SHA-384
_PREFIX_LEN: Final = 32
MIN_MODULUS_BITS: Final = 2048
MAX_MODULUS_BITS: Final = 8192


class BlindVariant(enum.Enum):
    """The RFC 9474 section 5 variants (all with SHA-384 and MGF1-SHA-384)."""

    PSS_RANDOMIZED = ("RSABSSA-SHA384-PSS-Randomized", 48, True)
    PSSZERO_RANDOMIZED = ("RSABSSA-SHA384-PSSZERO-Randomized", 0, True)
    PSS_DETERMINISTIC = ("RSABSSA-SHA384-PSS-Deterministic", 48, False)
    PSSZERO_DETERMINISTIC = ("RSABSSA-SHA384-PSSZERO-Deterministic", 0, False)

    def __init__(self, label: str, salt_length: int, randomized: bool) -> None:
        self.label = label
        self.salt_length = salt_length
        self.randomized = randomized


@dataclass(frozen=True, slots=True)
class Blinded:
    """Blind's output: the message for the signer, and the secret unblinding inverse."""

    message: bytes
    inverse: bytes = field(repr=False)


def _modulus(key: rsa.RSAPublicKey) -> tuple[int, int, int]:
    numbers = key.public_numbers()
    bits = numbers.n.bit_length()
    if not MIN_MODULUS_BITS <= bits <= MAX_MODULUS_BITS:
        raise BlindInputError("RSA modulus size outside the supported range")
    return numbers.n, numbers.e, (bits + 7) // 8


def _mgf1(seed: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha384(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


def _emsa_pss_encode(message: bytes, em_bits: int, salt: bytes) -> bytes:
    """EMSA-PSS-ENCODE (RFC 8017 section 9.1.1) with SHA-384 and MGF1-SHA-384."""
    em_len = (em_bits + 7) // 8
    if em_len < _HLEN + len(salt) + 2:
        raise BlindInputError("RSA modulus too small for this encoding")
    m_hash = hashlib.sha384(message).digest()
    h = hashlib.sha384(bytes(8) + m_hash + salt).digest()
    db = bytes(em_len - len(salt) - _HLEN - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, _mgf1(h, len(db)), strict=True))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    return bytes(masked) + h + b"\xbc"


def prepare(message: bytes, variant: BlindVariant, *, _test_prefix: bytes | None = None) -> bytes:
    """Prepare (RFC 9474 section 4.1): a random 32-byte prefix for the randomized variants."""
    if not variant.randomized:
        return bytes(message)
    prefix = os.urandom(_PREFIX_LEN) if _test_prefix is None else _test_prefix
    return prefix + message


def blind(
    public_key: rsa.RSAPublicKey,
    prepared: bytes,
    variant: BlindVariant,
    *,
    _test_salt: bytes | None = None,
    _test_r: int | None = None,
) -> Blinded:
    """Blind (RFC 9474 section 4.2).

    Raises:
        BlindInputError: the key size is unsupported or the encoded message is not invertible.
    """
    n, e, size = _modulus(public_key)
    salt = os.urandom(variant.salt_length) if _test_salt is None else _test_salt
    encoded = _emsa_pss_encode(prepared, n.bit_length() - 1, salt)
    m = int.from_bytes(encoded, "big")
    r = 1 + secrets.randbelow(n - 1) if _test_r is None else _test_r
    try:
        # pow(., -1, n) fails exactly when the value shares a factor with n.
        pow(m, -1, n)
        inverse = pow(r, -1, n)
    except ValueError:
        raise BlindInputError("message or blind not invertible modulo n") from None
    z = m * pow(r, e, n) % n
    return Blinded(z.to_bytes(size, "big"), inverse.to_bytes(size, "big"))


def blind_sign(private_key: rsa.RSAPrivateKey, blinded_message: bytes) -> bytes:
    """BlindSign (RFC 9474 section 4.3), checking its own result before returning it.

    Raises:
        BlindInputError: the blinded message has the wrong length or is not below ``n``.
        BlindSigningFaultError: the computed signature did not verify (a fault).
    """
    n, e, size = _modulus(private_key.public_key())
    if len(blinded_message) != size:
        raise BlindInputError("blinded message has the wrong length")
    m = int.from_bytes(blinded_message, "big")
    if m >= n:
        raise BlindInputError("blinded message out of range")
    s = _rsasp1(private_key, m, n, e)
    if pow(s, e, n) != m:
        raise BlindSigningFaultError
    return s.to_bytes(size, "big")


def _rsasp1(private_key: rsa.RSAPrivateKey, m: int, n: int, e: int) -> int:
    """RSASP1 by CRT, base-blinded: ``((m * b**e) ** d) * b**-1``."""
    numbers = private_key.private_numbers()
    while True:
        b = 2 + secrets.randbelow(n - 3)
        try:
            b_inv = pow(b, -1, n)
        except ValueError:  # pragma: no cover - b shares a factor with n
            continue
        break
    c = m * pow(b, e, n) % n
    p, q = numbers.p, numbers.q
    s1 = pow(c % p, numbers.dmp1, p)
    s2 = pow(c % q, numbers.dmq1, q)
    h = numbers.iqmp * (s1 - s2) % p
    return (s2 + h * q) * b_inv % n


def finalize(
    public_key: rsa.RSAPublicKey,
    prepared: bytes,
    blind_signature: bytes,
    blinded: Blinded,
    variant: BlindVariant,
) -> bytes:
    """Finalize (RFC 9474 section 4.4): unblind, then verify the result.

    Raises:
        BlindSignatureError: the blind signature has the wrong size or does not unblind
            to a valid signature of ``prepared``.
    """
    n, _, size = _modulus(public_key)
    if len(blind_signature) != size or len(blinded.inverse) != size:
        raise BlindSignatureError
    z = int.from_bytes(blind_signature, "big")
    if z >= n:
        raise BlindSignatureError
    signature = (z * int.from_bytes(blinded.inverse, "big") % n).to_bytes(size, "big")
    verify(public_key, prepared, signature, variant)
    return signature


def verify(
    public_key: rsa.RSAPublicKey, prepared: bytes, signature: bytes, variant: BlindVariant
) -> None:
    """Verify (RFC 9474 section 4.5): standard RSASSA-PSS verification by ``cryptography``.

    Raises:
        BlindSignatureError: the signature is not valid for ``prepared`` under ``public_key``.
    """
    _modulus(public_key)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=variant.salt_length)
    try:
        public_key.verify(signature, prepared, pss, hashes.SHA384())
    except InvalidSignature:
        raise BlindSignatureError from None
