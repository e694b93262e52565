"""Public handles (``@name``): the naming rule, the look-alike key and the work a name costs.

Theory of operation. A handle is typed by people, so two handles that a
person could mistake for one another must never both be live. The rule has
three steps, all pure functions of the text:

1. :func:`normalize_handle`: strip one leading ``@``, lower-case ASCII
   letters, and refuse everything else outside ``a-z 0-9 -``. Non-ASCII text
   is refused rather than mapped: there is no safe way to fold the scripts of
   the world (a Cyrillic ``a``, U+0430, beside the Latin one), and refusing keeps the rule
   short enough to state. A hyphen separates words; it may not lead, trail or
   repeat. Length 3 to 32.
2. :func:`handle_skeleton`: fold the ASCII look-alikes that remain (``0``->``o``,
   ``1`` and ``i``->``l``, ``rn``->``m``, ``vv``->``w``, ``cl``->``d``) and drop
   hyphens. The chain keys handles by skeleton (``handle/<skeleton>``), so
   ``alice``, ``a1ice`` and ``a-lice`` are one slot: whoever holds one blocks
   the others. The record keeps the exact name; a lookup of a name that is not
   the record's own is *not registered* (no one gets ``alice`` by typing
   ``a1ice``).
3. :func:`handle_work_bits`: the proof of work a registration costs, the chain
   parameter ``handle_pow_bits`` plus two bits (four times the work) for each
   character under six, because short names are scarce.

The proof of work is bound to the chain, the normalised name, the
registering identity and the term it opens (0 for a registration, the current
expiry height for a renewal: :func:`handle_pow_ok`), so work done for one
name, identity, chain or term is worth nothing for another. Holding a name
therefore costs its work once per term.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from ._errors import ChainArgumentError

__all__ = (
    "HANDLE_POW_DOMAIN",
    "MAX_HANDLE",
    "MIN_HANDLE",
    "InvalidHandleError",
    "handle_pow_ok",
    "handle_skeleton",
    "handle_work_bits",
    "normalize_handle",
    "solve_handle_pow",
)

HANDLE_POW_DOMAIN: Final = b"dchat-handle-pow-v1\x00"
MIN_HANDLE: Final = 3
MAX_HANDLE: Final = 32
_SHORT: Final = 6  # names shorter than this cost extra work
_NAME: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_FOLDS: Final = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"), ("i", "l"))


class InvalidHandleError(ChainArgumentError):
    """A handle breaks the naming rule (charset, length, hyphens)."""


def normalize_handle(text: str) -> str:
    """The canonical form of a typed handle (``@Alice`` -> ``alice``).

    Raises:
        InvalidHandleError: The text cannot be a handle.
    """
    if not isinstance(text, str) or len(text) > MAX_HANDLE + 1:
        raise InvalidHandleError(f"a handle is {MIN_HANDLE}-{MAX_HANDLE} characters")
    name = text.removeprefix("@")
    if not name.isascii():
        raise InvalidHandleError("a handle is ASCII letters, digits and hyphens only")
    name = name.lower()
    if not MIN_HANDLE <= len(name) <= MAX_HANDLE:
        raise InvalidHandleError(f"a handle is {MIN_HANDLE}-{MAX_HANDLE} characters")
    if not _NAME.fullmatch(name):
        raise InvalidHandleError(
            "a handle is letters a-z, digits and single inner hyphens (no leading or "
            "trailing hyphen)"
        )
    return name


def handle_skeleton(name: str) -> str:
    """The look-alike key of a normalised ``name`` (the chain's slot for it)."""
    folded = name.replace("-", "")
    for pair, single in _FOLDS:
        folded = folded.replace(pair, single)
    return folded


def handle_work_bits(base: int, name: str) -> int:
    """The proof-of-work bits registering ``name`` costs when the chain asks ``base``."""
    return min(64, base + 2 * max(0, _SHORT - len(name)))


def _digest(chain_id: str, name: str, term: int, identity: bytes, nonce: bytes) -> int:
    data = HANDLE_POW_DOMAIN + chain_id.encode() + b"\x00" + name.encode() + b"\x00"
    data += term.to_bytes(8, "big") + identity + nonce
    return int.from_bytes(hashlib.sha256(data).digest(), "big")


def handle_pow_ok(
    chain_id: str, name: str, identity: bytes, nonce: bytes, bits: int, term: int = 0
) -> bool:
    """Whether ``nonce`` proves ``bits`` bits of work for ``identity`` taking ``name``.

    ``term`` is 0 for a registration and the current expiry height for a
    renewal, so each renewal needs fresh work.
    """
    if not bits:
        return True
    return _digest(chain_id, name, term, identity, nonce) >> (256 - bits) == 0


def solve_handle_pow(chain_id: str, name: str, identity: bytes, bits: int, term: int = 0) -> bytes:
    """Find a proof for :func:`handle_pow_ok` (about ``2**bits`` hashes: off the event loop)."""
    counter = 0
    while not handle_pow_ok(chain_id, name, identity, counter.to_bytes(8, "big"), bits, term):
        counter += 1
    return counter.to_bytes(8, "big")
