"""Read-model tables. The schema is owned by Alembic revisions in migrations/versions;
this module mirrors the latest revision for queries and views."""

from typing import Any

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
    # The profile is NULL until Creator.Registered is applied: keyed workers may count a
    # creator's videos first (migration 0011); readers skip such rows.
    sa.Column("handle", sa.String(32), nullable=True),
    sa.Column("display_name", sa.String(100), nullable=True),
    sa.Column("region", sa.String(2), nullable=True),
    sa.Column("status", sa.String(16), nullable=True),
    sa.Column("registered_at", Ts, nullable=True),
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
    # every event up to this position of the partition is applied (the relay's watermark
    # markers on the projection feeds): the group's position is the least over partitions
    sa.Column("complete_through", sa.BigInteger, nullable=False, server_default="0"),
)

# -- online models: checkpoints, predictions, progressive metrics --------------------------
# A stateful projection's in-memory state (river models included), pickled and written in
# the same transaction as its position, so restarts resume exactly.
# Events a projection could not apply and moved past (adapters/projections/quarantine.py):
# one row per projection and position, with the reason. A rebuild starts with none and
# tries every event again.
projection_quarantine = sa.Table(
    "projection_quarantine",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("originator_id", sa.String(36), nullable=False),
    sa.Column("originator_version", sa.BigInteger, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("quarantined_at", Ts, nullable=False),
)


projection_checkpoints = sa.Table(
    "projection_checkpoints",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", Ts, nullable=True),
)


def lz4_supported(conn: sa.Connection) -> bool:
    """Whether this PostgreSQL server can compress values with lz4 (PostgreSQL 14+, built
    with it)."""
    return bool(
        conn.exec_driver_sql(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).scalar()
    )


def _compress_checkpoints(target: sa.Table, conn: sa.Connection, **kw: Any) -> None:
    """Checkpoint states (the online models: hundreds of KB, rewritten often) compressed
    with lz4, several times faster than PostgreSQL's default pglz (migration 0008 for the
    live table; this for tables `create_all` makes, as a rebuild's shadow schema)."""
    if conn.dialect.name == "postgresql" and lz4_supported(conn):
        translate = conn.get_execution_options().get("schema_translate_map") or {}
        schema = translate.get(target.schema, target.schema)  # a rebuild's shadow schema
        quote = conn.dialect.identifier_preparer.quote
        name = f"{quote(schema)}.{quote(target.name)}" if schema else quote(target.name)
        conn.exec_driver_sql(f"ALTER TABLE {name} ALTER COLUMN state SET COMPRESSION lz4")


sa.event.listen(projection_checkpoints, "after_create", _compress_checkpoints)

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

# -- alerts (raised by rule and model projections; acted on by the alert-action worker) ----
rm_alerts = sa.Table(
    "rm_alerts",
    metadata,
    sa.Column("alert_id", sa.Uuid, primary_key=True),  # uuid5 of rule, subject and window
    sa.Column("rule", sa.String(32), nullable=False),  # bot_burst | report_spike | ...
    sa.Column("source", sa.String(64), nullable=False),  # the projection that raised it
    sa.Column("subject_type", sa.String(16), nullable=False),  # video | creator | hashtag | sound
    sa.Column("subject_id", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(8), nullable=False),  # info | warning | critical
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("raised_at", Ts, nullable=False),  # event time
    sa.Column("position", sa.BigInteger, nullable=False),  # the event that raised it
    sa.Column("action", sa.String(32), nullable=True),  # auto_flag | escalate | None
    sa.Column("action_status", sa.String(16), nullable=True),  # pending | done | failed
    sa.Column("action_result", sa.Text, nullable=True),
    sa.Column("acted_at", Ts, nullable=True),
    sa.Index("ix_rm_alerts_position", "position", "alert_id"),
    sa.Index("ix_rm_alerts_action_status", "action_status"),
)

# -- bot detector: per-video anomaly scores over per-minute vectors -------------------------
rm_video_anomaly = sa.Table(
    "rm_video_anomaly",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("scored_at", Ts, nullable=False),  # event time of the last scored minute
    sa.Column("score", sa.Float, nullable=False),  # of the last scored minute
    sa.Column("max_score", sa.Float, nullable=False),
    sa.Column("max_score_at", Ts, nullable=False),
    sa.Column("minutes", sa.Integer, nullable=False),  # minutes scored so far
    sa.Column("vector", sa.JSON, nullable=False),  # the last minute's feature vector
)

# -- moderation risk: P(open case ends in restrict/remove) ---------------------------------
rm_moderation_risk = sa.Table(
    "rm_moderation_risk",
    metadata,
    sa.Column("case_id", sa.Uuid, primary_key=True),
    sa.Column("video_id", sa.Uuid, nullable=False, index=True),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("predicted_at", Ts, nullable=False),  # event time
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),  # once decided
    sa.Column("decided_at", Ts, nullable=True),
)

