"""The event log clients follow (``GET /v1/events``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

One row per event, in commit order: ``seq`` is the client's cursor (SQLite
``AUTOINCREMENT``, so a number is never reused after the newest rows are
deleted), ``kind`` names the event, ``payload`` holds its sealed data, and a
``message`` event points at its message (deleted with it). Frozen snapshot:
the table is spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message_seq", _SEQ, nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["messages.seq"],
            name="fk_events_message_seq_messages",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_index("ix_events_message_seq", "events", ["message_seq"])


def downgrade() -> None:
    op.drop_table("events")
