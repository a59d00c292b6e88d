"""SQL implementation of EmergingTrendsView: the latest row per key, written at flush.

The projection reports every recently active key once per closed bucket; only the last
report of each key in a batch matters, so rows are kept in memory and written with one
statement at flush (bulk.upsert; absolute values: re-applying a batch after a crash is
harmless). Alerts go through SqlAlertSink (insert once per alert id)."""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from adapters.readmodel.alerts_view import SqlAlertSink
from adapters.readmodel.bulk import SET, upsert
from adapters.readmodel.tables import rm_emerging_trends
from projections.emerging_trends import EmergingTrendsView

CHANGED = "emerging_trends"
COLUMNS = ("kind", "key", "status", "velocity", "baseline", "detections", "detected_at",
           "updated_at")  # fmt: skip


class SqlEmergingTrendsView(SqlAlertSink, EmergingTrendsView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()
        self.rows: dict[tuple[str, str], tuple[Any, ...]] = {}

    def trend(
        self, kind: str, key: str, status: str, velocity: float, baseline: float,
        detections: int, detected_at: datetime | None, at: datetime,
    ) -> None:  # fmt: skip
        self.rows[(kind, key)] = (
            kind, key, status, velocity, baseline, detections,
            detected_at.astimezone(UTC) if detected_at else None, at.astimezone(UTC),
        )  # fmt: skip

    def flush(self) -> set[str]:
        if self.rows:
            upsert(self.conn, rm_emerging_trends, COLUMNS, list(self.rows.values()),
                   key=COLUMNS[:2], update={c: SET for c in COLUMNS[2:]})  # fmt: skip
            self.changed.add(CHANGED)
        changed, self.changed, self.rows = self.changed, set(), {}
        return changed
