"""Each conversation's order: sequence numbers, a Lamport clock and the gaps a device sees.

Theory of operation
-------------------
Envelopes may arrive in any order (retries, several relays, a device offline
for a while), so a conversation is not ordered by arrival. Every text message
a device sends carries, inside the encrypted content:

* ``seq``: its number among the texts this device sent in the conversation
  (1, 2, 3, ...). A receiver tracks, per sending device, the highest number
  up to which it has everything and the numbers it holds above that; the
  numbers in between are *missing* messages, shown as such until they arrive.
* ``lc``: the conversation's Lamport clock, one more than the highest value
  this device has sent or seen in the conversation. Every device of both
  parties sorts the conversation by it, so they all show the same order, and
  a reply always sorts after the message it answers.

The state of one conversation (one peer identity) is one stored value,
``order.<peer>``: ``[next seq, clock, {sending device (hex): [contiguous, [above...]]}]``.
At most :data:`MAX_AHEAD` numbers above the contiguous one are remembered per
device; beyond that the oldest gap is given up (counted as missing no more).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final

from dchat_core import DchatError, DecodeLimits, canonical_decode, canonical_encode

from ._errors import EngineStateError
from ._recent import Recent

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._content import Content
    from ._store import MessageStore

__all__ = ("MAX_AHEAD", "ConversationOrder")

MAX_AHEAD: Final = 256
KEPT: Final = 1024
"""Conversations whose order state is kept decoded in memory (the most recently used)."""
_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=4, max_items=8 * MAX_AHEAD + 64)
_State = tuple[int, int, dict[bytes, tuple[int, list[int]]]]


class ConversationOrder:
    """The order state of one device's conversations.

    Args:
        store: Where the state lives.
        key: Makes this engine's state key from a name (engines share a store).
    """

    def __init__(self, store: MessageStore, key: Callable[..., str]) -> None:
        self._store = store
        self._key = key
        # Decoded states of the conversations in use lately, write-through like the
        # engine's sessions; read and changed only inside the store's transactions.
        self._states: Recent[str, _State] = Recent(KEPT)

    def stamp(self, peer: str, content: Content) -> Content:
        """``content`` with its ``seq`` and Lamport clock for a text sent to ``peer``.

        Call it inside a store transaction (as :meth:`observe`).
        """
        next_seq, clock, seen = self._current(peer)
        stamped = replace(content, seq=next_seq, lamport=clock + 1)
        self._save(peer, (next_seq + 1, clock + 1, seen))
        return stamped

    def observe(self, peer: str, device: bytes, content: Content) -> None:
        """A text in the conversation with ``peer`` arrived from ``device``: note its place."""
        if content.seq is None or content.lamport is None:
            return
        next_seq, clock, seen = self._current(peer)
        low, above = seen.get(device, (0, []))
        if content.seq > low and content.seq not in above:
            seen = dict(seen)  # saved states are never changed: the store may hold one still
            above = sorted([*above, content.seq])
            while above and above[0] == low + 1:
                low = above.pop(0)
            if len(above) > MAX_AHEAD:  # give up the oldest gap rather than grow without end
                low, above = above[0], above[1:]
                while above and above[0] == low + 1:
                    low = above.pop(0)
            seen[device] = (low, above)
        self._save(peer, (next_seq, max(clock, content.lamport), seen))

    def missing(self, peer: str) -> int:
        """How many texts of the conversation with ``peer`` are known to be missing."""
        _, _, seen = self._load(peer)
        return sum(above[-1] - low - len(above) for low, above in seen.values() if above)

    def _current(self, peer: str) -> _State:
        """The state to change, kept decoded; a rollback drops it from memory."""
        state = self._states.get(peer)
        if state is None:
            state = self._load(peer)
        self._store.on_rollback(lambda: self._states.drop(peer))
        return state

    def _load(self, peer: str) -> _State:
        raw = self._store.get_state(self._key("order", peer))
        if raw is None:
            return 1, 0, {}
        try:
            value = canonical_decode(raw, _LIMITS)
            next_seq, clock, seen = value
            devices = {
                bytes.fromhex(d): (int(low), [int(n) for n in ahead])
                for d, (low, ahead) in seen.items()
            }
            if not (isinstance(next_seq, int) and isinstance(clock, int)):
                raise TypeError
            return next_seq, clock, devices
        except (DchatError, TypeError, ValueError, AttributeError):
            raise EngineStateError("stored conversation order is damaged") from None

    def _save(self, peer: str, state: _State) -> None:
        # Encoded at the commit, once per transaction (the last state saved wins).
        self._store.put_state_later(self._key("order", peer), _Saved(state))
        self._states.put(peer, state)
        self._store.on_rollback(lambda: self._states.drop(peer))


class _Saved:
    """One conversation's order state as saved; encoded when the store writes it.

    A state is never changed once saved (:meth:`ConversationOrder.observe`
    copies the map it changes), so it is what the saving call meant however
    late it is encoded, and a level that rolls back only has to drop it.
    """

    __slots__ = ("_state",)

    def __init__(self, state: _State) -> None:
        self._state = state

    def to_bytes(self) -> bytes:
        next_seq, clock, seen = self._state
        value = [next_seq, clock, {d.hex(): [low, above] for d, (low, above) in seen.items()}]
        return canonical_encode(value)
