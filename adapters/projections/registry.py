"""Every projection ReelPulse runs, with the SQL view it writes through and the rows it
owns (what a reset deletes before a rebuild)."""

from typing import Any

import sqlalchemy as sa

from adapters.projections.reset import Owned
from adapters.projections.runner import ProjectionSpec
from adapters.readmodel import comment_tables as ct
from adapters.readmodel import sentiment_tables as st
from adapters.readmodel import tables as t
from adapters.readmodel.alert_rules_view import SqlAlertRulesView
from adapters.readmodel.anomaly_view import SqlBotDetectorView
from adapters.readmodel.comment_view import SqlCommentModerationView
from adapters.readmodel.features_view import SqlEngagementFeaturesView
from adapters.readmodel.moderation_view import moderation_view_factory
from adapters.readmodel.reco_view import SqlRecommendationsView
from adapters.readmodel.risk_view import SqlModerationRiskView
from adapters.readmodel.sentiment_view import SqlSentimentView
from adapters.readmodel.sessions_view import SqlSessionsView
from adapters.readmodel.stats_view import SqlStatsView
from adapters.readmodel.trending_view import SqlTrendingView
from adapters.readmodel.trends_view import SqlEmergingTrendsView
from adapters.readmodel.virality_view import SqlViralityView
from adapters.sentiment import VaderScorer
from projections.alert_rules import AlertRulesProjection
from projections.bot_detector import BotDetectorProjection
from projections.comment_moderation import CommentModerationProjection
from projections.emerging_trends import EmergingTrendsProjection
from projections.engagement_features import EngagementFeaturesProjection
from projections.moderation_queue import ModerationQueueProjection
from projections.moderation_risk import ModerationRiskProjection
from projections.recommendations import RecommendationsProjection
from projections.sentiment import SentimentProjection
from projections.sessions import SessionsProjection
from projections.stats import StatsProjection
from projections.trending import TrendingProjection
from projections.virality import ViralityProjection


def projection_specs() -> list[ProjectionSpec]:
    def stats_view(conn: sa.Connection) -> Any:
        return SqlStatsView(conn)

    moderation = ModerationQueueProjection()
    return [
        ProjectionSpec(StatsProjection(), stats_view),
        ProjectionSpec(moderation, moderation_view_factory(moderation)),
        ProjectionSpec(TrendingProjection(), lambda conn: SqlTrendingView(conn)),
        ProjectionSpec(SessionsProjection(), lambda conn: SqlSessionsView(conn)),
        ProjectionSpec(ViralityProjection(), lambda conn: SqlViralityView(conn)),
        ProjectionSpec(
            EngagementFeaturesProjection(), lambda conn: SqlEngagementFeaturesView(conn)
        ),
        ProjectionSpec(RecommendationsProjection(), lambda conn: SqlRecommendationsView(conn)),
        ProjectionSpec(ModerationRiskProjection(), lambda conn: SqlModerationRiskView(conn)),
        ProjectionSpec(BotDetectorProjection(), lambda conn: SqlBotDetectorView(conn)),
        ProjectionSpec(EmergingTrendsProjection(), lambda conn: SqlEmergingTrendsView(conn)),
        ProjectionSpec(AlertRulesProjection(), lambda conn: SqlAlertRulesView(conn)),
        ProjectionSpec(CommentModerationProjection(), lambda conn: SqlCommentModerationView(conn)),
        ProjectionSpec(SentimentProjection(VaderScorer()), lambda conn: SqlSentimentView(conn)),
    ]


def _metrics_of(*models: str) -> Owned:
    return Owned(t.rm_model_metrics, lambda table: table.c.model.in_(models))


def _alerts_from(source: str) -> Owned:
    return Owned(t.rm_alerts, lambda table: table.c.source == source)


# What each projection writes. Shared tables (metrics, alerts) are split by model/source.
OWNED_ROWS: dict[str, tuple[Owned, ...]] = {
    "stats": tuple(
        Owned(x)
        for x in (
            t.rm_creators,
            t.rm_videos,
            t.rm_hashtags,
            t.rm_sounds,
            t.rm_view_pairs,
            t.rm_follow_pairs,
        )
    ),
    "moderation": (Owned(t.rm_cases), Owned(t.rm_case_timeline), Owned(t.rm_case_reach)),
    "trending": (Owned(t.rm_trend_buckets), Owned(t.rm_trend_videos), Owned(t.rm_trend_meta)),
    "sessions": (Owned(t.rm_viewer_sessions), Owned(t.rm_session_videos)),
    "virality": (Owned(t.rm_virality), _metrics_of("virality", "virality_base_rate")),
    "engagement_features": (Owned(t.rm_video_features), Owned(t.rm_creator_features)),
    "recommendations": (
        Owned(t.rm_reco_items),
        Owned(t.rm_reco_viewers),
        Owned(t.rm_reco_seen),
        Owned(t.rm_reco_bandit),
        Owned(t.rm_reco_tags),
        Owned(t.rm_reco_pools),
        _metrics_of("recommendations", "recommendations_baseline"),
    ),
    "moderation_risk": (
        Owned(t.rm_moderation_risk),
        _metrics_of("moderation_risk", "moderation_risk_base_rate"),
    ),
    "bot_detector": (Owned(t.rm_video_anomaly), _alerts_from("bot_detector")),
    "emerging_trends": (Owned(t.rm_emerging_trends), _alerts_from("emerging_trends")),
    "alert_rules": (_alerts_from("alert_rules"),),
    "comment_moderation": (
        Owned(ct.rm_comment_cases),
        _metrics_of("comment_moderation", "comment_moderation_base_rate"),
        _alerts_from("comment_moderation"),
    ),
    "sentiment": (
        Owned(st.rm_comment_sentiment),
        Owned(st.rm_sentiment_buckets),
        Owned(st.rm_sentiment_videos),
        _alerts_from("sentiment"),
    ),
}
