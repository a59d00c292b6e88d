"""Every projection ReelPulse runs, with the SQL view it writes through."""

from typing import Any

import sqlalchemy as sa

from adapters.projections.runner import ProjectionSpec
from adapters.readmodel.stats_view import SqlStatsView
from projections.stats import StatsProjection


def projection_specs() -> list[ProjectionSpec]:
    def stats_view(conn: sa.Connection) -> Any:
        return SqlStatsView(conn)

    return [ProjectionSpec(StatsProjection(), stats_view)]
