"""Per-device session records as the engine stores them.

A record holds up to two Double Ratchet sessions with one peer device:
``current``, used to send, and ``previous``, kept to read messages still in
flight when a new session replaced it (a message that opens with it makes it
current again). Alongside each session::

    {"v": 1, "peer": identity id(32),
     "cur": {"r": ratchet state, ["init": SessionInit], ["ih": init hash]},
     ["prev": same shape]}

``init`` is kept by the initiator until the peer has answered on the
session: every message until then carries it, so the first one to arrive sets
the session up whichever order they arrive in. ``ih`` is the hash of the
SessionInit a responder accepted, so the same init arriving again (attached
to a later message) selects the session instead of failing as a replay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    IdentityId,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import RatchetSession, SessionInit
from dchat_crypto.hazmat import RatchetFormatError

from ._errors import EngineStateError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("SessionRecord", "SessionSlot", "init_hash")

_SLOT: Final = frozenset({"r", "init", "ih"})
_FIELDS: Final = frozenset({"v", "peer", "cur", "prev"})
_LIMITS: Final = DecodeLimits(max_size=4 << 20, max_depth=3, max_items=64)


def init_hash(init: SessionInit) -> bytes:
    """A short, collision-resistant handle of one SessionInit."""
    return hashlib.blake2b(init.to_bytes(), digest_size=16, person=b"dchat-init").digest()


@dataclass(slots=True)
class SessionSlot:
    """One ratchet session and how it was set up."""

    ratchet: RatchetSession
    init: SessionInit | None = None  # ours, not yet answered
    init_hash: bytes | None = None  # theirs, accepted

    def encode(self) -> dict[str, object]:
        value: dict[str, object] = {"r": self.ratchet.to_bytes()}
        if self.init is not None:
            value["init"] = self.init.to_bytes()
        if self.init_hash is not None:
            value["ih"] = self.init_hash
        return value

    @classmethod
    def decode(cls, raw: object) -> SessionSlot:
        f = Fields(raw, "session", _SLOT)
        init = SessionInit.from_bytes(f.get_bytes("init", max_size=4096)) if f.has("init") else None
        ih = f.get_bytes("ih", size=16) if f.has("ih") else None
        return cls(RatchetSession.from_bytes(f.get_bytes("r", max_size=4 << 20)), init, ih)


@dataclass(slots=True)
class SessionRecord:
    """The sessions with one peer device."""

    peer: IdentityId
    current: SessionSlot
    previous: SessionSlot | None = None

    def slots(self) -> list[SessionSlot]:
        """Current first, then previous."""
        return [self.current] if self.previous is None else [self.current, self.previous]

    def knows_init(self, digest: bytes) -> SessionSlot | None:
        """The slot set up by the init with hash ``digest``, if any."""
        return next((s for s in self.slots() if s.init_hash == digest), None)

    def snapshot(self) -> Callable[[], None]:
        """A way back to this record's present state, in place.

        The ratchet steps change the record where it is, and a store may hold
        the record itself to encode at its commit; a step that is rolled back
        must leave no trace in it. Copying the sessions costs a fraction of
        encoding them.
        """
        kept = [(s, s.ratchet.copy(), s.init, s.init_hash) for s in self.slots()]
        current, previous = self.current, self.previous

        def restore() -> None:
            for slot, ratchet, init, digest in kept:
                slot.ratchet, slot.init, slot.init_hash = ratchet.copy(), init, digest
            self.current, self.previous = current, previous

        return restore

    def to_bytes(self) -> bytes:
        value: dict[str, object] = {"v": 1, "peer": bytes(self.peer), "cur": self.current.encode()}
        if self.previous is not None:
            value["prev"] = self.previous.encode()
        return canonical_encode(value)

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionRecord:
        """Decode a stored record.

        Raises:
            EngineStateError: the record is damaged.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "session record", _FIELDS)
            if f.get_int("v") != 1:
                raise ValueError("version")
            prev = SessionSlot.decode(f.raw("prev")) if f.has("prev") else None
            return cls(
                IdentityId(f.get_bytes("peer", size=32)), SessionSlot.decode(f.raw("cur")), prev
            )
        except (DecodeError, RatchetFormatError, ValueError):
            raise EngineStateError("a stored session is damaged") from None
