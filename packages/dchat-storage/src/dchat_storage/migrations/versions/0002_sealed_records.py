"""Sealed payloads and blind indexes; conversations, devices, settings, attachments, chain.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

The four user tables of 0001 (identity, contacts, messages, outbox) are rebuilt
so that every private field lives in one ``payload`` column and look-ups go
through ``*_ix`` columns. Existing rows are carried over in clear mode (payload
= canonical CBOR, index = the raw value), which is what a 0001 database was;
opening it later with an at-rest key seals them (``_keyring.seal_existing``).

Frozen snapshot: tables are spelled out and the payload field names are fixed
here, independent of later model changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import op

from dchat_core import DecodeLimits, canonical_decode, canonical_encode

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 500
_LIMITS = DecodeLimits(max_size=64 << 20, max_depth=4, max_items=256)
Row = dict[str, Any]


def _seq() -> sa.Column[int]:
    return sa.Column("seq", _SEQ, autoincrement=True, nullable=False)


def _blob(name: str, *, nullable: bool = False) -> sa.Column[bytes]:
    return sa.Column(name, sa.LargeBinary(), nullable=nullable)


def _float(name: str, *, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Float(), nullable=nullable)


# -- head layout of the rebuilt tables -------------------------------------------------


def _create_identity() -> None:
    op.create_table(
        "identity",
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        _blob("payload"),
        _float("created_at"),
        sa.CheckConstraint("slot = 1", name="ck_identity_single_row"),
        sa.PrimaryKeyConstraint("slot", name="pk_identity"),
    )


def _create_contacts() -> None:
    op.create_table(
        "contacts",
        _blob("id_ix"),
        _blob("name_ix"),
        _blob("payload"),
        _float("added_at"),
        sa.PrimaryKeyConstraint("id_ix", name="pk_contacts"),
        sa.UniqueConstraint("name_ix", name="uq_contacts_name_ix"),
    )


def _create_messages() -> None:
    op.create_table(
        "messages",
        _seq(),
        _blob("message_ix"),
        sa.Column("direction", sa.String(length=3), nullable=False),
        _blob("peer_ix"),
        _blob("conv_ix"),
        _blob("payload"),
        _float("sent_at"),
        _float("stored_at"),
        _float("read_at", nullable=True),
        _float("expires_at", nullable=True),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_messages_direction"),
        sa.PrimaryKeyConstraint("seq", name="pk_messages"),
        sa.UniqueConstraint("message_ix", name="uq_messages_message_ix"),
    )
    for columns in (["peer_ix", "stored_at", "seq"], ["conv_ix", "stored_at", "seq"]):
        op.create_index(f"ix_messages_{'_'.join(columns)}", "messages", columns)
    op.create_index("ix_messages_stored_at_seq", "messages", ["stored_at", "seq"])
    op.create_index("ix_messages_expires_at", "messages", ["expires_at"])


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        _seq(),
        _blob("message_ix"),
        _blob("payload"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _float("enqueued_at"),
        _float("next_attempt_at"),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("message_ix", name="uq_outbox_message_ix"),
    )
    op.create_index("ix_outbox_next_attempt_at_seq", "outbox", ["next_attempt_at", "seq"])


# -- new tables ------------------------------------------------------------------------------


def _create_new_user_tables() -> None:
    op.create_table(
        "storage_meta",
        sa.Column("name", sa.String(length=64), nullable=False),
        _blob("value"),
        sa.PrimaryKeyConstraint("name", name="pk_storage_meta"),
    )
    op.create_table(
        "conversations",
        _blob("conv_ix"),
        _blob("payload"),
        _float("retention_s", nullable=True),
        _float("disappear_s", nullable=True),
        _float("created_at"),
        sa.PrimaryKeyConstraint("conv_ix", name="pk_conversations"),
    )
    op.create_table(
        "devices",
        _seq(),
        _blob("owner_ix"),
        _blob("device_ix"),
        _blob("payload"),
        _float("added_at"),
        _float("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_devices"),
        sa.UniqueConstraint("owner_ix", "device_ix", name="uq_devices_owner_ix_device_ix"),
    )
    op.create_table(
        "settings",
        _blob("key_ix"),
        _blob("payload"),
        _float("updated_at"),
        sa.PrimaryKeyConstraint("key_ix", name="pk_settings"),
    )


def _create_attachment_tables() -> None:
    op.create_table(
        "blobs",
        _blob("blob_id"),
        _blob("content_ix", nullable=True),
        _blob("payload", nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _float("created_at"),
        sa.PrimaryKeyConstraint("blob_id", name="pk_blobs"),
        sa.UniqueConstraint("content_ix", name="uq_blobs_content_ix"),
    )
    op.create_index("ix_blobs_created_at", "blobs", ["created_at"])
    op.create_table(
        "blob_chunks",
        _blob("blob_id"),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        _blob("data"),
        sa.ForeignKeyConstraint(
            ["blob_id"], ["blobs.blob_id"], name="fk_blob_chunks_blob_id_blobs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("blob_id", "idx", name="pk_blob_chunks"),
    )
    op.create_table(
        "attachments",
        _blob("attachment_id"),
        _blob("owner_ix"),
        _blob("blob_id"),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _blob("payload"),
        _float("created_at"),
        sa.ForeignKeyConstraint(
            ["blob_id"], ["blobs.blob_id"], name="fk_attachments_blob_id_blobs"
        ),
        sa.PrimaryKeyConstraint("attachment_id", name="pk_attachments"),
        sa.UniqueConstraint("owner_ix", "blob_id", name="uq_attachments_owner_ix_blob_id"),
    )
    op.create_index("ix_attachments_blob_id", "attachments", ["blob_id"])
    op.create_index("ix_attachments_created_at", "attachments", ["created_at"])
    op.create_table(
        "message_attachments",
        sa.Column("message_seq", _SEQ, nullable=False),
        _blob("attachment_id"),
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["messages.seq"],
            name="fk_message_attachments_message_seq_messages",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachments.attachment_id"],
            name="fk_message_attachments_attachment_id_attachments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_seq", "attachment_id", name="pk_message_attachments"),
    )
    op.create_index(
        "ix_message_attachments_attachment_id", "message_attachments", ["attachment_id"]
    )


def _create_server_tables() -> None:
    op.create_index("ix_mailbox_entries_received_at", "mailbox_entries", ["received_at"])
    op.create_table(
        "blocks",
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("height", sa.BigInteger(), autoincrement=False, nullable=False),
        _blob("hash"),
        _blob("data"),
        sa.PrimaryKeyConstraint("chain", "height", name="pk_blocks"),
        sa.UniqueConstraint("chain", "hash", name="uq_blocks_chain_hash"),
    )
    op.create_table(
        "chain_state",
        sa.Column("chain", sa.String(length=64), nullable=False),
        _blob("key"),
        _blob("value"),
        sa.PrimaryKeyConstraint("chain", "key", name="pk_chain_state"),
    )


# -- carrying rows over ------------------------------------------------------------------------


def _retire(table: str, constraints: tuple[str, ...], indexes: tuple[str, ...]) -> str:
    """Rename ``table`` out of the way, freeing its index and constraint names."""
    old = f"{table}_0001"
    for index in indexes:
        op.drop_index(index, table_name=table)
    op.rename_table(table, old)
    if op.get_bind().dialect.name != "sqlite":
        # PostgreSQL index names are schema-wide; SQLite's constraint names are not.
        for constraint in constraints:
            op.drop_constraint(constraint, old)
    return old


def _rows(old: str, order_by: str) -> Iterator[Row]:
    bind = op.get_bind()
    table = sa.table(old, *(sa.column(c["name"]) for c in _columns_of(old)))
    last: Any = None
    key = table.c[order_by]
    while True:
        query = sa.select(table).order_by(key).limit(_BATCH)
        if last is not None:
            query = query.where(key > last)
        batch = [dict(row._mapping) for row in bind.execute(query)]
        if not batch:
            return
        yield from batch
        last = batch[-1][order_by]


def _columns_of(table: str) -> list[Any]:
    return list(sa.inspect(op.get_bind()).get_columns(table))


def _copy(old: str, new: str, order_by: str, convert: Callable[[Row], Row]) -> None:
    bind = op.get_bind()
    batch: list[Row] = []
    target: sa.TableClause | None = None
    for row in _rows(old, order_by):
        converted = convert(row)
        if target is None:
            target = sa.table(new, *(sa.column(name) for name in converted))
        batch.append(converted)
        if len(batch) >= _BATCH:
            bind.execute(sa.insert(target), batch)
            batch = []
    if batch and target is not None:
        bind.execute(sa.insert(target), batch)
    op.drop_table(old)


def _reset_sequence(table: str) -> None:
    # Rows were copied with their seq; move the PostgreSQL sequence past them.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), "  # noqa: S608 - constant names
            f"COALESCE((SELECT MAX(seq) FROM {table}), 0) + 1, false)"
        )


def _pack(**fields: Any) -> bytes:
    return canonical_encode(fields)


def _unpack(payload: bytes) -> dict[str, Any]:
    value = canonical_decode(bytes(payload), _LIMITS)
    assert isinstance(value, dict)
    return value


def _identity_up(r: Row) -> Row:
    fields = _pack(identity_id=r["identity_id"], keystore=r["keystore"], card=r["card"])
    return {"slot": r["slot"], "payload": fields, "created_at": r["created_at"]}


def _contact_up(r: Row) -> Row:
    payload = _pack(name=r["name"], identity_id=r["identity_id"], card=r["card"])
    return {
        "id_ix": r["identity_id"].encode(),
        "name_ix": r["name"].encode(),
        "payload": payload,
        "added_at": r["added_at"],
    }


def _message_up(r: Row) -> Row:
    peer = r["peer_id"]
    payload = _pack(message_id=r["message_id"], peer_id=peer, conversation_id=peer, body=r["body"])
    return {
        "seq": r["seq"],
        "message_ix": r["message_id"],
        "direction": r["direction"],
        "peer_ix": peer.encode(),
        "conv_ix": peer.encode(),
        "payload": payload,
        "sent_at": r["sent_at"],
        "stored_at": r["stored_at"],
        "read_at": None,
        "expires_at": None,
    }


def _outbox_up(r: Row) -> Row:
    payload = _pack(
        message_id=r["message_id"], relay=r["relay"], mailbox=r["mailbox"], envelope=r["envelope"]
    )
    return {
        "seq": r["seq"],
        "message_ix": r["message_id"],
        "payload": payload,
        "attempts": r["attempts"],
        "enqueued_at": r["enqueued_at"],
        "next_attempt_at": r["next_attempt_at"],
    }


def upgrade() -> None:
    old = _retire("identity", ("pk_identity",), ())
    _create_identity()
    _copy(old, "identity", "slot", _identity_up)
    old = _retire("contacts", ("pk_contacts", "uq_contacts_name"), ())
    _create_contacts()
    _copy(old, "contacts", "identity_id", _contact_up)
    indexes: tuple[str, ...] = ("ix_messages_peer_id_stored_at_seq", "ix_messages_stored_at_seq")
    old = _retire("messages", ("pk_messages", "uq_messages_message_id"), indexes)
    _create_messages()
    _copy(old, "messages", "seq", _message_up)
    _reset_sequence("messages")
    indexes = ("ix_outbox_next_attempt_at_seq",)
    old = _retire("outbox", ("pk_outbox", "uq_outbox_message_id"), indexes)
    _create_outbox()
    _copy(old, "outbox", "seq", _outbox_up)
    _reset_sequence("outbox")
    _create_new_user_tables()
    _create_attachment_tables()
    _create_server_tables()


# -- downgrade (clear-mode databases only) ------------------------------------------------


def _refuse_if_sealed() -> None:
    meta = sa.table("storage_meta", sa.column("name"), sa.column("value"))
    mode = (
        op.get_bind()
        .execute(sa.select(meta.c.value).where(meta.c.name == "at_rest"))
        .scalar_one_or_none()
    )
    if mode is not None and bytes(mode) != b"clear":
        raise RuntimeError("an encrypted-at-rest database cannot be downgraded below 0002")


def _identity_down(r: Row) -> Row:
    p = _unpack(r["payload"])
    return {
        "slot": r["slot"],
        "identity_id": p["identity_id"],
        "keystore": p["keystore"],
        "card": p["card"],
        "created_at": r["created_at"],
    }


def _contact_down(r: Row) -> Row:
    p = _unpack(r["payload"])
    return {
        "identity_id": p["identity_id"],
        "name": p["name"],
        "card": p["card"],
        "added_at": r["added_at"],
    }


def _message_down(r: Row) -> Row:
    p = _unpack(r["payload"])
    return {
        "seq": r["seq"],
        "message_id": p["message_id"],
        "direction": r["direction"],
        "peer_id": p["peer_id"],
        "body": p["body"],
        "sent_at": r["sent_at"],
        "stored_at": r["stored_at"],
    }


def _outbox_down(r: Row) -> Row:
    p = _unpack(r["payload"])
    return {
        "seq": r["seq"],
        "message_id": p["message_id"],
        "relay": p["relay"],
        "mailbox": p["mailbox"],
        "envelope": p["envelope"],
        "attempts": r["attempts"],
        "enqueued_at": r["enqueued_at"],
        "next_attempt_at": r["next_attempt_at"],
    }


def _create_v1(table: str) -> None:
    """Recreate a 0001 table by running that revision's statements for it alone."""
    v1: dict[str, Callable[[], object]] = {
        "identity": lambda: op.create_table(
            "identity",
            sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("identity_id", sa.String(length=128), nullable=False),
            _blob("keystore"),
            _blob("card"),
            _float("created_at"),
            sa.CheckConstraint("slot = 1", name="ck_identity_single_row"),
            sa.PrimaryKeyConstraint("slot", name="pk_identity"),
        ),
        "contacts": lambda: op.create_table(
            "contacts",
            sa.Column("identity_id", sa.String(length=128), nullable=False),
            sa.Column("name", sa.String(length=256), nullable=False),
            _blob("card"),
            _float("added_at"),
            sa.PrimaryKeyConstraint("identity_id", name="pk_contacts"),
            sa.UniqueConstraint("name", name="uq_contacts_name"),
        ),
        "messages": _create_messages_v1,
        "outbox": _create_outbox_v1,
    }
    v1[table]()


