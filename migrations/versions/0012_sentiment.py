"""Audience sentiment read models (issue 17): per-comment scores, event-time buckets per
video, creator, hashtag and sound, and each video's turning-negative state

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Ts = sa.DateTime(timezone=True)


def _tallies() -> list[sa.Column]:
    return [
        sa.Column("comments", sa.Integer(), server_default="0", nullable=False),
        sa.Column("scored", sa.Integer(), server_default="0", nullable=False),
        sa.Column("positive", sa.Integer(), server_default="0", nullable=False),
        sa.Column("negative", sa.Integer(), server_default="0", nullable=False),
        sa.Column("neutral", sa.Integer(), server_default="0", nullable=False),
        sa.Column("compound_sum", sa.Float(), server_default="0", nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rm_comment_sentiment",
        sa.Column("comment_id", sa.Uuid(), nullable=False),
        sa.Column("video_id", sa.Uuid(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("label", sa.String(length=8), nullable=True),
        sa.Column("compound", sa.Float(), nullable=True),
        sa.Column("commented_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("comment_id"),
    )
    op.create_index(op.f("ix_rm_comment_sentiment_video_id"), "rm_comment_sentiment", ["video_id"])
    op.create_table(
        "rm_sentiment_buckets",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("bucket_start", Ts, nullable=False),
        *_tallies(),
        sa.Column("last_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", "bucket_start"),
    )
    op.create_index(
        op.f("ix_rm_sentiment_buckets_bucket_start"), "rm_sentiment_buckets", ["bucket_start"]
    )
    op.create_table(
        "rm_sentiment_videos",
        sa.Column("video_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recent_comments", sa.Integer(), nullable=False),
        sa.Column("recent_mean", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("turns", sa.Integer(), server_default="0", nullable=False),
        sa.Column("turned_at", Ts, nullable=True),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("video_id"),
    )
    op.create_index(op.f("ix_rm_sentiment_videos_status"), "rm_sentiment_videos", ["status"])


def downgrade() -> None:
    op.drop_table("rm_sentiment_videos")
    op.drop_table("rm_sentiment_buckets")
    op.drop_table("rm_comment_sentiment")
