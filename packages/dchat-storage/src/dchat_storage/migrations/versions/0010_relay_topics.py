"""Broadcast channel topics a relay holds.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

``relay_topics`` has one row per topic (its post bytes and the newest channel
descriptor the relay was given); ``relay_topic_posts`` one row per post, its
``seq`` the relay's number for it, unique per topic by post id and by
publisher counter. An evicted post keeps its row with ``post`` NULL. Frozen
snapshot: the tables are spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "relay_topics",
        sa.Column("topic", sa.LargeBinary(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("desc_version", sa.BigInteger(), nullable=False),
        sa.Column("descriptor", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("topic", name="pk_relay_topics"),
    )
    op.create_table(
        "relay_topic_posts",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("topic", sa.LargeBinary(), nullable=False),
        sa.Column("post_id", sa.LargeBinary(), nullable=False),
        sa.Column("publisher", sa.LargeBinary(), nullable=False),
        sa.Column("pseq", sa.BigInteger(), nullable=False),
        sa.Column("post", sa.LargeBinary(), nullable=True),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_relay_topic_posts"),
        sa.UniqueConstraint("topic", "post_id", name="uq_relay_topic_posts_topic_post_id"),
        sa.UniqueConstraint(
            "topic", "publisher", "pseq", name="uq_relay_topic_posts_topic_publisher_pseq"
        ),
    )
    op.create_index("ix_relay_topic_posts_topic_seq", "relay_topic_posts", ["topic", "seq"])


def downgrade() -> None:
    op.drop_index("ix_relay_topic_posts_topic_seq", "relay_topic_posts")
    op.drop_table("relay_topic_posts")
    op.drop_table("relay_topics")
