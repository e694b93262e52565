"""Who may write to us: message requests, the block list and retired keys, sans-IO.

Theory of operation
-------------------
A text message from an identity that is not a contact (and not ourselves) is
stored as usual, but its sender becomes a *request*
(:meth:`MessageRequests.note`): an inbox leaves such messages out until the
user accepts the request (the sender's card, which a session's first message
carries sealed inside, becomes a contact), ignores it (the request and its
messages go; a later message makes a new request) or blocks the sender.
Whether the sender is a contact is the caller's question (it holds the
contact list): :meth:`note` is told.

Two kinds of sender are *dropped*: blocked identities, and keys retired by a
recovery (the identity moved to a new key, so mail signed by the old one is
refused). The engines share the live :attr:`MessageRequests.dropped` set: a
dropped sender's messages are still decrypted (the session must advance),
then reported as blocked and not stored. :meth:`refusal` names the reason
for counting.

State, kept through a :class:`~dchat_messaging.StateStore` (sealed at rest by
the node's store), in canonical CBOR under fixed keys:

* ``user.requests``: ``{identity id text: {"first": ms, "n": count, "card":
  bytes}}`` (``card`` empty when no card came; canonical map keys are text);
* ``user.blocked`` and ``user.retired_senders``: sorted lists of identity ids.

Each change is written at once, in one transaction, under a lock (the node
calls from worker threads). Corrupt stored state is a :class:`RequestError`
with code ``corrupt_state``; an answer to a request that does not exist is
``not_found``, accepting one that carried no card ``no_card``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DchatError, DecodeLimits, IdentityId, canonical_decode, canonical_encode
from dchat_identity import ContactCard

from ._errors import RequestError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._events import MessageReceived
    from ._store import StateStore

__all__ = ("MAX_REQUESTS", "MessageRequest", "MessageRequests")

REQUESTS_KEY: Final = "user.requests"
BLOCKED_KEY: Final = "user.blocked"
RETIRED_KEY: Final = "user.retired_senders"
MAX_REQUESTS: Final = 1000
"""Open requests kept; later strangers' messages are stored but not listed."""
_LIMITS: Final = DecodeLimits(max_size=8 << 20, max_depth=3, max_items=1 << 16)
_ID_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=2, max_items=20000)
_ENTRY_FIELDS: Final = frozenset({"first", "n", "card"})


@dataclass(frozen=True, slots=True)
class MessageRequest:
    """One open request.

    Attributes:
        identity: The sender.
        first_ms: When its first message was sent (sender's clock, ms).
        messages: How many of its messages arrived while it was a request.
        card: The card it sent, if any (needed to accept or reply).
    """

    identity: IdentityId
    first_ms: int
    messages: int
    card: ContactCard | None

    def row(self, preview: str | None) -> dict[str, object]:
        """The request as the API lists it, with ``preview`` (its latest message's text)."""
        return {
            "identity_id": str(self.identity),
            "name": None if self.card is None else self.card.name,
            "messages": self.messages,
            "first_ms": self.first_ms,
            "preview": preview,
            "can_reply": self.card is not None,
        }


def _corrupt(what: str) -> RequestError:
    return RequestError("corrupt_state", f"the stored {what} is malformed")


@dataclass(slots=True)
class _Entry:
    """One stored request: first message time, count, the card (empty if none came)."""

    first: int
    n: int
    card: bytes

    def value(self) -> dict[str, object]:
        return {"first": self.first, "n": self.n, "card": self.card}

    @classmethod
    def decode(cls, key: object, value: object) -> tuple[bytes, _Entry]:
        if not (isinstance(key, str) and isinstance(value, dict) and set(value) == _ENTRY_FIELDS):
            raise _corrupt("message requests")
        first, count, card = value["first"], value["n"], value["card"]
        if not (isinstance(first, int) and isinstance(count, int) and isinstance(card, bytes)):
            raise _corrupt("message requests")
        try:
            identity = IdentityId.parse(key)
            if card:
                ContactCard.from_bytes(card)  # checked once here, so listing cannot fail
        except DchatError:
            raise _corrupt("message requests") from None
        return bytes(identity), cls(first, count, card)

    def request(self, key: bytes) -> MessageRequest:
        card = ContactCard.from_bytes(self.card) if self.card else None
        return MessageRequest(IdentityId(key), self.first, self.n, card)


def _decode_ids(data: bytes | None, limits: DecodeLimits, what: str) -> set[IdentityId]:
    if data is None:
        return set()
    try:
        items = canonical_decode(data, limits)
    except DchatError:
        raise _corrupt(what) from None
    if not isinstance(items, list) or not all(
        isinstance(i, bytes) and len(i) == IdentityId.SIZE for i in items
    ):
        raise _corrupt(what)
    return {IdentityId(i) for i in items}


def _encode_ids(ids: Iterable[IdentityId]) -> bytes:
    return canonical_encode(sorted(bytes(i) for i in ids))


