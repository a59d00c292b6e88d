"""SQL implementation of BotDetectorView: rm_video_anomaly and rm_alerts.

Scored minutes are accumulated per video in memory and written at flush() with one
statement (bulk.upsert; the latest minute wins; totals come absolute from the
projection), so re-applying a batch rewrites the same values. Alerts go through
SqlAlertSink (insert once by id).
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.alerts_view import SqlAlertSink
from adapters.readmodel.bulk import SET, upsert
from adapters.readmodel.tables import rm_video_anomaly
from projections.bot_detector import BotDetectorView

COLUMNS = ("video_id", "scored_at", "score", "max_score", "max_score_at", "minutes", "vector")


class SqlBotDetectorView(SqlAlertSink, BotDetectorView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()
        self._rows: dict[UUID, tuple[Any, ...]] = {}

    def score(
        self,
        video_id: UUID,
        minute_at: datetime,
        score: float,
        vector: dict[str, float],
        *,
        minutes: int,
        max_score: float,
        max_score_at: datetime,
    ) -> None:
        self._rows[video_id] = (video_id, minute_at.astimezone(UTC), score, max_score,
                                max_score_at.astimezone(UTC), minutes, dict(vector))  # fmt: skip

    def flush(self) -> set[str]:
        if self._rows:
            upsert(self.conn, rm_video_anomaly, COLUMNS, list(self._rows.values()),
                   key=COLUMNS[:1], update={c: SET for c in COLUMNS[1:]})  # fmt: skip
            self.changed.update(f"anomaly:{video_id}" for video_id in self._rows)
            self._rows = {}
        changed, self.changed = self.changed, set()
        return changed
