"""Per-stranger limits of a bot's node: a token bucket per stranger, caps on pending updates.

Theory of operation. An open bot takes texts from anyone (docs/protocol.md
section 48). Without limits one stranger could fill the bot's node and its
updates queue (``getUpdates``, the webhook) and push its contacts' updates
behind a flood. The bot identity's engine asks :meth:`StrangerGate.check` for
every text *before* it stores it, in the transaction that would store it:

* a text to another local identity (a burner), from our own devices, or
  from a contact the owner added, passes untouched: strangers never limit
  contacts;
* a *stranger* (not a contact, or a contact the open bot accepted, whose name
  starts with :data:`~dchat_messaging.bots.STRANGER_MARK`) takes one token from
  its own bucket (``rate`` per second, holding ``burst``) and one *pending slot*:
  an update of the bot's queue not yet handed to the bot. One stranger holds at
  most ``pending`` slots, all strangers together ``pending_total``.

Over a limit the text is refused with a code (:class:`StrangerLimitError`):
its session still advances (as for a blocked sender), the text is dropped
before anything stores it, and the refusal is counted by code here and in the
node's refusals. A text once stored is never dropped by these limits. The
shell calls :meth:`StrangerGate.handed` for each stranger's update it hands to
the bot (a ``getUpdates`` answer, the webhook's queue), which frees the slot;
a store that rolls back, or a text already stored, frees it at once
(:meth:`StrangerGate.release`). When the bot has taken every update there is,
the shell calls :meth:`StrangerGate.settle`: no slot is held any more, also
those of texts deleted before the bot took them (an ignored request's).

Memory is bounded: at most ``senders`` strangers are tracked; one whose bucket
is full again and who holds no slot is forgotten first, and while every tracked
stranger is busy a new one is refused (``senders``). Slots live in memory: after
a restart every stranger starts with none. Time is a parameter (``now``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ._bot_wire import COMMANDS_ASK_KIND, INLINE_ASK_KIND, PRESS_KIND
from ._errors import StrangerLimitError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_core import IdentityId

__all__ = ("BotLimits", "StrangerBucket", "StrangerGate")

CODES: Final = ("rate", "pending", "pending_total", "senders")
GATED_CONTROLS: Final = frozenset({PRESS_KIND, INLINE_ASK_KIND, COMMANDS_ASK_KIND})
"""Bot controls a stranger's bucket pays for (a press, an inline query, asking the commands)."""


@dataclass(frozen=True, slots=True)
class BotLimits:
    """The limits a bot's node puts on strangers (``[node.bot_limits]``; 0 turns one off).

    Attributes:
        rate: Texts per second one stranger may send on average (0: no rate limit).
        burst: Texts one stranger may send at once (its bucket's size, at least 1).
        pending: Updates of one stranger the bot has not taken yet (0: no cap).
        pending_total: Such updates of all strangers together (0: no cap).
        senders: Strangers tracked at once (the memory bound, at least 1).
    """

    rate: float = 0.5
    burst: int = 20
    pending: int = 50
    pending_total: int = 2000
    senders: int = 10_000

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and 0 <= self.rate <= 1_000_000):
            raise ValueError("rate is 0..1000000 texts per second")
        if not 1 <= self.burst <= 1_000_000 or not 1 <= self.senders <= 10_000_000:
            raise ValueError("burst is 1..1000000 and senders 1..10000000")
        if not 0 <= self.pending <= 1_000_000 or not 0 <= self.pending_total <= 10_000_000:
            raise ValueError("pending is 0..1000000 and pending_total 0..10000000")


class StrangerBucket:
    """``rate`` tokens per second, holding at most ``capacity``; starts full (rate 0: no limit)."""

    __slots__ = ("_at", "_level", "capacity", "rate")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity = rate, capacity
        self._level, self._at = capacity, now

    def level(self, now: float) -> float:
        """Tokens held at ``now`` (a clock going back adds nothing)."""
        if now > self._at:
            self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
            self._at = now
        return self._level

    def take(self, now: float) -> bool:
        """Take one token if there is one; whether it did."""
        if self.rate <= 0:
            return True
        if self.level(now) < 1:
            return False
        self._level -= 1
        return True

    def full(self, now: float) -> bool:
        """Whether the bucket is full again (forgetting it then changes nothing)."""
        return self.rate <= 0 or self.level(now) >= self.capacity


