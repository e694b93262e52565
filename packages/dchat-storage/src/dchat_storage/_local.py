"""Repositories for the user's own data: the local identity and the contacts.

Both are sealed at rest: the identity row holds only a sealed payload, and a
contact is found by blind indexes of its identity id and its local name.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ._errors import DuplicateError, NotFoundError
from ._prepared import Prepared
from ._records import ContactRecord, IdentityRecord
from ._rowcodec import SealedTable
from ._schema import Contact, Identity

if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping
    from typing import Any

    from ._access import Access

__all__ = ("CONTACTS", "IDENTITY", "ContactRepo", "IdentityRepo")

IDENTITY = SealedTable(Identity, key="slot", ad=("slot",))
CONTACTS = SealedTable(
    Contact,
    key="id_ix",
    indexes={"id_ix": ("identity-id", "identity_id"), "name_ix": ("contact-name", "name")},
    ad=("id_ix",),
)
_CONTACT_COLUMNS = (Contact.id_ix, Contact.payload, Contact.added_at)
# Prepared once: a send looks its contact up by name, a receive by identity.
_BY_NAME = Prepared("SELECT id_ix, payload, added_at FROM contacts WHERE name_ix = :ix")
_BY_ID = Prepared("SELECT id_ix, payload, added_at FROM contacts WHERE id_ix = :ix")


class IdentityRepo:
    """The node's one local identity. Obtain it as :attr:`Database.identity`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def save(self, identity_id: str, keystore: bytes, card: bytes, created_at: float) -> None:
        """Store the local identity; there can be only one.

        Args:
            identity_id: The identity's id.
            keystore: The serialized key store (already wrapped by the caller).
            card: The public identity card.
            created_at: Creation time, seconds since the Unix epoch.

        Raises:
            DuplicateError: An identity is already stored.
            StorageUnavailableError: The database cannot be written.
        """
        fields = {"identity_id": identity_id, "keystore": keystore, "card": card}
        row = IDENTITY.row(self._access.sealer, fields, {"slot": 1, "created_at": created_at})
        with self._access.write("save identity") as conn:
            try:
                conn.execute(insert(Identity).values(row))
            except IntegrityError as exc:
                raise DuplicateError("a local identity is already stored") from exc

    def set_card(self, card: bytes) -> None:
        """Replace the stored identity's card (its owner re-issued it).

        Raises:
            NotFoundError: No identity is stored.
            StorageUnavailableError: The database cannot be written.
        """
        with self._access.write("set identity card") as conn:
            row = conn.execute(select(Identity.slot, Identity.payload)).one_or_none()
            if row is None:
                raise NotFoundError("no local identity is stored")
            fields = {**IDENTITY.fields(self._access.sealer, row._mapping), "card": card}
            sealed = IDENTITY.row(self._access.sealer, fields, {"slot": row[0]})
            conn.execute(update(Identity).values(payload=sealed["payload"]))

    def get(self) -> IdentityRecord | None:
        """Return the local identity, or None before :meth:`save`."""
        query = select(Identity.slot, Identity.payload, Identity.created_at)
        with self._access.read("get identity") as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        fields = IDENTITY.fields(self._access.sealer, row._mapping)
        return IdentityRecord(fields["identity_id"], fields["keystore"], fields["card"], row[2])


