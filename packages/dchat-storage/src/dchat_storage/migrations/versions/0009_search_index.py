"""The local search index: blind word tokens per message.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

``search_terms`` holds one row per distinct word of a stored message: the
word's blind index (keyed BLAKE2b under the database's ``search-term`` index
key) and the message's ``seq``, clustered by token; ``search_pending`` the
same rows for messages stored since the last search, clustered by message
(the next search merges them). Rows go with their message (ON DELETE
CASCADE). The index of messages stored before this revision is built the
first time a search runs (``storage_meta`` ``search_index`` marks it built).
Frozen snapshot: the table is spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "search_terms",
        sa.Column("term_ix", sa.LargeBinary(), nullable=False),
        sa.Column("message_seq", _SEQ, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["messages.seq"],
            name="fk_search_terms_message_seq_messages",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("term_ix", "message_seq", name="pk_search_terms"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_search_terms_message_seq", "search_terms", ["message_seq"])
    op.create_table(
        "search_pending",
        sa.Column("message_seq", _SEQ, nullable=False),
        sa.Column("term_ix", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["messages.seq"],
            name="fk_search_pending_message_seq_messages",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_seq", "term_ix", name="pk_search_pending"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("search_pending")
    op.drop_index("ix_search_terms_message_seq", "search_terms")
    op.drop_table("search_terms")