# -- recommendations: matrix-factorisation factors, seen sets, the source bandit ----------
rm_reco_items = sa.Table(
    "rm_reco_items",
    metadata,
    sa.Column("video_id", sa.Uuid, primary_key=True),
    sa.Column("creator_id", sa.Uuid, nullable=False, index=True),
    sa.Column("published_at", Ts, nullable=False, index=True),
    sa.Column("bias", sa.Float, nullable=False, server_default="0"),
    sa.Column("factors", sa.JSON, nullable=False),
    sa.Column("popularity", sa.Float, nullable=False, server_default="0"),
    sa.Column("updated_at", Ts, nullable=False),  # event time
    sa.Column("position", sa.Integer, nullable=True),  # interned index: ties go to the lower
)

rm_reco_viewers = sa.Table(
    "rm_reco_viewers",
    metadata,
    sa.Column("viewer_id", sa.Uuid, primary_key=True),
    sa.Column("bias", sa.Float, nullable=False, server_default="0"),
    sa.Column("factors", sa.JSON, nullable=False),
    sa.Column("updated_at", Ts, nullable=False),
)

# A hashtag's views (and the row TOTAL = "": all tagged views) and its interned index.
rm_reco_tags = sa.Table(
    "rm_reco_tags",
    metadata,
    sa.Column("hashtag", sa.String(100), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("views", sa.Float, nullable=False),
)

# The projection's candidate pools (popular "", newest "#", per hashtag), as of updated_at,
# the projection's event-time watermark.
rm_reco_pools = sa.Table(
    "rm_reco_pools",
    metadata,
    sa.Column("pool", sa.String(100), primary_key=True),
    sa.Column("videos", sa.JSON, nullable=False),  # video ids, most popular first
    sa.Column("updated_at", Ts, nullable=False),
)

rm_reco_seen = sa.Table(
    "rm_reco_seen",
    metadata,
    sa.Column("viewer_id", sa.Uuid, primary_key=True),
    sa.Column("video_id", sa.Uuid, primary_key=True),
)

rm_reco_bandit = sa.Table(
    "rm_reco_bandit",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("state", sa.LargeBinary, nullable=False),  # the pickled river bandit policy
    sa.Column("arms", sa.JSON, nullable=False),  # {arm: {"pulls": n, "reward": r}}
    sa.Column("updated_at", Ts, nullable=False),
)

# -- emerging trends: drift detection on hashtag and sound velocity ------------------------
rm_emerging_trends = sa.Table(
    "rm_emerging_trends",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),  # hashtag | sound
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # emerging | steady
    sa.Column("velocity", sa.Float, nullable=False),  # views per hour, event time
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("detections", sa.Integer, nullable=False, server_default="0"),
    sa.Column("detected_at", Ts, nullable=True),
    sa.Column("updated_at", Ts, nullable=False),
)
