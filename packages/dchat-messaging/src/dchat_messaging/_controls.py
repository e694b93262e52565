"""The durable queue of received control messages, and reading the engine's stored state.

A control message (``Content.control``) is not a chat message: the shell
hands it to the handler registered for its kind. The engine commits it to
this queue in the same transaction as the session step that opened it, and
it stays until the shell reports its handler done
(:meth:`ControlQueue.done`), so a crash in between runs the handler again
(handlers are idempotent). The queue is one canonical CBOR list of
``[sender, device, padded content]`` under the engine's ``controls`` key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, IdentityId, canonical_decode, canonical_encode

from ._content import Content
from ._errors import EngineStateError, EnvelopeRejectedError

if TYPE_CHECKING:
    from dchat_core import MessageId

    from ._store import StateStore

__all__ = ("ControlQueue", "QueuedControl", "load_state")

_LIMITS: Final = DecodeLimits(max_size=32 << 20, max_depth=4, max_items=1 << 16)


def load_state(store: StateStore, key: str) -> object | None:
    """The decoded value stored under ``key``, or None.

    Raises:
        EngineStateError: the stored bytes are not canonical CBOR within limits.
    """
    data = store.get_state(key)
    if data is None:
        return None
    try:
        value: object = canonical_decode(data, _LIMITS)
    except DecodeError:
        raise EngineStateError(f"stored state {key!r} is damaged") from None
    return value


class QueuedControl:
    """A received control message waiting for its handler (durable until done)."""

    __slots__ = ("content", "sender", "sender_device")

    def __init__(self, content: Content, sender: IdentityId, sender_device: bytes) -> None:
        self.content, self.sender, self.sender_device = content, sender, sender_device


class ControlQueue:
    """Received control messages of one engine, kept under ``key`` in ``store``."""

    def __init__(self, store: StateStore, key: str) -> None:
        self._store = store
        self._key = key
        self._pushes = 0
        self._empty_after: int | None = None  # pushes counted when a read found it empty

    @property
    def maybe_pending(self) -> bool:
        """False only when the queue is known empty: read empty, and nothing pushed since.

        Lets the shell skip reading the database after every batch of plain
        messages. A push counts before its commit, so a read that raced it is
        never taken as proof of emptiness (and a rolled-back push only costs
        one more read).
        """
        return self._empty_after != self._pushes

    def _items(self) -> list[list[bytes]]:
        raw = load_state(self._store, self._key)
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise EngineStateError("stored control queue is damaged")
        return raw

    def push(self, content: Content, sender: IdentityId, device: bytes) -> None:
        """Queue a control message (inside the caller's transaction)."""
        self._pushes += 1
        queue = self._items()
        queue.append([bytes(sender), device, content.to_padded()])
        self._store.put_state(self._key, canonical_encode(queue))

    def pending(self) -> list[QueuedControl]:
        """Control messages not yet marked done, oldest first."""
        pushes = self._pushes  # before the read: a push racing it keeps maybe_pending
        items = self._items()
        if not items:
            self._empty_after = pushes
        result = []
        for sender, device, padded in items:
            try:
                content = Content.from_padded(padded)
            except EnvelopeRejectedError:
                continue
            result.append(QueuedControl(content, IdentityId(sender), device))
        return result

    def done(self, message_id: MessageId) -> None:
        """The handler of a control message finished (successfully or not)."""
        with self._store.transaction():
            queue = self._items()
            keep = [
                item for item in queue
                if Content.from_padded(item[2]).message_id != message_id
            ]  # fmt: skip
            if len(keep) != len(queue):
                self._store.put_state(self._key, canonical_encode(keep))
