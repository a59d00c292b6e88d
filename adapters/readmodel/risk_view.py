"""SQL implementation of ModerationRiskView: rows accumulate in memory, written at flush.

A report wave makes dozens of predictions for one case within a batch; only the last
one per case is written (absolute values, so re-applying a batch is harmless).
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_moderation_risk
from adapters.readmodel.upsert import insert_for, write_metrics
from projections.moderation_risk import ModerationRiskView

R = rm_moderation_risk.c
UPDATED = ("video_id", "probability", "predicted_at", "features", "outcome", "decided_at")


class SqlModerationRiskView(ModerationRiskView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()
        self.rows: dict[UUID, dict[str, Any]] = {}  # full rows (upsert)
        self.decisions: dict[UUID, tuple[datetime, str]] = {}  # for rows written earlier
        self.metrics: dict[tuple[str, str], tuple[float, int]] = {}

    def risk(
        self,
        case_id: UUID,
        video_id: UUID,
        at: datetime,
        probability: float,
        features: dict[str, float],
    ) -> None:
        self.decisions.pop(case_id, None)  # a new prediction: the case is open again
        self.rows[case_id] = {
            "case_id": case_id,
            "video_id": video_id,
            "probability": probability,
            "predicted_at": at.astimezone(UTC),
            "features": features,
            "outcome": None,
            "decided_at": None,
        }

    def decided(self, case_id: UUID, at: datetime, outcome: str) -> None:
        row = self.rows.get(case_id)
        if row is not None:
            row["outcome"], row["decided_at"] = outcome, at.astimezone(UTC)
        else:
            self.decisions[case_id] = (at.astimezone(UTC), outcome)

    def metric(self, model: str, name: str, value: float, samples: int) -> None:
        self.metrics[(model, name)] = (value, samples)

    def flush(self) -> set[str]:
        if self.rows:
            stmt = insert_for(self.conn, rm_moderation_risk)
            stmt = stmt.on_conflict_do_update(
                index_elements=["case_id"],
                set_={c: stmt.excluded[c] for c in UPDATED},
            )
            self.conn.execute(stmt, list(self.rows.values()))
            self.changed.update(f"case:{k}" for k in self.rows)
        if self.decisions:
            self.conn.execute(
                rm_moderation_risk.update()
                .where(R.case_id == sa.bindparam("k"))
                .values(outcome=sa.bindparam("o"), decided_at=sa.bindparam("d")),
                [{"k": k, "o": o, "d": d} for k, (d, o) in self.decisions.items()],
            )
            self.changed.update(f"case:{k}" for k in self.decisions)
        if self.metrics:
            write_metrics(self.conn, self.metrics)
            self.changed.add("model_metrics")
        if self.rows or self.decisions:
            self.changed.add("moderation")  # the risk reorders the queue: subscribers refresh
        self.rows, self.decisions, self.metrics = {}, {}, {}
        changed, self.changed = self.changed, set()
        return changed
