"""SQL implementation of CommentModerationView: the case queue (rm_comment_cases), the
model's progressive metrics (rm_model_metrics) and its flags (rm_alerts, through
SqlAlertSink: one row per alert id, whose "flag_comment" action the worker carries out).

Rows are absolute: the last one per case in a batch is written at flush (re-applying a
batch is harmless)."""

from collections.abc import Callable
from datetime import UTC
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.alerts_view import SqlAlertSink
from adapters.readmodel.bulk import SET, upsert
from adapters.readmodel.comment_tables import rm_comment_cases
from adapters.readmodel.model_metrics import MetricBuffer
from projections.comment_moderation import CommentCaseRow, CommentModerationView

CHANGED = "comment_cases"
COLUMNS = ("case_id", "comment_id", "video_id", "author_id", "text", "probability", "status",
           "reports", "reasons", "flags", "flag_score", "outcome", "opened_at", "decided_at",
           "updated_at")  # fmt: skip


class SqlCommentModerationView(SqlAlertSink, CommentModerationView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()
        self.rows: dict[UUID, tuple[Any, ...]] = {}
        self.metrics = MetricBuffer()

    def comment_case(self, case_id: UUID, row: CommentCaseRow) -> None:
        self.rows[case_id] = (
            case_id, row.comment_id, row.video_id, row.author_id, row.text, row.probability,
            row.status, row.reports, row.reasons, row.flags, row.flag_score, row.outcome,
            row.opened_at.astimezone(UTC),
            row.decided_at.astimezone(UTC) if row.decided_at else None,
            row.updated_at.astimezone(UTC),
        )  # fmt: skip

    def metric(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None:
        self.metrics.add(model, name, samples, value)

    def flush(self) -> set[str]:
        if self.rows:
            upsert(self.conn, rm_comment_cases, COLUMNS, list(self.rows.values()),
                   key=("case_id",), update={c: SET for c in COLUMNS[1:]})  # fmt: skip
            self.changed.add(CHANGED)
        if self.metrics.flush(self.conn):
            self.changed.add("model_metrics")
        changed, self.changed, self.rows = self.changed, set(), {}
        return changed
