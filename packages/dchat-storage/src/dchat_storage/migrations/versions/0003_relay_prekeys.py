"""Relay-hosted prekey bundles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

One row per signed prekey bundle a relay holds for a mailbox: one-time bundles
keyed by their prekey id, and one last-resort bundle with a NULL prekey id
(kept single by a partial unique index, since NULLs never collide in a unique
constraint). Frozen snapshot: the table is spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LAST_RESORT = sa.text("prekey_id IS NULL")


def upgrade() -> None:
    op.create_table(
        "relay_prekeys",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("mailbox", sa.LargeBinary(), nullable=False),
        sa.Column("prekey_id", sa.BigInteger(), nullable=True),
        sa.Column("bundle", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_relay_prekeys"),
        sa.UniqueConstraint("mailbox", "prekey_id", name="uq_relay_prekeys_mailbox_prekey_id"),
    )
    op.create_index(
        "uq_relay_prekeys_last_resort",
        "relay_prekeys",
        ["mailbox"],
        unique=True,
        sqlite_where=_LAST_RESORT,
        postgresql_where=_LAST_RESORT,
    )


def downgrade() -> None:
    op.drop_table("relay_prekeys")
