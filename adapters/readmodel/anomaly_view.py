"""SQL implementation of BotDetectorView: rm_video_anomaly and rm_alerts.

Scored minutes are accumulated per video in memory and written at flush() in one
executemany upsert (the latest minute wins; totals come absolute from the projection),
so the projection costs one round-trip per batch, not one per minute, and re-applying a
batch rewrites the same values. Alerts go through SqlAlertSink (insert once by id).
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.alerts_view import SqlAlertSink
from adapters.readmodel.tables import rm_video_anomaly
from adapters.readmodel.upsert import insert_for
from projections.bot_detector import BotDetectorView

_UPDATED = ("scored_at", "score", "max_score", "max_score_at", "minutes", "vector")


class SqlBotDetectorView(SqlAlertSink, BotDetectorView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()
        self._rows: dict[UUID, dict[str, Any]] = {}

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
        self._rows[video_id] = {
            "video_id": video_id,
            "scored_at": minute_at.astimezone(UTC),
            "score": score,
            "max_score": max_score,
            "max_score_at": max_score_at.astimezone(UTC),
            "minutes": minutes,
            "vector": dict(vector),
        }

    def flush(self) -> set[str]:
        if self._rows:
            stmt = insert_for(self.conn, rm_video_anomaly)
            stmt = stmt.on_conflict_do_update(
                index_elements=["video_id"], set_={c: stmt.excluded[c] for c in _UPDATED}
            )
            self.conn.execute(stmt, list(self._rows.values()))
            self.changed.update(f"anomaly:{video_id}" for video_id in self._rows)
            self._rows = {}
        changed, self.changed = self.changed, set()
        return changed
