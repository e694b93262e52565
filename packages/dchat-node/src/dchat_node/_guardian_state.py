"""Small sealed-at-rest maps the guardian and recovery services keep.

Each map is one settings blob (``UserService.state_put``, sealed at rest):
canonical CBOR of ``{key as hex text: [bytes | str | int, ...]}``. Decoding is
bounded; a blob that does not decode is reported as corrupt state rather than
silently replaced, so nothing a guardian holds is lost to a bug.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dchat_core import DchatError, DecodeLimits, canonical_decode, canonical_encode

from ._errors import NodeStateError

if TYPE_CHECKING:
    from ._user_service import UserService

__all__ = ("Entry", "entry_bytes", "entry_int", "entry_str", "load_map", "store_map")

Entry = list[bytes | str | int]
_LIMITS: Final = DecodeLimits(max_size=4 << 20, max_depth=3, max_items=1 << 16)


async def load_map(user: UserService, key: str) -> dict[bytes, Entry]:
    """The map stored under ``key`` (empty if none)."""
    stored = await user.state_get(key)
    if stored is None:
        return {}
    try:
        value = canonical_decode(stored, _LIMITS)
    except DchatError:
        raise NodeStateError("corrupt_state", f"the stored {key} is malformed") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in value.items()
    ):
        raise NodeStateError("corrupt_state", f"the stored {key} is malformed")
    try:
        return {bytes.fromhex(k): v for k, v in value.items()}
    except ValueError:
        raise NodeStateError("corrupt_state", f"the stored {key} is malformed") from None


async def store_map(user: UserService, key: str, value: dict[bytes, Entry]) -> None:
    """Durably replace the map under ``key``."""
    await user.state_put(key, canonical_encode({k.hex(): v for k, v in value.items()}))


def entry_bytes(entry: Entry, index: int) -> bytes:
    """Field ``index`` of a stored entry, which must be bytes."""
    value = entry[index] if index < len(entry) else None
    if not isinstance(value, bytes):
        raise NodeStateError("corrupt_state", "a stored guardian entry is malformed")
    return value


def entry_int(entry: Entry, index: int) -> int:
    """Field ``index`` of a stored entry, which must be an integer."""
    value = entry[index] if index < len(entry) else None
    if not isinstance(value, int):
        raise NodeStateError("corrupt_state", "a stored guardian entry is malformed")
    return value


def entry_str(entry: Entry, index: int) -> str:
    """Field ``index`` of a stored entry, which must be text."""
    value = entry[index] if index < len(entry) else None
    if not isinstance(value, str):
        raise NodeStateError("corrupt_state", "a stored guardian entry is malformed")
    return value
