"""SLIP-0039 Shamir shares, through ``shamir-mnemonic`` (the reference implementation).

We use SLIP-0039 rather than our own Shamir code: its shares are words a
guardian can write down, they carry a checksum (RS1024) that catches a typo
or a share from another set, and the digest share lets a combination detect
a wrong share instead of silently returning garbage. Only one group is used
(``M``-of-``N`` members). Share randomness comes from the library
(``secrets.token_bytes``), which is not a parameter we can pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import shamir_mnemonic  # type: ignore[import-untyped]

from ._errors import IdentityArgumentError, InvalidShareError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("MAX_SHARES", "combine_shares", "split_secret")

MAX_SHARES = 16
_ITERATION_EXPONENT = 0  # the secret is 256 random bits: no passphrase to stretch


def split_secret(secret: bytes, threshold: int, count: int) -> list[str]:
    """Split ``secret`` (16-32 bytes, even length) into ``count`` SLIP-0039 mnemonics.

    Raises:
        IdentityArgumentError: unsupported sizes or not ``2 <= threshold <= count <= 16``.
    """
    if not isinstance(secret, bytes) or len(secret) not in (16, 32):
        raise IdentityArgumentError("a recovery secret is 16 or 32 bytes")
    for value in (threshold, count):
        if isinstance(value, bool) or not isinstance(value, int):
            raise IdentityArgumentError("threshold and count are integers")
    if not 2 <= threshold <= count <= MAX_SHARES:
        raise IdentityArgumentError("need 2 <= threshold <= guardians <= 16")
    groups = shamir_mnemonic.generate_mnemonics(
        1, [(threshold, count)], secret, b"", True, _ITERATION_EXPONENT
    )
    return [str(words) for words in cast("list[list[str]]", groups)[0]]


def combine_shares(mnemonics: Sequence[str], passphrase: bytes = b"") -> bytes:
    """Recover the secret from exactly the threshold number of SLIP-0039 mnemonics.

    As in the reference implementation, more shares than the threshold is an
    error too (the caller picks which ones to use).

    Raises:
        InvalidShareError: too few, mismatched, mistyped or corrupt shares.
    """
    if not all(isinstance(m, str) and len(m) <= 1024 for m in mnemonics):
        raise InvalidShareError("shares are SLIP-0039 mnemonics")
    try:
        secret = shamir_mnemonic.combine_mnemonics(list(mnemonics), passphrase)
    except (shamir_mnemonic.MnemonicError, ValueError):
        # The library's message quotes share words: never let them reach a log.
        raise InvalidShareError("the recovery shares do not combine") from None
    return bytes(cast("bytes", secret))
