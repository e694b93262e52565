"""Settings (key/value, both sealed) and devices of identities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from ._errors import DuplicateError, NotFoundError
from ._prepared import Prepared
from ._records import DeviceRecord
from ._rowcodec import SealedTable
from ._schema import DeviceRow, Setting

if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping

    from sqlalchemy import Connection

    from ._access import Access

__all__ = ("DEVICES", "SETTINGS", "DeviceRepo", "Encodes", "SettingsRepo")

SETTINGS = SealedTable(
    Setting, key="key_ix", indexes={"key_ix": ("setting", "key")}, ad=("key_ix",)
)
DEVICES = SealedTable(
    DeviceRow,
    key="seq",
    indexes={"owner_ix": ("identity-id", "owner_id"), "device_ix": ("device-id", "device_id")},
    ad=("owner_ix", "device_ix"),
)
# Prepared once: these run several times per message (the messaging engine's state).
# One upsert statement, in the syntax SQLite and PostgreSQL share.
_UPSERT = Prepared(
    "INSERT INTO settings (key_ix, payload, updated_at) VALUES (:key_ix, :payload, :updated_at)"
    " ON CONFLICT (key_ix) DO UPDATE SET payload = excluded.payload,"
    " updated_at = excluded.updated_at"
)


class Encodes(Protocol):
    """A value whose bytes are taken when it is written (:meth:`SettingsRepo.set_later`)."""

    def to_bytes(self) -> bytes: ...


_Held = tuple[str, bytes | Encodes | None, float]
"""A deferred setting: its key, its value (None: deleted) and the time it was set."""
_GET = Prepared("SELECT payload FROM settings WHERE key_ix = :key_ix")
_DELETE = Prepared("DELETE FROM settings WHERE key_ix = :key_ix")
_DEVICE_COLUMNS = (
    DeviceRow.owner_ix,
    DeviceRow.device_ix,
    DeviceRow.payload,
    DeviceRow.added_at,
    DeviceRow.revoked_at,
)


class SettingsRepo:
    """Private key/value settings. Obtain it as :attr:`Database.settings`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def set(self, key: str, value: bytes, now: float) -> None:
        """Store ``value`` under ``key``, replacing any previous value.

        Inside a write transaction the value is written (and sealed) once, at
        the commit, with the last value set for ``key`` (``Access.defer``).
        """
        if not self._access.defer(("setting", key), (key, value, now), self._flush):
            self._write(key, value, now)

    def set_later(self, key: str, value: Encodes, now: float) -> None:
        """Store ``value.to_bytes()`` under ``key``, taken when the transaction commits.

        For a value that changes in place and is set again and again in one
        transaction (a session record, set on every message): it is encoded
        once, at the commit, instead of once per set. The caller keeps
        ``value`` equal to what it means to store until then; in particular,
        if a savepoint level that changed it rolls back, the caller puts it
        back as it was (this repository forgets only what the level set).
        Reads of the same thread encode it as it is. Outside a write
        transaction it is written at once.
        """
        if not self._access.defer(("setting", key), (key, value, now), self._flush):
            self._write(key, value.to_bytes(), now)

    def get(self, key: str) -> bytes | None:
        """Return the value stored under ``key``, or None."""
        held = self._access.deferred(("setting", key))
        if held is not None:
            kept = cast("_Held", held[0])[1]
            return kept if kept is None or isinstance(kept, bytes) else kept.to_bytes()
        ix = SETTINGS.index(self._access.sealer, "key_ix", key)
        with self._access.read("get setting") as conn:
            found = _GET.one(conn, {"key_ix": ix})
        if found is None:
            return None
        row = {"key_ix": ix, "payload": bytes(found[0])}
        value: bytes = SETTINGS.fields(self._access.sealer, row)["value"]
        return value

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it was set."""
        held = self._access.deferred(("setting", key))
        if held is not None:  # set earlier in this transaction, or deleted (None)
            found = cast("_Held", held[0])[1] is not None
            self._access.defer(("setting", key), (key, None, 0.0), self._flush)
            return found
        ix = SETTINGS.index(self._access.sealer, "key_ix", key)
        with self._access.write("delete setting", savepoint=False) as conn:
            return int(_DELETE.run(conn, {"key_ix": ix}).rowcount) > 0

    def _write(self, key: str, value: bytes, now: float) -> None:
        row = SETTINGS.row(self._access.sealer, {"key": key, "value": value}, {"updated_at": now})
        with self._access.write("set setting", savepoint=False) as conn:
            _UPSERT.run(conn, row)

    def _flush(self, conn: Connection, held: object) -> None:
        """Write a deferred value (None: delete the key) in the committing transaction."""
        key, value, now = cast("_Held", held)
        if value is None:
            _DELETE.run(conn, {"key_ix": SETTINGS.index(self._access.sealer, "key_ix", key)})
        else:
            data = value if isinstance(value, bytes) else value.to_bytes()
            sealed = {"key": key, "value": data}
            _UPSERT.run(conn, SETTINGS.row(self._access.sealer, sealed, {"updated_at": now}))


class DeviceRepo:
    """Devices of identities (one's own, and contacts'). Obtain it as :attr:`Database.devices`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def add(
        self, owner_id: str, device_id: bytes, name: str, data: bytes, added_at: float
    ) -> DeviceRecord:
        """Register a device of ``owner_id``.

        Raises:
            DuplicateError: The owner already has a device with this id.
        """
        fields = {"owner_id": owner_id, "device_id": device_id, "name": name, "data": data}
        row = DEVICES.row(self._access.sealer, fields, {"added_at": added_at, "revoked_at": None})
        with self._access.write("add device") as conn:
            try:
                conn.execute(insert(DeviceRow).values(row))
            except IntegrityError as exc:
                raise DuplicateError(f"device {device_id.hex()} is already registered") from exc
        return DeviceRecord(owner_id, device_id, name, data, added_at, None)

    def revoke(self, owner_id: str, device_id: bytes, revoked_at: float) -> None:
        """Mark a device revoked; revoking twice keeps the first time.

        Raises:
            NotFoundError: No such device.
        """
        sealer = self._access.sealer
        where = (
            DeviceRow.owner_ix == DEVICES.index(sealer, "owner_ix", owner_id),
            DeviceRow.device_ix == DEVICES.index(sealer, "device_ix", device_id),
        )
        with self._access.write("revoke device") as conn:
            if conn.execute(select(DeviceRow.seq).where(*where)).one_or_none() is None:
                raise NotFoundError(f"device {device_id.hex()} is not registered")
            statement = update(DeviceRow).where(*where, DeviceRow.revoked_at.is_(None))
            conn.execute(statement.values(revoked_at=revoked_at))

    def list(self, owner_id: str, *, active_only: bool = False) -> builtins.list[DeviceRecord]:
        """Return the devices of ``owner_id`` in the order they were added."""
        ix = DEVICES.index(self._access.sealer, "owner_ix", owner_id)
        query = select(*_DEVICE_COLUMNS).where(DeviceRow.owner_ix == ix).order_by(DeviceRow.seq)
        if active_only:
            query = query.where(DeviceRow.revoked_at.is_(None))
        with self._access.read("list devices") as conn:
            rows = conn.execute(query).all()
        return [self._record(row._mapping) for row in rows]

    def _record(self, row: Mapping[Any, Any]) -> DeviceRecord:
        f = DEVICES.fields(self._access.sealer, row)
        return DeviceRecord(
            f["owner_id"], f["device_id"], f["name"], f["data"], row["added_at"], row["revoked_at"]
        )
