"""Unlocking a database's at-rest encryption, and sealing a clear database.

The ``storage_meta`` table records the mode (``clear`` or ``aead-v1``), the
storage key wrapped by the passphrase (Argon2id), and a *key check*: a
constant sealed under the key, so a wrong key is refused at open instead of
surfacing later as "corrupt" rows.

Opening a clear database with a key seals it: every sealed table is re-written
in one transaction (the same :class:`SealedTable` declarations the
repositories use), then SQLite's ``VACUUM`` rebuilds the file so the clear
pages do not survive in free space, and the WAL is truncated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sqlalchemy import Table, delete, insert, select, update

from ._attachments import ATTACHMENTS
from ._blobs import BLOBS
from ._conversations import CONVERSATIONS
from ._errors import InvalidArgumentError, LockedError, StorageCorruptError
from ._events import EVENTS
from ._local import CONTACTS, IDENTITY
from ._messages import MESSAGES, OUTBOX
from ._rowcodec import row_ad
from ._schema import BlobChunk, BlobRow, Meta
from ._sealing import AeadSealer, Sealer, StorageKey
from ._settings import DEVICES, SETTINGS
from ._terms import drop_search_index

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from dchat_crypto import KdfParams

    from ._access import Access
    from ._rowcodec import SealedTable

__all__ = ("unlock",)

CLEAR: Final = b"clear"
SEALED: Final = b"aead-v1"
_CHECK: Final = b"dchat-storage key check"
_TABLES: Final = (
    IDENTITY,
    CONTACTS,
    CONVERSATIONS,
    MESSAGES,
    OUTBOX,
    DEVICES,
    SETTINGS,
    EVENTS,
)
_BATCH: Final = 500


def _get(conn: Connection, name: str) -> bytes | None:
    value = conn.execute(select(Meta.value).where(Meta.name == name)).scalar_one_or_none()
    return None if value is None else bytes(value)


def _put(conn: Connection, name: str, value: bytes) -> None:
    conn.execute(delete(Meta).where(Meta.name == name))
    conn.execute(insert(Meta).values(name=name, value=value))


def unlock(
    access: Access,
    *,
    key: StorageKey | None,
    passphrase: str | bytes | None,
    params: KdfParams | None,
) -> None:
    """Set ``access.sealer`` for this database, sealing a clear one if a key is given.

    Raises:
        LockedError: Encrypted and no (or the wrong) key or passphrase; or the
            database has no wrapped key to unlock with a passphrase.
        InvalidArgumentError: Both ``key`` and ``passphrase`` were given.
    """
    if key is not None and passphrase is not None:
        raise InvalidArgumentError("give a storage key or a passphrase, not both")
    with access.read("read at-rest mode") as conn:
        mode, wrapped = _get(conn, "at_rest"), _get(conn, "wrapped_key")
    if mode != SEALED and key is None and passphrase is None:
        if mode is None:
            with access.write("record at-rest mode") as conn:
                now = _get(conn, "at_rest")  # re-read under the write lock
                if now == SEALED:
                    raise LockedError(
                        "the database is encrypted at rest: give its passphrase or key"
                    )
                if now is None:
                    _put(conn, "at_rest", CLEAR)
        return
    if mode != SEALED:
        if _seal_database(access, key or StorageKey.generate(), passphrase, params):
            return
        # Another process sealed it between our read and our write: unlock as usual.
        with access.read("read wrapped key") as conn:
            wrapped = _get(conn, "wrapped_key")
    access.sealer = _open_sealed(access, key, passphrase, wrapped)


def _open_sealed(
    access: Access, key: StorageKey | None, passphrase: str | bytes | None, wrapped: bytes | None
) -> AeadSealer:
    if key is None:
        if passphrase is None or wrapped is None:
            raise LockedError("the database is encrypted at rest: give its passphrase or key")
        key = StorageKey.unwrap(wrapped, passphrase)  # Argon2id: outside any transaction
    sealer = AeadSealer(key)
    with access.read("check storage key") as conn:
        check = _get(conn, "key_check")
    try:
        ok = check is not None and sealer.open("key-check", b"", check) == _CHECK
    except StorageCorruptError:  # the same opaque refusal as a mismatch
        ok = False
    if not ok:
        raise LockedError("cannot unlock the database: wrong passphrase?")
    return sealer


def _seal_database(
    access: Access, key: StorageKey, passphrase: str | bytes | None, params: KdfParams | None
) -> bool:
    """Seal a clear or new database under ``key``; False if it was sealed meanwhile."""
    wrapped = None
    if passphrase is not None:
        wrapped = key.wrap(passphrase) if params is None else key.wrap(passphrase, params=params)
    sealer = AeadSealer(key)
    with access.write("seal database") as conn:
        if _get(conn, "at_rest") == SEALED:
            return False
        moved = sum(_reseal(conn, spec, sealer) for spec in (*_TABLES, ATTACHMENTS))
        moved += _reseal_blobs(conn, sealer)
        drop_search_index(conn)  # its clear terms go; rebuilt under the key when first searched
        if wrapped is not None:
            _put(conn, "wrapped_key", wrapped)
        _put(conn, "key_check", sealer.seal("key-check", b"", _CHECK))
        _put(conn, "at_rest", SEALED)
    access.sealer = sealer
    if moved and access.dialect == "sqlite":
        _rebuild_sqlite(access)
    return True


def _reseal(conn: Connection, spec: SealedTable, sealer: AeadSealer) -> int:
    clear, table = Sealer(), spec.model.__table__
    assert isinstance(table, Table)
    key = table.c[spec.key]
    keys = list(conn.execute(select(key)).scalars())
    for start in range(0, len(keys), _BATCH):
        query = select(table).where(key.in_(keys[start : start + _BATCH]))
        for row in conn.execute(query).all():
            mapping = dict(row._mapping)
            fields = spec.fields(clear, mapping)
            clear_columns = {
                name: value
                for name, value in mapping.items()
                if name not in spec.indexes and name != "payload"
            }
            new = spec.row(sealer, fields, clear_columns)
            conn.execute(update(table).where(key == mapping[spec.key]).values(new))
    return len(keys)


def _reseal_blobs(conn: Connection, sealer: AeadSealer) -> int:
    """Seal blob metadata and every chunk; pending (unfinished) blobs are dropped."""
    pending = select(BlobRow.blob_id).where(BlobRow.content_ix.is_(None))
    conn.execute(delete(BlobChunk).where(BlobChunk.blob_id.in_(pending)))
    conn.execute(delete(BlobRow).where(BlobRow.content_ix.is_(None)))
    count = _reseal(conn, BLOBS, sealer)
    chunk_keys = conn.execute(select(BlobChunk.blob_id, BlobChunk.idx)).all()
    for blob_id, idx in chunk_keys:
        where = (BlobChunk.blob_id == blob_id, BlobChunk.idx == idx)
        data = conn.execute(select(BlobChunk.data).where(*where)).scalar_one()
        sealed = sealer.seal("blob-chunk", row_ad(bytes(blob_id), idx), bytes(data))
        conn.execute(update(BlobChunk).where(*where).values(data=sealed))
    return count + len(chunk_keys)


def _rebuild_sqlite(access: Access) -> None:
    # VACUUM rewrites every page (secure_delete zeroes freed ones too) and cannot
    # run inside a transaction: the driver is in autocommit mode outside BEGIN.
    with access.raw("rebuild after sealing") as dbapi_connection:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            cursor.close()
