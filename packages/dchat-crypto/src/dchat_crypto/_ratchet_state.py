"""Mutable Double Ratchet state, its skipped-key store, and their storage encoding.

The state is the one of the Signal specification (``DHs, DHr, RK, CKs, CKr,
HKs, HKr, NHKs, NHKr, Ns, Nr, PN, MKSKIPPED``) plus what dchat adds: when the
sending chain started and whether the peer asked for a reply (rotation).

Storage encoding (version 1) is the canonical CBOR map::

    {"v": 1, "ad": AD, "dhs": 32B, "dhr": 32B|null, "rk": 32B,
     "cks": 32B|null, "ckr": 32B|null, "hks": 32B|null, "hkr": 32B|null,
     "nhks": 32B, "nhkr": 32B, "ns": uint, "nr": uint, "pn": uint,
     "t0": float64-be 8B, "reply": bool, "skipped": bytes,
     "policy": [max_skip, max_stored_skipped, rotate_messages|null, rotate_seconds 8B|null]}

``skipped`` packs the skipped message keys oldest first, 68 bytes each:
``header_key (32) || N (4) || message_key (32)``. Decoding is strict: any
missing or extra field, wrong type or length, out-of-range or inconsistent
value raises :class:`RatchetFormatError`, and a decoded state re-encodes to the
same bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode

from ._errors import InvalidKeyError
from ._keys import PrivateKey, PublicKey
from ._ratchet_types import (
    MAX_STORED_SKIPPED_LIMIT,
    RatchetArgumentError,
    RatchetFormatError,
    RatchetPolicy,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("MAX_SKIPPED_CHAINS", "ChainState", "SkippedKeys", "decode_state", "encode_state")

MAX_SKIPPED_CHAINS: Final = 64
"""Most distinct receiving chains with stored skipped keys.

