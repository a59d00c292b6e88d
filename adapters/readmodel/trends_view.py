"""SQL implementation of EmergingTrendsView: the latest row per key, written at flush.

The projection reports every recently active key once per closed bucket; only the last
report of each key in a batch matters, so rows are kept in memory and upserted in one
statement at flush (absolute values: re-applying a batch after a crash is harmless).
Alerts go through SqlAlertSink (insert once per alert id)."""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from adapters.readmodel.alerts_view import SqlAlertSink
from adapters.readmodel.tables import rm_emerging_trends
from adapters.readmodel.upsert import insert_for
from projections.emerging_trends import EmergingTrendsView

CHANGED = "emerging_trends"


class SqlEmergingTrendsView(SqlAlertSink, EmergingTrendsView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    def trend(
        self, kind: str, key: str, status: str, velocity: float, baseline: float,
        detections: int, detected_at: datetime | None, at: datetime,
    ) -> None:  # fmt: skip
        self.rows[(kind, key)] = {
            "kind": kind, "key": key, "status": status, "velocity": velocity,
            "baseline": baseline, "detections": detections,
            "detected_at": detected_at.astimezone(UTC) if detected_at else None,
            "updated_at": at.astimezone(UTC),
        }  # fmt: skip

    def flush(self) -> set[str]:
        if self.rows:
            stmt = insert_for(self.conn, rm_emerging_trends)
            columns = ("status", "velocity", "baseline", "detections", "detected_at", "updated_at")
            stmt = stmt.on_conflict_do_update(
                index_elements=["kind", "key"], set_={c: stmt.excluded[c] for c in columns}
            )
            self.conn.execute(stmt, list(self.rows.values()))
            self.changed.add(CHANGED)
        changed, self.changed, self.rows = self.changed, set(), {}
        return changed
