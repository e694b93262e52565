"""The small keyed maps guardian and recovery agents keep between calls.

An agent's state is a few maps, each stored by the caller as one blob (the
node seals it at rest): canonical CBOR of ``{key as hex text: [bytes | str |
int, ...]}``. Decoding is bounded and strict; a blob that does not decode is
reported as corrupt state (:class:`RecoveryStateError` with code
``corrupt_state``) rather than silently replaced, so nothing a guardian holds
is lost to a bug.
"""

from __future__ import annotations

from typing import Final, TypeAlias

from dchat_core import DchatError, DecodeLimits, canonical_decode, canonical_encode

from ._errors import RecoveryStateError

__all__ = (
    "Entry",
    "EntryMap",
    "decode_map",
    "encode_map",
    "entry_bytes",
    "entry_int",
    "entry_str",
)

Entry: TypeAlias = list[bytes | str | int]
EntryMap: TypeAlias = dict[bytes, Entry]
_LIMITS: Final = DecodeLimits(max_size=4 << 20, max_depth=3, max_items=1 << 16)


def decode_map(stored: bytes | None, what: str) -> EntryMap:
    """The map a blob holds (empty for ``None``).

    Raises:
        RecoveryStateError: ``corrupt_state``, the blob is not such a map.
    """
    if stored is None:
        return {}
    corrupt = RecoveryStateError("corrupt_state", f"the stored {what} is malformed")
    try:
        value = canonical_decode(stored, _LIMITS)
    except DchatError:
        raise corrupt from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in value.items()
    ):
        raise corrupt
    try:
        return {bytes.fromhex(k): v for k, v in value.items()}
    except ValueError:
        raise corrupt from None


def encode_map(value: EntryMap) -> bytes:
    """The blob to store for ``value``."""
    return canonical_encode({k.hex(): v for k, v in value.items()})


def _at(entry: Entry, index: int) -> object:
    return entry[index] if index < len(entry) else None


def _corrupt_entry() -> RecoveryStateError:
    return RecoveryStateError("corrupt_state", "a stored guardian entry is malformed")


def entry_bytes(entry: Entry, index: int) -> bytes:
    """Field ``index`` of a stored entry, which must be bytes."""
    value = _at(entry, index)
    if not isinstance(value, bytes):
        raise _corrupt_entry()
    return value


def entry_int(entry: Entry, index: int) -> int:
    """Field ``index`` of a stored entry, which must be an integer."""
    value = _at(entry, index)
    if not isinstance(value, int):
        raise _corrupt_entry()
    return value


def entry_str(entry: Entry, index: int) -> str:
    """Field ``index`` of a stored entry, which must be text."""
    value = _at(entry, index)
    if not isinstance(value, str):
        raise _corrupt_entry()
    return value
