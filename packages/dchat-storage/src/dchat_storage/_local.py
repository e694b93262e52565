"""Repositories for the user's own data: the local identity and the contacts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from ._errors import DuplicateError
from ._records import ContactRecord, IdentityRecord
from ._schema import Contact, Identity

if TYPE_CHECKING:
    import builtins

    from ._access import Access

__all__ = ("ContactRepo", "IdentityRepo")

_IDENTITY_COLUMNS = (Identity.identity_id, Identity.keystore, Identity.card, Identity.created_at)
_CONTACT_COLUMNS = (Contact.name, Contact.identity_id, Contact.card, Contact.added_at)


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
        row = {
            "slot": 1,
            "identity_id": identity_id,
            "keystore": keystore,
            "card": card,
            "created_at": created_at,
        }
        with self._access.write("save identity") as conn:
            try:
                conn.execute(insert(Identity).values(row))
            except IntegrityError as exc:
                raise DuplicateError("a local identity is already stored") from exc

    def get(self) -> IdentityRecord | None:
        """Return the local identity, or None before :meth:`save`."""
        with self._access.read("get identity") as conn:
            row = conn.execute(select(*_IDENTITY_COLUMNS)).one_or_none()
        return None if row is None else IdentityRecord(*row)


class ContactRepo:
    """The address book. Obtain it as :attr:`Database.contacts`."""

    def __init__(self, access: Access) -> None:
        self._access = access

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
        row = {"name": name, "identity_id": identity_id, "card": card, "added_at": added_at}
        with self._access.write("add contact") as conn:
            try:
                conn.execute(insert(Contact).values(row))
            except IntegrityError as exc:
                raise DuplicateError(
                    f"a contact named {name!r} or with identity {identity_id!r} exists"
                ) from exc
        return record

    def get_by_name(self, name: str) -> ContactRecord | None:
        """Return the contact with local name ``name``, or None."""
        query = select(*_CONTACT_COLUMNS).where(Contact.name == name)
        with self._access.read("get contact") as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else ContactRecord(*row)

    def get_by_identity(self, identity_id: str) -> ContactRecord | None:
        """Return the contact with identity id ``identity_id``, or None."""
        query = select(*_CONTACT_COLUMNS).where(Contact.identity_id == identity_id)
        with self._access.read("get contact") as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else ContactRecord(*row)

    def list(self) -> builtins.list[ContactRecord]:
        """Return every contact, ordered by name."""
        query = select(*_CONTACT_COLUMNS).order_by(Contact.name)
        with self._access.read("list contacts") as conn:
            rows = conn.execute(query).all()
        return [ContactRecord(*row) for row in rows]