class ContactRepo:
    """The address book. Obtain it as :attr:`Database.contacts`.

    Every send looks its contact up by name and every receive by identity id,
    and each lookup opens a sealed row; so the repository keeps the records it
    read in memory (bounded by :data:`CACHE_SIZE`). The cache holds committed
    rows only: a write empties it and keeps it from filling until its
    transaction is over (:meth:`Access.at_end`), and a read that overlapped a
    write (the epoch moved) is not kept.
    """

    CACHE_SIZE = 1024

    def __init__(self, access: Access) -> None:
        self._access = access
        self._cache: dict[tuple[str, str], ContactRecord | None] = {}
        self._lock = threading.Lock()
        self._epoch = 0  # moves at the start and the end of every write
        self._writing = 0  # writes whose transaction is not over yet
        self._names: dict[str, str] | None = None  # identity id -> name, as of the epoch

    def _changing(self) -> None:
        """Called inside each write, before it touches a row."""
        with self._lock:
            self._writing += 1
            self._epoch += 1
            self._cache.clear()
            self._names = None
        self._access.at_end(self._settled)

    def _settled(self) -> None:
        with self._lock:
            self._writing -= 1
            self._epoch += 1
            self._cache.clear()
            self._names = None

    def _cached(self, key: tuple[str, str], query: Prepared, index: str) -> ContactRecord | None:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            epoch = self._epoch
        record = self._one(query, CONTACTS.index(self._access.sealer, index, key[1]))
        with self._lock:
            if self._writing == 0 and self._epoch == epoch:
                if len(self._cache) >= self.CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = record
        return record

    def add(self, name: str, identity_id: str, card: bytes, added_at: float) -> ContactRecord:
        """Add a contact.

        Args:
            name: The local name; unique.
            identity_id: The contact's identity id; unique.
            card: The contact's public identity card.
            added_at: Seconds since the Unix epoch.

        Returns:
            The stored record.

        Raises:
            DuplicateError: The name or the identity id is already in the book.
            StorageUnavailableError: The database cannot be written.
        """
        record = ContactRecord(name=name, identity_id=identity_id, card=card, added_at=added_at)
        fields = {"name": name, "identity_id": identity_id, "card": card}
        row = CONTACTS.row(self._access.sealer, fields, {"added_at": added_at})
        with self._access.write("add contact") as conn:
            self._changing()
            try:
                conn.execute(insert(Contact).values(row))
            except IntegrityError as exc:
                raise DuplicateError(
                    f"a contact named {name!r} or with identity {identity_id!r} exists"
                ) from exc
        return record

    def get_by_name(self, name: str) -> ContactRecord | None:
        """Return the contact with local name ``name``, or None."""
        return self._cached(("name", name), _BY_NAME, "name_ix")

    def get_by_identity(self, identity_id: str) -> ContactRecord | None:
        """Return the contact with identity id ``identity_id``, or None."""
        return self._cached(("id", identity_id), _BY_ID, "id_ix")

    def list(self) -> builtins.list[ContactRecord]:
        """Return every contact, ordered by name."""
        with self._access.read("list contacts") as conn:
            rows = conn.execute(select(*_CONTACT_COLUMNS)).all()
        # Names are sealed, so the database cannot order them; an address book is small.
        return sorted((self._record(row._mapping) for row in rows), key=lambda c: c.name)

    def names(self) -> Mapping[str, str]:
        """Each contact's name by identity id; kept in memory (as the records) until a write."""
        with self._lock:
            if self._names is not None:
                return self._names
            epoch = self._epoch
        names = {contact.identity_id: contact.name for contact in self.list()}
        with self._lock:
            if self._writing == 0 and self._epoch == epoch:
                self._names = names
        return names

    def names_in_memory(self) -> Mapping[str, str] | None:
        """:meth:`names` if it is in memory, else None: never reads (for an event loop)."""
        with self._lock:
            return self._names

    def replace(self, identity_id: str, new_identity_id: str, card: bytes) -> ContactRecord | None:
        """Give the contact ``identity_id`` a new id and card, keeping its name and date.

        Used when a contact's identity key rotates (guardian recovery). The
        change is one transaction: the contact is never missing.

        Returns:
            The updated record, or None if no contact has ``identity_id``.

        Raises:
            DuplicateError: Another contact already has ``new_identity_id``.
            StorageUnavailableError: The database cannot be written.
        """
        ix = CONTACTS.index(self._access.sealer, "id_ix", identity_id)
        with self._access.write("replace contact") as conn:
            self._changing()
            row = conn.execute(select(*_CONTACT_COLUMNS).where(Contact.id_ix == ix)).one_or_none()
            if row is None:
                return None
            old = self._record(row._mapping)
            fields = {"name": old.name, "identity_id": new_identity_id, "card": card}
            new_row = CONTACTS.row(self._access.sealer, fields, {"added_at": old.added_at})
            conn.execute(delete(Contact).where(Contact.id_ix == ix))
            try:
                conn.execute(insert(Contact).values(new_row))
            except IntegrityError as exc:
                raise DuplicateError(f"a contact with identity {new_identity_id!r} exists") from exc
        return ContactRecord(old.name, new_identity_id, card, old.added_at)

    def remove(self, identity_id: str) -> bool:
        """Delete the contact with ``identity_id``; return whether one was stored."""
        ix = CONTACTS.index(self._access.sealer, "id_ix", identity_id)
        with self._access.write("remove contact") as conn:
            self._changing()
            return conn.execute(delete(Contact).where(Contact.id_ix == ix)).rowcount > 0

    def _one(self, query: Prepared, ix: bytes) -> ContactRecord | None:
        with self._access.read("get contact") as conn:
            row = query.one(conn, {"ix": ix})
        if row is None:
            return None
        return self._record({"id_ix": bytes(row[0]), "payload": bytes(row[1]), "added_at": row[2]})

    def _record(self, row: Mapping[Any, Any]) -> ContactRecord:
        fields = CONTACTS.fields(self._access.sealer, row)
        return ContactRecord(fields["name"], fields["identity_id"], fields["card"], row["added_at"])