class MessageRequests:
    """Message requests, blocked identities and retired keys of one user.

    Args:
        store: Where the state lives.
        limit: Most open requests kept.
    """

    def __init__(self, store: StateStore, *, limit: int = MAX_REQUESTS) -> None:
        self._store = store
        self._limit = limit
        self._lock = threading.RLock()
        self._requests: dict[bytes, _Entry] = {}
        self._blocked: set[IdentityId] = set()
        self._retired: set[IdentityId] = set()
        self.dropped: set[IdentityId] = set()
        """Blocked or retired: the engines drop these senders (a live, shared set)."""

    # -- state -----------------------------------------------------------------------

    def load(self) -> None:
        """Read the stored state (replacing what is held).

        Raises:
            RequestError: ``corrupt_state``, the stored state is malformed.
        """
        with self._lock:
            self._requests = self._decode_requests(self._store.get_state(REQUESTS_KEY))
            self._blocked = _decode_ids(self._store.get_state(BLOCKED_KEY), _LIMITS, "block list")
            self._retired = _decode_ids(
                self._store.get_state(RETIRED_KEY), _ID_LIMITS, "retired senders"
            )
            self.dropped.clear()  # in place: the engines hold this set
            self.dropped.update(self._blocked | self._retired)

    @staticmethod
    def _decode_requests(data: bytes | None) -> dict[bytes, _Entry]:
        if data is None:
            return {}
        try:
            raw = canonical_decode(data, _LIMITS)
        except DchatError:
            raise _corrupt("message requests") from None
        if not isinstance(raw, dict):
            raise _corrupt("message requests")
        return dict(_Entry.decode(k, v) for k, v in raw.items())

    def _save_requests(self) -> None:
        value = {str(IdentityId(k)): e.value() for k, e in self._requests.items()}
        self._store.put_state(REQUESTS_KEY, canonical_encode(value))

    # -- requests --------------------------------------------------------------------

    def note(self, message: MessageReceived, *, known: bool) -> bool:
        """Count a received message toward its sender's request; True if one was noted.

        Only new, stored text messages count, and only from a sender that is
        not ``known`` (a contact, or ourselves).
        """
        if known or message.kind != "text" or message.blocked or not message.new:
            return False
        key = bytes(message.sender)
        with self._lock, self._store.transaction():
            entry = self._requests.get(key)
            if entry is None:
                if len(self._requests) >= self._limit:
                    return False  # still stored and findable by id, just not listed
                entry = self._requests[key] = _Entry(message.sent_at_ms, 0, b"")
            entry.n += 1
            card = message.sender_card
            if card is not None and card.identity_id == message.sender:
                entry.card = card.to_bytes()
            self._save_requests()
        return True

    def pending(self) -> set[str]:
        """Identity ids with an open request (their messages stay out of the inbox)."""
        with self._lock:
            return {str(IdentityId(k)) for k in self._requests}

    def card(self, identity: IdentityId) -> ContactCard | None:
        """The card a requester sent, so the user can reply before accepting."""
        with self._lock:
            entry = self._requests.get(bytes(identity))
        return None if entry is None else entry.request(bytes(identity)).card

    def listing(self) -> list[MessageRequest]:
        """Open requests, oldest first."""
        with self._lock:
            items = sorted(self._requests.items(), key=lambda kv: kv[1].first)
        return [entry.request(key) for key, entry in items]

    def get(self, identity: IdentityId) -> MessageRequest:
        """The open request of ``identity``.

        Raises:
            RequestError: ``not_found``.
        """
        with self._lock:
            entry = self._requests.get(bytes(identity))
        if entry is None:
            raise RequestError("not_found", f"no message request from {identity}")
        return entry.request(bytes(identity))

    def card_to_accept(self, identity: IdentityId) -> ContactCard:
        """The card to add as a contact for ``identity``'s request.

        Raises:
            RequestError: ``not_found``; ``no_card``, the request carried no card.
        """
        card = self.get(identity).card
        if card is None:
            raise RequestError("no_card", "that request carried no card to add as a contact")
        return card

    def resolve(self, identity: IdentityId) -> bool:
        """Close ``identity``'s request (accepted, ignored, blocked or now a contact).

        Returns whether one was open.
        """
        with self._lock, self._store.transaction():
            if self._requests.pop(bytes(identity), None) is None:
                return False
            self._save_requests()
        return True

    # -- blocking and retired keys -------------------------------------------------------

    def block(self, identity: IdentityId) -> bool:
        """Drop ``identity``'s messages from now on; True if it has an open request.

        The caller deletes the requester's messages, then :meth:`resolve`\\ s it.
        """
        with self._lock, self._store.transaction():
            self._blocked.add(identity)
            self.dropped.add(identity)
            self._store.put_state(BLOCKED_KEY, _encode_ids(self._blocked))
            return bytes(identity) in self._requests

    def unblock(self, identity: IdentityId) -> None:
        """Let ``identity`` through again (unless its key is retired).

        Raises:
            RequestError: ``not_found``, it is not blocked.
        """
        with self._lock, self._store.transaction():
            if identity not in self._blocked:
                raise RequestError("not_found", f"{identity} is not blocked")
            self._blocked.discard(identity)
            if identity not in self._retired:
                self.dropped.discard(identity)
            self._store.put_state(BLOCKED_KEY, _encode_ids(self._blocked))

    def blocked(self) -> list[IdentityId]:
        """Blocked identities, in id order."""
        with self._lock:
            return sorted(self._blocked, key=bytes)

    def retire(self, identity: IdentityId) -> None:
        """Refuse mail signed by ``identity`` from now on (a key retired by a recovery)."""
        with self._lock, self._store.transaction():
            self._retired.add(identity)
            self.dropped.add(identity)
            self._store.put_state(RETIRED_KEY, _encode_ids(self._retired))

    def refusal(self, sender: IdentityId) -> str:
        """Why a dropped sender's message was refused, for counting."""
        return "RetiredKeyError" if sender in self._retired else "BlockedSenderError"
