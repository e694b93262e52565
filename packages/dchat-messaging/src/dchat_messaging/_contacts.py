"""A user node's contacts, and the messages it keeps with each of them.

Theory of operation
-------------------
A contact is a verified :class:`~dchat_identity.ContactCard` stored under a
unique local name (:class:`ContactStore`: the node database's, or the
in-memory one of :mod:`dchat_messaging.testing`). :class:`ContactBook` holds
the rules around them; every call is synchronous, for the shell's database
worker, and reads no clock:

* **adding**: the card must be well formed, verified and not our own; the
  stored contact teaches the directory its devices, in the same transaction.
  A *quiet* contact (one a burner writes to) is remembered durably under
  :data:`QUIET_KEY` (a sorted list of identity-id strings): no document is
  ever sent to it, so it never learns the main identity, and guardian
  business refuses it.
* **finding**: by local name; a name that is an identity id also finds
  someone whose card we hold without naming them (a message request's
  sender) through the *card sources* registered with
  :meth:`ContactBook.add_card_source`.
* **replacing**: a contact whose key rotated (a recovery) keeps its name and
  gets the new card.
* **removing and renaming** (:meth:`ContactBook.remove`, :meth:`ContactBook.rename`):
  a removed contact's stored messages stay; its next message arrives as a
  message request. A rename keeps the card and gives a new unique name.
* **messages**: listing resolves a peer given by name, and names each
  message's peer; deleting a conversation removes every message with a peer.

Unknown names raise :class:`~dchat_messaging.RequestError` with the code
``unknown_contact`` (``quiet_contact`` where a quiet one is refused); a
corrupt quiet list raises it with ``corrupt_state``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from dchat_core import DchatError, DecodeLimits, IdentityId, canonical_decode, canonical_encode
from dchat_identity import ContactCard, InvalidCardError

from ._conversation import forget_records
from ._errors import RequestError
from ._search import SearchStore
from ._store import MessageStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ._directory import DocumentDirectory

__all__ = ("QUIET_KEY", "ContactBook", "ContactEntry", "ContactStore", "MessageEntry", "UserStore")

QUIET_KEY: Final = "user.quiet_contacts"
"""Where the quiet contacts are kept in the store's state."""
_QUIET_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=2, max_items=20000)
_DELETE_BATCH: Final = 500


class ContactEntry(Protocol):
    """One stored contact."""

    @property
    def name(self) -> str: ...
    @property
    def identity_id(self) -> str: ...
    @property
    def card(self) -> bytes: ...