class StrangerGate:
    """Decides whether a stranger's text to the bot is stored (see the module docstring).

    Off until the shell sets :attr:`bot` (the node has a bot). ``is_contact``
    says whether an identity is a contact the owner added (it runs in the
    store's transaction).
    """

    def __init__(self, limits: BotLimits | None = None) -> None:
        self.limits = limits or BotLimits()
        self.bot: IdentityId | None = None
        """The bot's identity (its engine's texts are checked); None: no bot, all pass."""
        self.is_contact: Callable[[IdentityId], bool] = lambda _sender: False
        self._buckets: dict[str, StrangerBucket] = {}
        self._pending: Counter[str] = Counter()
        self._total = 0  # the sum of _pending
        self.refused: Counter[str] = Counter()
        """Texts refused, by code (:data:`CODES`)."""
        self.admitted = 0
        """Strangers' texts admitted since the start."""

    def check(
        self, receiver: IdentityId, sender: IdentityId, kind: str, now: float
    ) -> tuple[bool, str | None]:
        """Admit a message of ``kind`` to ``receiver`` from ``sender``.

        Returns whether a slot was taken (a stranger's text: give it back with
        :meth:`release` if it is not stored after all) and the refusal's code
        (None: store it). Bot controls that make updates (:data:`GATED_CONTROLS`)
        take a token but no slot; other kinds pass.
        """
        text = kind == "text"
        if not text and kind not in GATED_CONTROLS:
            return False, None
        if self.bot is None or receiver != self.bot or sender == receiver:
            return False, None  # no bot, a burner's, or our own device's sent copy
        if self.is_contact(sender):
            return False, None
        try:
            self.admit(str(sender), now, slot=text)
        except StrangerLimitError as exc:
            return False, exc.code
        return text, None

    def admit(self, sender: str, now: float, *, slot: bool = True) -> None:
        """Take a token (and with ``slot`` a slot) for one message of the stranger ``sender``.

        Raises:
            StrangerLimitError: over a limit (``code``); counted in :attr:`refused`.
        """
        limits = self._limits_for(sender, now)
        held = self._pending[sender]
        if slot and limits.pending and held >= limits.pending:
            self._refuse("pending", "the stranger has as many pending updates as it may")
        if slot and limits.pending_total and self._total >= limits.pending_total:
            self._refuse("pending_total", "strangers have as many pending updates as they may")
        if not self._buckets[sender].take(now):
            self._refuse("rate", "the stranger sends faster than its rate")
        if slot:
            self._pending[sender] = held + 1
            self._total += 1
        self.admitted += 1

    def _limits_for(self, sender: str, now: float) -> BotLimits:
        """The limits, after making room for ``sender``'s bucket if it has none."""
        limits = self.limits
        if sender not in self._buckets:
            if len(self._buckets) >= limits.senders:
                self._forget_idle(now)
            if len(self._buckets) >= limits.senders:
                self._refuse("senders", "as many strangers as the node tracks are busy")
            self._buckets[sender] = StrangerBucket(limits.rate, limits.burst, now)
        return limits

    def _forget_idle(self, now: float) -> None:
        idle = [s for s, b in self._buckets.items() if b.full(now) and not self._pending[s]]
        for sender in idle:
            del self._buckets[sender]

    def _refuse(self, code: str, message: str) -> None:
        self.refused[code] += 1
        raise StrangerLimitError(code, message)

    def release(self, sender: str) -> None:
        """Give back one slot of ``sender`` (its text was not stored after all)."""
        held = self._pending.pop(sender, 0)
        if held > 1:
            self._pending[sender] = held - 1
        self._total -= held > 0

    def handed(self, sender: str) -> None:
        """One of ``sender``'s updates was handed to the bot: its slot is free."""
        self.release(sender)

    def settle(self) -> None:
        """The bot took every update there is: no stranger holds a slot any more."""
        self._pending.clear()
        self._total = 0

    def pending_of(self, sender: str) -> int:
        """Slots ``sender`` holds."""
        return self._pending.get(sender, 0)

    def pending_total(self) -> int:
        """Slots all strangers hold."""
        return self._total

    def report(self) -> dict[str, object]:
        """What the bot's owner sees (``dchat bot info``, ``GET /v1/bot``)."""
        limits = self.limits
        return {
            "limits": {
                "rate": limits.rate,
                "burst": limits.burst,
                "pending": limits.pending,
                "pending_total": limits.pending_total,
                "senders": limits.senders,
            },
            "strangers": len(self._buckets),
            "pending": self.pending_total(),
            "admitted": self.admitted,
            "refused": {code: self.refused[code] for code in CODES},
        }
