"""Stealth payments a user node's scan found, told to the user's clients once each.

The scan itself is dchat_chain's (``StealthScan``, kept in a sealed file); the
node hands every round's finds here. :meth:`StealthInbox.record` logs one
``stealth_received`` event (``account``, ``amount``, ``height``, and
``identity``: the id of the node's identity or burner whose meta-address was
paid; never a key) per one-time account not told before, and remembers those accounts and the
scanned height under the state key ``stealth.inbox``, all in one transaction
with the events. So a rescan, a restart, or a scan file lost and rebuilt from
genesis tells nobody twice, and a crash before the commit tells it on the next
round. Stored as canonical CBOR ``{"v": 1, "scanned": height, "told":
[account, ...]}``, at most :data:`MAX_TOLD` accounts.

An expired burner whose stealth keys the node keeps (funds may be unswept)
is told as ``burner_held`` ``{"burner_id", "reason": "expired"}``; when the keys go (its accounts
found empty, or the user discarded it) as ``burner_released``
``{"burner_id", "reason"}`` (:meth:`StealthInbox.burner_held`, ``burner_released``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, Fields, canonical_encode

from ._controls import load_state
from ._errors import EngineStateError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._store import StateStore

__all__ = ("BURNER_HELD_EVENT", "BURNER_RELEASED_EVENT", "STEALTH_EVENT", "StealthInbox")

STEALTH_EVENT: Final = "stealth_received"
BURNER_HELD_EVENT: Final = "burner_held"
BURNER_RELEASED_EVENT: Final = "burner_released"
MAX_TOLD: Final = 100_000
_KEY: Final = "stealth.inbox"
_FIELDS: Final = frozenset({"v", "scanned", "told"})

Find = tuple[bytes, int, int, str]
"""(one-time account, height, amount, identity id text) of a committed stealth
transfer to us: to our identity's meta-address or to one of our burners'."""


class StealthInbox:
    """The stealth payments already told to the user, and how far the scan went.

    Args:
        store: The node's state store.
        log_event: Appends an event in the open transaction (the store's).
    """

    def __init__(
        self, store: StateStore, log_event: Callable[[str, dict[str, object], float], None]
    ) -> None:
        self._store, self._log_event = store, log_event

    def _load(self) -> tuple[int, set[bytes]]:
        raw = load_state(self._store, _KEY)
        if raw is None:
            return 0, set()
        try:
            f = Fields(raw, "stealth inbox", _FIELDS)
            if f.get_int("v") != 1:
                raise EngineStateError("unsupported stealth inbox version")
            told = f.get_list("told", max_len=MAX_TOLD)
            if not all(isinstance(a, bytes) and len(a) == 32 for a in told):
                raise EngineStateError("a told stealth account is 32 bytes")
            return f.get_int("scanned", lo=0), set(told)
        except DchatError as exc:
            if isinstance(exc, EngineStateError):
                raise
            raise EngineStateError(f"stored state {_KEY!r} is damaged: {exc}") from None

    def record(self, scanned_to: int, finds: Iterable[Find], now: float) -> list[dict[str, Any]]:
        """Log an event for each find not told before; remember them and ``scanned_to``.

        Returns:
            The events logged (``{"account", "amount", "height", "identity"}``), oldest first.

        Raises:
            EngineStateError: The stored state is damaged, or too many accounts were told.
        """
        with self._store.transaction():
            scanned, told = self._load()
            new = []
            for account, height, amount, identity in sorted(finds, key=lambda f: f[1]):
                if account in told:
                    continue
                if len(told) >= MAX_TOLD:
                    raise EngineStateError("too many stealth payments told")
                told.add(account)
                event = {"account": account.hex(), "amount": amount, "height": height}
                event["identity"] = identity
                self._log_event(STEALTH_EVENT, event, now)
                new.append(event)
            state = {"v": 1, "scanned": max(scanned, scanned_to), "told": sorted(told)}
            self._store.put_state(_KEY, canonical_encode(state))
        return new

    def burner_held(self, burner_id: object, now: float) -> None:
        """Tell that an expired burner's stealth keys are kept until its funds are swept."""
        with self._store.transaction():
            self._log_event(
                BURNER_HELD_EVENT, {"burner_id": str(burner_id), "reason": "expired"}, now
            )

    def burner_released(self, burner_id: str, reason: str, now: float) -> None:
        """Tell that a held burner's keys are gone (``reason``: ``empty``, ``discarded``)."""
        with self._store.transaction():
            self._log_event(BURNER_RELEASED_EVENT, {"burner_id": burner_id, "reason": reason}, now)

    def status(self) -> dict[str, int]:
        """``{"scanned_to", "received"}``: the last block scanned, the payments told."""
        scanned, told = self._load()
        return {"scanned_to": scanned, "received": len(told)}
