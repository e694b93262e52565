"""``SessionInit``: the single message that starts a session with an offline identity.

Wire form (canonical map, ``docs/protocol.md`` "Session setup")::

    {"v": 1, "spk_id": u32, "pq_id": u32, ["opk_id": u32],
     "ct": X-Wing ciphertext(1120), "hs": Noise handshake message(80..1024)}

Parsing is strict and bounded; any malformed input raises
:class:`InvalidSessionInitError`. Whether the message is *authentic* is only
known once :func:`accept_session` has run the handshake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._prekeys import MAX_PREKEY_ID
from ._session_errors import InvalidSessionInitError
from ._xwing import XWingPublicKey

__all__ = ("SessionInit",)

_VERSION: Final = 1
_FIELDS: Final = frozenset({"v", "spk_id", "pq_id", "opk_id", "ct", "hs"})
_LIMITS: Final = DecodeLimits(max_size=4096, max_depth=1, max_items=16)
# e (32) + encrypted static key (32 + 16) is the least a Noise X message holds.
_MIN_HANDSHAKE: Final = 80
_MAX_HANDSHAKE: Final = 1024


def _is_id(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= MAX_PREKEY_ID


@dataclass(frozen=True, slots=True)
class SessionInit:
    """The first message of a session: prekey ids, X-Wing ciphertext, Noise message.

    Attributes:
        signed_prekey_id: Id of the responder's signed prekey it was made for.
        xwing_prekey_id: Id of the responder's X-Wing prekey.
        one_time_prekey_id: Id of the one-time prekey used, if the bundle had one.
        xwing_ciphertext: The X-Wing encapsulation (1120 bytes).
        handshake: The Noise ``Xpsk0`` message.

    Raises:
        InvalidSessionInitError: On construction, if a field is out of range.
    """

    VERSION: ClassVar[int] = _VERSION

    signed_prekey_id: int
    xwing_prekey_id: int
    one_time_prekey_id: int | None
    xwing_ciphertext: bytes
    handshake: bytes

    def __post_init__(self) -> None:
        ids_ok = _is_id(self.signed_prekey_id) and _is_id(self.xwing_prekey_id)
        if not ids_ok or not (self.one_time_prekey_id is None or _is_id(self.one_time_prekey_id)):
            raise InvalidSessionInitError("SessionInit prekey ids must be in 0..2**32-1")
        ciphertext, handshake = self.xwing_ciphertext, self.handshake
        if not isinstance(ciphertext, bytes) or len(ciphertext) != XWingPublicKey.CIPHERTEXT_SIZE:
            raise InvalidSessionInitError("SessionInit X-Wing ciphertext has the wrong size")
        if (
            not isinstance(handshake, bytes)
            or not _MIN_HANDSHAKE <= len(handshake) <= _MAX_HANDSHAKE
        ):
            raise InvalidSessionInitError("SessionInit handshake has the wrong size")

    def to_bytes(self) -> bytes:
        """Return the canonical encoding."""
        value: dict[str, object] = {
            "v": _VERSION,
            "spk_id": self.signed_prekey_id,
            "pq_id": self.xwing_prekey_id,
            "ct": self.xwing_ciphertext,
            "hs": self.handshake,
        }
        if self.one_time_prekey_id is not None:
            value["opk_id"] = self.one_time_prekey_id
        return canonical_encode(value)

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionInit:
        """Parse a SessionInit strictly.

        Raises:
            InvalidSessionInitError: If ``data`` is not exactly a well-formed SessionInit.
        """
        try:
            fields = Fields(canonical_decode(data, _LIMITS), "SessionInit", _FIELDS)
            if fields.get_int("v") != _VERSION:
                raise InvalidSessionInitError("unsupported SessionInit version")
            one_time = fields.get_int("opk_id", hi=MAX_PREKEY_ID) if fields.has("opk_id") else None
            return cls(
                signed_prekey_id=fields.get_int("spk_id", hi=MAX_PREKEY_ID),
                xwing_prekey_id=fields.get_int("pq_id", hi=MAX_PREKEY_ID),
                one_time_prekey_id=one_time,
                xwing_ciphertext=fields.get_bytes("ct", size=XWingPublicKey.CIPHERTEXT_SIZE),
                handshake=fields.get_bytes("hs", max_size=_MAX_HANDSHAKE),
            )
        except DecodeError:
            raise InvalidSessionInitError("malformed SessionInit") from None