Every stored chain costs one trial header decryption for a message that opens
under neither current header key, so this bounds the work any (even forged)
message can cause. Beyond it, the oldest chain's keys are evicted.
"""

_STATE_VERSION: Final = 1
_ENTRY: Final = struct.Struct(">32sI32s")
_FLOAT: Final = struct.Struct(">d")
_MAX_U32: Final = 2**32 - 1
_MAX_AD: Final = 1 << 16
_LIMITS: Final = DecodeLimits(
    max_size=_MAX_AD + MAX_STORED_SKIPPED_LIMIT * _ENTRY.size + 4096, max_depth=4, max_items=64
)
_KEYS: Final = frozenset(
    [
        "v",
        "ad",
        "dhs",
        "dhr",
        "rk",
        "cks",
        "ckr",
        "hks",
        "hkr",
        "nhks",
        "nhkr",
        "ns",
        "nr",
        "pn",
        "t0",
        "reply",
        "skipped",
        "policy",
    ]
)


@dataclass(slots=True)
class ChainState:
    """The scalar part of the ratchet state; copied before a tentative update."""

    dhs: PrivateKey
    dhs_public: bytes
    dhr: PublicKey | None
    rk: bytes
    cks: bytes | None
    ckr: bytes | None
    hks: bytes | None
    hkr: bytes | None
    nhks: bytes
    nhkr: bytes
    ns: int
    nr: int
    pn: int
    sending_since: float
    reply_needed: bool

    def copy(self) -> ChainState:
        """Return a shallow copy (all fields are immutable values)."""
        return ChainState(
            self.dhs,
            self.dhs_public,
            self.dhr,
            self.rk,
            self.cks,
            self.ckr,
            self.hks,
            self.hkr,
            self.nhks,
            self.nhkr,
            self.ns,
            self.nr,
            self.pn,
            self.sending_since,
            self.reply_needed,
        )


class SkippedKeys:
    """Message keys of skipped messages, keyed by ``(header_key, N)``, oldest first."""

    __slots__ = ("_chains", "_keys", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._keys: dict[tuple[bytes, int], bytes] = {}
        self._chains: dict[bytes, int] = {}  # header key -> number of stored keys

    def __len__(self) -> int:
        return len(self._keys)

    def copy(self) -> SkippedKeys:
        """An independent copy (same keys, same order, same limit)."""
        twin = SkippedKeys(self._limit)
        twin._keys, twin._chains = dict(self._keys), dict(self._chains)
        return twin

    def header_keys(self) -> list[bytes]:
        """The distinct header keys with stored message keys, oldest chain first."""
        return list(self._chains)

    def get(self, header_key: bytes, number: int) -> bytes | None:
        """Return the stored message key, or ``None``."""
        return self._keys.get((header_key, number))

    def items(self) -> Iterator[tuple[tuple[bytes, int], bytes]]:
        """Iterate over ``((header_key, N), message_key)``, oldest first."""
        return iter(self._keys.items())

    def remove(self, header_key: bytes, number: int) -> None:
        """Delete one key (after it decrypted its message)."""
        del self._keys[header_key, number]
        self._forget_one(header_key)

    def add(self, entries: list[tuple[bytes, int, bytes]]) -> None:
        """Store new keys, then evict the oldest beyond the limits."""
        for header_key, number, message_key in entries:
            self._keys[header_key, number] = message_key
            self._chains[header_key] = self._chains.get(header_key, 0) + 1
        while len(self._keys) > self._limit or len(self._chains) > MAX_SKIPPED_CHAINS:
            oldest = next(iter(self._keys))
            del self._keys[oldest]
            self._forget_one(oldest[0])

    def _forget_one(self, header_key: bytes) -> None:
        left = self._chains[header_key] - 1
        if left:
            self._chains[header_key] = left
        else:
            del self._chains[header_key]


def encode_state(
    state: ChainState, skipped: SkippedKeys, policy: RatchetPolicy, associated_data: bytes
) -> bytes:
    """Encode a whole session state (see the module docstring)."""
    packed = b"".join(_ENTRY.pack(hk, n, mk) for (hk, n), mk in skipped.items())
    seconds = policy.rotate_after_seconds
    return canonical_encode(
        {
            "v": _STATE_VERSION,
            "ad": associated_data,
            "dhs": state.dhs.to_bytes(),
            "dhr": None if state.dhr is None else state.dhr.to_bytes(),
            "rk": state.rk,
            "cks": state.cks,
            "ckr": state.ckr,
            "hks": state.hks,
            "hkr": state.hkr,
            "nhks": state.nhks,
            "nhkr": state.nhkr,
            "ns": state.ns,
            "nr": state.nr,
            "pn": state.pn,
            "t0": _FLOAT.pack(state.sending_since),
            "reply": state.reply_needed,
            "skipped": packed,
            "policy": [
                policy.max_skip,
                policy.max_stored_skipped,
                policy.rotate_after_messages,
                None if seconds is None else _FLOAT.pack(seconds),
            ],
        }
    )


def decode_state(data: bytes) -> tuple[ChainState, SkippedKeys, RatchetPolicy, bytes]:
    """Decode :func:`encode_state` output strictly.

    Raises:
        RatchetFormatError: If ``data`` is not a valid encoded state.
    """
    try:
        fields = canonical_decode(data, _LIMITS)
    except DecodeError as exc:
        raise RatchetFormatError(f"ratchet state is not canonical CBOR: {exc}") from None
    if not isinstance(fields, dict) or set(fields) != _KEYS:
        raise RatchetFormatError("ratchet state has missing or unknown fields")
    if fields["v"] != _STATE_VERSION or isinstance(fields["v"], bool):
        raise RatchetFormatError("unknown ratchet state version")
    try:
        policy = _decode_policy(fields["policy"])
        state = _decode_chains(fields)
    except (InvalidKeyError, RatchetArgumentError):
        raise RatchetFormatError("ratchet state holds an invalid key or policy") from None
    associated_data = _typed(fields, "ad", bytes)
    if len(associated_data) > _MAX_AD:
        raise RatchetFormatError("associated data too long")
    skipped = _decode_skipped(_typed(fields, "skipped", bytes), policy.max_stored_skipped)
    return state, skipped, policy, associated_data


def _typed(fields: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = fields[name]
    if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
        raise RatchetFormatError(f"ratchet state field {name!r} has the wrong type")
    return value


def _key(fields: dict[str, Any], name: str, *, optional: bool = False) -> bytes | None:
    value = fields[name]
    if value is None and optional:
        return None
    if not isinstance(value, bytes) or len(value) != 32:
        raise RatchetFormatError(f"ratchet state field {name!r} must be 32 bytes")
    return value


def _counter(fields: dict[str, Any], name: str) -> int:
    value: int = _typed(fields, name, int)
    if not 0 <= value <= _MAX_U32:
        raise RatchetFormatError(f"ratchet state counter {name!r} out of range")
    return value


def _float(raw: object) -> float:
    if not isinstance(raw, bytes) or len(raw) != _FLOAT.size:
        raise RatchetFormatError("ratchet state float must be 8 bytes")
    (value,) = _FLOAT.unpack(raw)
    if not math.isfinite(value):
        raise RatchetFormatError("ratchet state float must be finite")
    return float(value)


def _decode_policy(raw: object) -> RatchetPolicy:
    if not isinstance(raw, list) or len(raw) != 4:
        raise RatchetFormatError("ratchet policy must be a 4-item list")
    max_skip, max_stored, messages, seconds = raw
    return RatchetPolicy(
        max_skip=max_skip,
        max_stored_skipped=max_stored,
        rotate_after_messages=messages,
        rotate_after_seconds=None if seconds is None else _float(seconds),
    )


def _decode_chains(fields: dict[str, Any]) -> ChainState:
    dhs = PrivateKey(_key(fields, "dhs") or b"")
    dhr_raw = _key(fields, "dhr", optional=True)
    cks, ckr = _key(fields, "cks", optional=True), _key(fields, "ckr", optional=True)
    hks, hkr = _key(fields, "hks", optional=True), _key(fields, "hkr", optional=True)
    # Sending needs the peer's key, a chain and a header key together; receiving
    # needs a chain and a header key together. Anything else is not a real state.
    if not (cks is None) == (hks is None) == (dhr_raw is None) or (ckr is None) != (hkr is None):
        raise RatchetFormatError("ratchet state chains are inconsistent")
    if ckr is not None and cks is None:
        raise RatchetFormatError("ratchet state chains are inconsistent")
    return ChainState(
        dhs=dhs,
        dhs_public=dhs.public_key.to_bytes(),
        dhr=None if dhr_raw is None else PublicKey(dhr_raw),
        rk=_key(fields, "rk") or b"",
        cks=cks,
        ckr=ckr,
        hks=hks,
        hkr=hkr,
        nhks=_key(fields, "nhks") or b"",
        nhkr=_key(fields, "nhkr") or b"",
        ns=_counter(fields, "ns"),
        nr=_counter(fields, "nr"),
        pn=_counter(fields, "pn"),
        sending_since=_float(fields["t0"]),
        reply_needed=_typed(fields, "reply", bool),
    )


def _decode_skipped(packed: bytes, limit: int) -> SkippedKeys:
    if len(packed) % _ENTRY.size or len(packed) // _ENTRY.size > limit:
        raise RatchetFormatError("ratchet state skipped keys malformed or over the limit")
    entries = list(_ENTRY.iter_unpack(packed))
    skipped = SkippedKeys(limit)
    skipped.add(entries)
    if len(skipped) != len(entries):
        raise RatchetFormatError("ratchet state has duplicate or too many skipped keys")
    return skipped
