"""Every projection ReelPulse runs, with the SQL view it writes through."""

from typing import Any

import sqlalchemy as sa

from adapters.projections.runner import ProjectionSpec
from adapters.readmodel.features_view import SqlEngagementFeaturesView
from adapters.readmodel.moderation_view import moderation_view_factory
from adapters.readmodel.sessions_view import SqlSessionsView
from adapters.readmodel.stats_view import SqlStatsView
from adapters.readmodel.trending_view import SqlTrendingView
from adapters.readmodel.virality_view import SqlViralityView
from projections.engagement_features import EngagementFeaturesProjection
from projections.moderation_queue import ModerationQueueProjection
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
    ]
