"""read models: video engagement projected from Kafka, stored consumer offsets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rm_kafka_video_engagement",
        sa.Column("video_id", sa.Uuid(), nullable=False),
        sa.Column("views", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("likes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("shares", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("comments", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("unique_viewers", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("watch_ms", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completions", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("video_id"),
    )
    op.create_table(
        "rm_kafka_view_pairs",
        sa.Column("video_id", sa.Uuid(), nullable=False),
        sa.Column("viewer_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("video_id", "viewer_id"),
    )
    op.create_table(
        "kafka_offsets",
        sa.Column("consumer_group", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("events", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("consumer_group", "topic", "partition"),
    )


def downgrade() -> None:
    op.drop_table("kafka_offsets")
    op.drop_table("rm_kafka_view_pairs")
    op.drop_table("rm_kafka_video_engagement")