def _create_messages_v1() -> None:
    op.create_table(
        "messages",
        _seq(),
        _blob("message_id"),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("peer_id", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _float("sent_at"),
        _float("stored_at"),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_messages_direction"),
        sa.PrimaryKeyConstraint("seq", name="pk_messages"),
        sa.UniqueConstraint("message_id", name="uq_messages_message_id"),
    )
    op.create_index(
        "ix_messages_peer_id_stored_at_seq", "messages", ["peer_id", "stored_at", "seq"]
    )
    op.create_index("ix_messages_stored_at_seq", "messages", ["stored_at", "seq"])


def _create_outbox_v1() -> None:
    op.create_table(
        "outbox",
        _seq(),
        _blob("message_id"),
        sa.Column("relay", sa.String(length=512), nullable=False),
        _blob("mailbox"),
        _blob("envelope"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _float("enqueued_at"),
        _float("next_attempt_at"),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_next_attempt_at_seq", "outbox", ["next_attempt_at", "seq"])


def downgrade() -> None:
    _refuse_if_sealed()
    for table in (
        "chain_state",
        "blocks",
        "message_attachments",
        "attachments",
        "blob_chunks",
        "blobs",
        "settings",
        "devices",
        "conversations",
        "storage_meta",
    ):
        op.drop_table(table)
    op.drop_index("ix_mailbox_entries_received_at", table_name="mailbox_entries")
    steps: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str, Callable[[Row], Row]], ...]
    steps = (
        ("identity", ("pk_identity",), (), "slot", _identity_down),
        ("contacts", ("pk_contacts", "uq_contacts_name_ix"), (), "id_ix", _contact_down),
        (
            "messages",
            ("pk_messages", "uq_messages_message_ix"),
            (
                "ix_messages_peer_ix_stored_at_seq",
                "ix_messages_conv_ix_stored_at_seq",
                "ix_messages_stored_at_seq",
                "ix_messages_expires_at",
            ),
            "seq",
            _message_down,
        ),
        (
            "outbox",
            ("pk_outbox", "uq_outbox_message_ix"),
            ("ix_outbox_next_attempt_at_seq",),
            "seq",
            _outbox_down,
        ),
    )
    for table, constraints, indexes, order_by, convert in steps:
        old = _retire(table, constraints, indexes)
        _create_v1(table)
        _copy(old, table, order_by, convert)
    _reset_sequence("messages")
    _reset_sequence("outbox")
