"""Read-model tables. The schema is owned by Alembic revisions in migrations/versions;
this module mirrors the latest revision for queries and views."""

import sqlalchemy as sa

metadata = sa.MetaData()
Ts = sa.DateTime(timezone=True)

projection_tracking = sa.Table(
    "projection_tracking",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", Ts, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)


def _counters() -> list[sa.Column]:
    return [
        sa.Column("views", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("likes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("shares", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("comments", sa.BigInteger, nullable=False, server_default="0"),
    ]


rm_creators = sa.Table(
    "rm_creators",
    metadata,
    sa.Column("creator_id", sa.Uuid, primary_key=True),
    sa.Column("handle", sa.String(32), nullable=False),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("region", sa.String(2), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("registered_at", Ts, nullable=False),
    sa.Column("strikes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("followers", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("videos", sa.Integer, nullable=False, server_default="0"),
    *_counters(),
    sa.Column("watch_seconds", sa.Float, nullable=False, server_default="0"),
)

rm_videos = sa.Table(
    "rm_videos",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("creator_id", sa.Uuid, nullable=False, index=True),
    sa.Column("caption", sa.Text, nullable=False),
    sa.Column("hashtags", sa.JSON, nullable=False),
    sa.Column("sound_id", sa.String(64), nullable=True, index=True),
    sa.Column("duration_seconds", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("published_at", Ts, nullable=False, index=True),
    *_counters(),
    sa.Column("unique_viewers", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("watch_seconds", sa.Float, nullable=False, server_default="0"),
    sa.Column("completions", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_engaged_at", Ts, nullable=True),
)

rm_hashtags = sa.Table(
    "rm_hashtags",
    metadata,
    sa.Column("tag", sa.String(100), primary_key=True),
    sa.Column("videos", sa.Integer, nullable=False, server_default="0"),
    *_counters(),
)

rm_sounds = sa.Table(
    "rm_sounds",
    metadata,
    sa.Column("sound_id", sa.String(64), primary_key=True),
    sa.Column("videos", sa.Integer, nullable=False, server_default="0"),
    *_counters(),
)

rm_view_pairs = sa.Table(
    "rm_view_pairs",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("viewer_id", sa.Uuid, primary_key=True),
)

rm_follow_pairs = sa.Table(
    "rm_follow_pairs",
    metadata,
    sa.Column("pair_id", sa.Uuid, primary_key=True),
    sa.Column("viewer_id", sa.Uuid, nullable=False),
    sa.Column("creator_id", sa.Uuid, nullable=False, index=True),
    sa.Column("following", sa.Boolean, nullable=False, server_default=sa.false()),
)

# -- trending (event-time windows) --------------------------------------------------------
rm_trend_buckets = sa.Table(
    "rm_trend_buckets",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),  # video | hashtag | sound
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),  # event time, minutes since epoch
    *_counters(),
    sa.Index("ix_rm_trend_buckets_kind_minute", "kind", "minute"),
)

rm_trend_videos = sa.Table(
    "rm_trend_videos",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("hashtags", sa.JSON, nullable=False),
    sa.Column("sound_id", sa.String(64), nullable=True),
    sa.Column("published_at", Ts, nullable=False),
)

rm_trend_meta = sa.Table(
    "rm_trend_meta",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),  # watermark_minute, late_dropped, ...
    sa.Column("value", sa.BigInteger, nullable=False),
)

# -- viewer sessions (session windows with an inactivity gap) ------------------------------
rm_viewer_sessions = sa.Table(
    "rm_viewer_sessions",
    metadata,
    sa.Column("viewer_id", sa.Uuid, primary_key=True),
    sa.Column("session_no", sa.Integer, primary_key=True),
    sa.Column("started_at", Ts, nullable=False),
    sa.Column("ended_at", Ts, nullable=False),
    sa.Column("views", sa.Integer, nullable=False, server_default="0"),
    sa.Column("videos_watched", sa.Integer, nullable=False, server_default="0"),
    sa.Column("watch_seconds", sa.Float, nullable=False, server_default="0"),
)

rm_session_videos = sa.Table(
    "rm_session_videos",
    metadata,
    sa.Column("viewer_id", sa.Uuid, primary_key=True),
    sa.Column("session_no", sa.Integer, primary_key=True),
    sa.Column("video_id", sa.Uuid, primary_key=True),
)

# -- moderation queue and case timelines ---------------------------------------------------
rm_cases = sa.Table(
    "rm_cases",
    metadata,
    sa.Column("case_id", sa.Uuid, primary_key=True),
    sa.Column("video_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("creator_id", sa.Uuid, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("reports", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_flag_score", sa.Float, nullable=False, server_default="0"),
    sa.Column("reach", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("priority_score", sa.Float, nullable=False, server_default="0"),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("appealed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("opened_at", Ts, nullable=False),
    sa.Column("updated_at", Ts, nullable=False),
    sa.Index("ix_rm_cases_status_score", "status", "priority_score"),
)

rm_case_timeline = sa.Table(
    "rm_case_timeline",
    metadata,
    sa.Column("case_id", sa.Uuid, primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("occurred_at", Ts, nullable=False),
    sa.Column("actor_id", sa.Uuid, nullable=True),
    sa.Column("details", sa.JSON, nullable=False),
)

rm_case_reach = sa.Table(
    "rm_case_reach",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("views", sa.BigInteger, nullable=False, server_default="0"),
)

# -- scale-out projections from Kafka (consumer groups) -------------------------------------
rm_kafka_video_engagement = sa.Table(
    "rm_kafka_video_engagement",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    *_counters(),
    sa.Column("unique_viewers", sa.BigInteger, nullable=False, server_default="0"),
    # integer milliseconds: sums are exact, so rows do not depend on how events were split
    # into batches and workers (float sums do, in their last bits)
    sa.Column("watch_ms", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("completions", sa.BigInteger, nullable=False, server_default="0"),
)

rm_kafka_view_pairs = sa.Table(
    "rm_kafka_view_pairs",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("viewer_id", sa.Uuid, primary_key=True),
)

# The consumed position of each partition, written in the read-model transaction that
# applied the messages before it: the source of truth for where a worker resumes.
kafka_offsets = sa.Table(
    "kafka_offsets",
    metadata,
    sa.Column("consumer_group", sa.String(255), primary_key=True),
    sa.Column("topic", sa.String(255), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
    # highest event-store position seen on the partition: drops relay re-publishes
    sa.Column("last_position", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("events", sa.BigInteger, nullable=False, server_default="0"),  # applied
    sa.Column("updated_at", Ts, nullable=True),
)

# -- online models: checkpoints, predictions, progressive metrics --------------------------
# A stateful projection's in-memory state (river models included), pickled and written in
# the same transaction as its position, so restarts resume exactly.
projection_checkpoints = sa.Table(
    "projection_checkpoints",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", Ts, nullable=True),
)

rm_virality = sa.Table(
    "rm_virality",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("predicted_at", Ts, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("labelled_at", Ts, nullable=True),
    sa.Column("viral", sa.Boolean, nullable=True),
    sa.Column("views_24h", sa.Integer, nullable=True),
)

rm_model_metrics = sa.Table(
    "rm_model_metrics",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("samples", sa.BigInteger, nullable=False),
)

rm_video_features = sa.Table(
    "rm_video_features",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("computed_at", Ts, nullable=False),  # event time of the last update
    sa.Column("features", sa.JSON, nullable=False),
)

rm_creator_features = sa.Table(
    "rm_creator_features",
    metadata,
    sa.Column("creator_id", sa.Uuid, primary_key=True),
    sa.Column("computed_at", Ts, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
)