class MessageEntry(Protocol):
    """One stored message."""

    @property
    def message_id(self) -> bytes: ...
    @property
    def direction(self) -> str: ...
    @property
    def peer_id(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def sent_at(self) -> float: ...
    @property
    def stored_at(self) -> float: ...
    @property
    def read_at(self) -> float | None:
        """When the user read it (an incoming message), or None."""
        ...

    @property
    def cursor(self) -> int | None:
        """Its place in storage order, to page from (None if the store has none)."""
        ...

    @property
    def expires_at(self) -> float | None:
        """When its disappearing timer runs out, or None (no timer, or not started)."""
        ...


class ContactStore(Protocol):
    """Durable contacts and the listing of stored messages."""

    def add_contact(
        self, name: str, identity_id: str, card: bytes, added_at: float
    ) -> ContactEntry:
        """Store a contact; a taken name or identity raises the store's duplicate error."""
        ...

    def contact_named(self, name: str) -> ContactEntry | None: ...
    def contact_of(self, identity_id: str) -> ContactEntry | None: ...
    def list_contacts(self) -> Sequence[ContactEntry]: ...
    def replace_contact(self, identity_id: str, new_id: str, card: bytes) -> ContactEntry | None:
        """Give the contact ``identity_id`` a new identity and card; None if unknown."""
        ...

    def list_messages(
        self, peer: str | None, limit: int, *, after: int | None = None, before: int | None = None
    ) -> Sequence[MessageEntry]:
        """The last ``limit`` messages (with ``peer`` only, if given), oldest first.

        With ``after``: the first ``limit`` whose cursor is above it; with
        ``before``: the last ``limit`` whose cursor is below it (storage order).
        """
        ...

    def delete_message(self, message_id: bytes) -> bool: ...
    def get_message(self, message_id: bytes) -> MessageEntry | None: ...
    def message_direction(self, message_id: bytes, peer: str) -> str | None:
        """``"in"`` or ``"out"`` if the message is stored and is of ``peer``, else None.

        What a receipt needs of each id it names, without reading the text.
        """
        ...

    def mark_read(self, message_id: bytes, read_at: float) -> bool:
        """Record that the user read a message; False if it was read already."""
        ...

    def expired_messages(self, now: float, limit: int) -> Sequence[MessageEntry]:
        """Up to ``limit`` messages whose ``expires_at`` is ``now`` or earlier."""
        ...

    def set_timer(self, peer: str, seconds: float | None, now: float) -> None:
        """Set the disappearing timer of the conversation with ``peer`` (None: off).

        Texts whose count starts later (an incoming one read here, an
        outgoing one read by the peer) expire that many seconds after; an
        outgoing one is stored with a fallback deadline (one day after sending,
        or its timer if longer) in case no read receipt comes.
        """
        ...

    def start_timer(self, message_id: bytes, at: float) -> bool:
        """Start an outgoing text's count at ``at`` (keeping an earlier deadline)."""
        ...

    def timer_of(self, peer: str) -> float | None:
        """The disappearing timer of the conversation with ``peer``, if it has one."""
        ...

    def remove_contact(self, identity_id: str) -> bool: ...
    def log_event(self, kind: str, data: dict[str, object], now: float) -> None:
        """Append an event for the user's clients (in the open transaction)."""
        ...


class UserStore(MessageStore, ContactStore, SearchStore, Protocol):
    """Everything a user node's messaging keeps: engine state, messages, outbox, contacts,
    and the messages' search index."""


def _decode_quiet(stored: bytes | None) -> set[str]:
    corrupt = RequestError("corrupt_state", f"the stored {QUIET_KEY} list is malformed")
    if stored is None:
        return set()
    try:
        items = canonical_decode(stored, _QUIET_LIMITS)
        if not isinstance(items, list) or not all(isinstance(i, bytes) for i in items):
            raise corrupt
        return {i.decode() for i in items}
    except (DchatError, UnicodeDecodeError):
        raise corrupt from None


def _unknown(name: str) -> RequestError:
    return RequestError("unknown_contact", f"no contact named {name!r}")


class ContactBook:
    """The contacts of one user node and their rules.

    Args:
        store: The node's store.
        directory: Learns the devices of every contact.
        own: The node's own identity id, if it has one yet.
    """

    def __init__(
        self,
        store: UserStore,
        directory: DocumentDirectory,
        own: Callable[[], IdentityId | None],
    ) -> None:
        self._store = store
        self._directory = directory
        self._own = own
        self._quiet: set[str] = set()
        self._sources: list[Callable[[IdentityId], ContactCard | None]] = []

    def load(self) -> None:
        """Read the quiet list and teach the directory every stored contact's devices.

        Raises:
            RequestError: ``corrupt_state``, the quiet list is malformed.
        """
        self._quiet = _decode_quiet(self._store.get_state(QUIET_KEY))
        for entry in self._store.list_contacts():
            self._directory.add_card(ContactCard.from_bytes(entry.card))

    def add_card_source(self, source: Callable[[IdentityId], ContactCard | None]) -> None:
        """Also find non-contacts by identity id with ``source`` (a message request's card)."""
        self._sources.append(source)

    # -- adding and replacing ----------------------------------------------------------

    def verify(self, card_text: str) -> ContactCard:
        """The verified card a contact is added with.

        Raises:
            InvalidCardError: the card is malformed, forged, or our own.
        """
        card = ContactCard.from_text(card_text)
        if self._own() == card.identity_id:
            raise InvalidCardError("that is this node's own card")
        return card

    def add(self, name: str, card_text: str, *, now: float, announce: bool = True) -> ContactEntry:
        """Verify ``card_text`` and store it under ``name`` (quietly unless ``announce``).

        Raises:
            InvalidCardError: see :meth:`verify`.
        """
        return self.add_card(name, self.verify(card_text), now=now, announce=announce)

    def add_card(
        self, name: str, card: ContactCard, *, now: float, announce: bool = True
    ) -> ContactEntry:
        """Store the verified ``card`` under ``name`` (a synced contact, or :meth:`add`'s)."""
        with self._store.transaction():
            entry = self._store.add_contact(name, str(card.identity_id), card.to_bytes(), now)
            self.added(card, announce=announce)
        return entry

    def added(self, card: ContactCard, *, announce: bool) -> None:
        """A contact was stored: learn its devices; remember it if it is quiet."""
        self._directory.add_card(card)
        if not announce:
            self._quiet.add(str(card.identity_id))
            self._store.put_state(
                QUIET_KEY, canonical_encode(sorted(i.encode() for i in self._quiet))
            )

    def is_quiet(self, identity_id: IdentityId | str) -> bool:
        """Whether the contact was added quietly (for a burner)."""
        return str(identity_id) in self._quiet

    def replace(self, old: IdentityId, card: ContactCard) -> ContactEntry | None:
        """Give the contact ``old`` a new card (its key rotated); None if unknown."""
        self._directory.add_card(card)
        return self._store.replace_contact(str(old), str(card.identity_id), card.to_bytes())

    def remove(self, name: str) -> ContactEntry:
        """Forget the contact ``name`` (its messages stay); returns what was stored.

        Raises:
            RequestError: ``unknown_contact``.
        """
        with self._store.transaction():
            entry = self._store.contact_named(name)
            if entry is None:
                raise _unknown(name)
            self._store.remove_contact(entry.identity_id)
            if self.is_quiet(entry.identity_id):
                self._quiet.discard(entry.identity_id)
                self._store.put_state(
                    QUIET_KEY, canonical_encode(sorted(i.encode() for i in self._quiet))
                )
        return entry

    def rename(self, name: str, new_name: str, *, now: float) -> ContactEntry:
        """Give the contact ``name`` the unique name ``new_name`` (same card).

        Raises:
            RequestError: ``unknown_contact``; the store's duplicate error if
                ``new_name`` is taken.
        """
        with self._store.transaction():
            entry = self._store.contact_named(name)
            if entry is None:
                raise _unknown(name)
            self._store.remove_contact(entry.identity_id)
            return self._store.add_contact(new_name, entry.identity_id, entry.card, now)

    # -- finding ---------------------------------------------------------------------

    def entries(self) -> list[ContactEntry]:
        """Every contact."""
        return list(self._store.list_contacts())

    def announced(self) -> list[ContactCard]:
        """The cards of every contact that is not quiet: those our documents go to."""
        entries = self._store.list_contacts()
        return [ContactCard.from_bytes(e.card) for e in entries if not self.is_quiet(e.identity_id)]

    def card_of(self, identity_id: IdentityId | str) -> ContactCard | None:
        """The card of the contact with ``identity_id``, if it is one."""
        entry = self._store.contact_of(str(identity_id))
        return None if entry is None else ContactCard.from_bytes(entry.card)

    def chosen(self, identity_id: IdentityId | str, stranger_mark: str) -> bool:
        """Whether ``identity_id`` is a contact the user chose (its name does not start
        with ``stranger_mark``, which marks one an open bot accepted)."""
        entry = self._store.contact_of(str(identity_id))
        return entry is not None and not entry.name.startswith(stranger_mark)

    def named(self, name: str, *, quiet_ok: bool = True) -> ContactCard:
        """The card of the contact ``name``, by name only (a quiet one only if ``quiet_ok``).

        Raises:
            RequestError: ``unknown_contact``, or ``quiet_contact`` (a burner's contact).
        """
        entry = self._store.contact_named(name)
        if entry is None:
            raise _unknown(name)
        if not quiet_ok and self.is_quiet(entry.identity_id):
            raise RequestError("quiet_contact", f"{name!r} is a burner's contact")
        return ContactCard.from_bytes(entry.card)

    def find(self, name: str) -> ContactCard:
        """A contact by name, or anyone whose card we hold by identity id.

        Raises:
            RequestError: ``unknown_contact``.
        """
        entry = self._store.contact_named(name)
        if entry is not None:
            return ContactCard.from_bytes(entry.card)
        if name.startswith(IdentityId.PREFIX):
            identity = IdentityId.parse(name)
            card = self.card_of(identity)
            for source in self._sources:
                card = card or source(identity)
            if card is not None:
                return card
        raise _unknown(name)

    def stealth_address(self, name: str) -> bytes:
        """The stealth meta-address (64 bytes) published on the verified card of ``name``.

        Raises:
            RequestError: ``unknown_contact``, or ``no_stealth_address`` (the card has none).
        """
        card = self.find(name)
        if card.stealth is None:
            raise RequestError(
                "no_stealth_address", f"{name!r}'s card publishes no stealth address"
            )
        return card.stealth

    # -- messages --------------------------------------------------------------------

    def messages(
        self, peer: str | None, limit: int, *, after: int | None = None, before: int | None = None
    ) -> list[tuple[MessageEntry, str | None]]:
        """The last ``limit`` stored messages (with ``peer``, a name or identity id, if given),
        each with its peer's contact name if it is a contact; ``after`` / ``before`` page
        by cursor (see :meth:`ContactStore.list_messages`).
        """
        peer_id = peer
        if peer is not None and not peer.startswith(IdentityId.PREFIX):
            peer_id = str(self.find(peer).identity_id)
        listed = self._store.list_messages(peer_id, limit, after=after, before=before)
        return self.with_names(listed)

    def with_names(self, listed: Iterable[MessageEntry]) -> list[tuple[MessageEntry, str | None]]:
        """Each message with its peer's contact name, if the peer is a contact."""
        names = {entry.identity_id: entry.name for entry in self._store.list_contacts()}
        return [(m, names.get(m.peer_id)) for m in listed]

    def delete_messages(self, peer: str) -> int:
        """Delete every stored message with ``peer`` (an identity id); returns how many."""
        deleted = 0
        while batch := self._store.list_messages(peer, _DELETE_BATCH):
            with self._store.transaction():
                done = sum(self._store.delete_message(m.message_id) for m in batch)
                for m in batch:  # no note, payment or attachment record without its message
                    forget_records(self._store, m.message_id)
            if not done:  # nothing listed could be deleted: stop rather than spin
                return deleted
            deleted += done
        return deleted
