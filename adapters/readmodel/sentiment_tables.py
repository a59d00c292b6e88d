"""Read-model tables of audience sentiment (SentimentProjection, migration 0012)."""

import sqlalchemy as sa

from adapters.readmodel.tables import Ts, metadata


def _tallies() -> list[sa.Column]:
    return [
        sa.Column("comments", sa.Integer, nullable=False, server_default="0"),
        sa.Column("scored", sa.Integer, nullable=False, server_default="0"),
        sa.Column("positive", sa.Integer, nullable=False, server_default="0"),
        sa.Column("negative", sa.Integer, nullable=False, server_default="0"),
        sa.Column("neutral", sa.Integer, nullable=False, server_default="0"),
        sa.Column("compound_sum", sa.Float, nullable=False, server_default="0"),
    ]


# One row per comment: its language and score (NULL label: counted, not scored).
rm_comment_sentiment = sa.Table(
    "rm_comment_sentiment",
    metadata,
    sa.Column("comment_id", sa.Uuid, primary_key=True),
    sa.Column("video_id", sa.Uuid, nullable=False, index=True),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("label", sa.String(8), nullable=True),  # positive | negative | neutral
    sa.Column("compound", sa.Float, nullable=True),
    sa.Column("commented_at", Ts, nullable=False),
)

# Tumbling event-time buckets (15 minutes) per video, creator, hashtag and sound; kept
# for the projection's retention (72 h), so any window up to that is a sum of buckets.
rm_sentiment_buckets = sa.Table(
    "rm_sentiment_buckets",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),  # video | creator | hashtag | sound
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("bucket_start", Ts, primary_key=True, index=True),
    *_tallies(),
    sa.Column("last_at", Ts, nullable=False),
)

# A video's turning-negative state, after its latest scored comment.
rm_sentiment_videos = sa.Table(
    "rm_sentiment_videos",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # turning_negative | steady
    sa.Column("recent_comments", sa.Integer, nullable=False),
    sa.Column("recent_mean", sa.Float, nullable=False),
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("turns", sa.Integer, nullable=False, server_default="0"),
    sa.Column("turned_at", Ts, nullable=True),
    sa.Column("updated_at", Ts, nullable=False),
)
