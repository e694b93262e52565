"""Notices for the user, such as "the session with X was reset", sans-IO.

A session reset (a peer lost its session and set up a new one, or we did) is
what Signal shows as a changed safety number: the user should see it. The
engine reports it as a :class:`~dchat_messaging.SessionReset` event; the shell
keeps it here. The log lives in a :class:`~dchat_messaging.StateStore` under
``user.notices``, a canonical CBOR list of ``[kind, peer id, at ms]``, the
newest :data:`MAX_NOTICES` kept. Notices are advisory: a damaged log is read
as empty and replaced by the next notice, never an error that could stall
the mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DchatError, DecodeLimits, IdentityId, canonical_decode, canonical_encode

if TYPE_CHECKING:
    from ._store import StateStore

__all__ = ("MAX_NOTICES", "Notice", "Notices")

NOTICES_KEY: Final = "user.notices"
MAX_NOTICES: Final = 200
_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=2, max_items=20000)


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice: what happened, with whom, when (ms)."""

    kind: str
    peer: IdentityId
    at_ms: int


def _notice(item: object) -> Notice | None:
    if not (isinstance(item, list) and len(item) == 3):
        return None
    kind, peer, at = item
    if isinstance(kind, str) and isinstance(peer, bytes) and len(peer) == IdentityId.SIZE:
        return Notice(kind, IdentityId(peer), at) if isinstance(at, int) else None
    return None


class Notices:
    """The notice log of one user, kept in ``store``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def listing(self) -> list[Notice]:
        """The notices, oldest first (damaged entries skipped)."""
        stored = self._store.get_state(NOTICES_KEY)
        if stored is None:
            return []
        try:
            items = canonical_decode(stored, _LIMITS)
        except DchatError:
            return []
        if not isinstance(items, list):
            return []
        return [n for n in map(_notice, items) if n is not None]

    def add(self, kind: str, peer: IdentityId, *, at_ms: int) -> None:
        """Keep a notice (the oldest go beyond :data:`MAX_NOTICES`)."""
        with self._store.transaction():
            notices = [*self.listing(), Notice(kind, peer, at_ms)][-MAX_NOTICES:]
            value = [[n.kind, bytes(n.peer), n.at_ms] for n in notices]
            self._store.put_state(NOTICES_KEY, canonical_encode(value))
