"""SQL implementation of ModerationRiskView: rows accumulate in memory, written at flush.

A report wave makes dozens of predictions for one case within a batch; only the last
one per case is written (absolute values, so re-applying a batch is harmless).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import SET, upsert
from adapters.readmodel.model_metrics import MetricBuffer
from adapters.readmodel.tables import rm_moderation_risk
from projections.moderation_risk import ModerationRiskView

R = rm_moderation_risk.c
COLUMNS = ("case_id", "video_id", "probability", "predicted_at", "features", "outcome",
           "decided_at")  # fmt: skip
OUTCOME, DECIDED_AT = 5, 6


class SqlModerationRiskView(ModerationRiskView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.rows: dict[UUID, list[Any]] = {}  # full rows (upsert), in COLUMNS order
        self.decisions: dict[UUID, tuple[datetime, str]] = {}  # for rows written earlier
        self.metrics = MetricBuffer()

    def risk(
        self,
        case_id: UUID,
        video_id: UUID,
        at: datetime,
        probability: float,
        features: dict[str, float],
    ) -> None:
        self.decisions.pop(case_id, None)  # a new prediction: the case is open again
        self.rows[case_id] = [case_id, video_id, probability, at.astimezone(UTC), features,
                              None, None]  # fmt: skip

    def decided(self, case_id: UUID, at: datetime, outcome: str) -> None:
        row = self.rows.get(case_id)
        if row is not None:
            row[OUTCOME], row[DECIDED_AT] = outcome, at.astimezone(UTC)
        else:
            self.decisions[case_id] = (at.astimezone(UTC), outcome)

    def metric(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None:
        self.metrics.add(model, name, samples, value)

    def flush(self) -> set[str]:
        changed: set[str] = set()
        if self.rows:
            upsert(self.conn, rm_moderation_risk, COLUMNS, list(self.rows.values()),
                   key=("case_id",), update={c: SET for c in COLUMNS[1:]})  # fmt: skip
            changed.update(f"case:{k}" for k in self.rows)
        if self.decisions:  # rare: one per decision, on a row an earlier batch wrote
            self.conn.execute(
                rm_moderation_risk.update()
                .where(R.case_id == sa.bindparam("k"))
                .values(outcome=sa.bindparam("o"), decided_at=sa.bindparam("d")),
                [{"k": k, "o": o, "d": d} for k, (d, o) in self.decisions.items()],
            )
            changed.update(f"case:{k}" for k in self.decisions)
        if self.metrics.flush(self.conn):
            changed.add("model_metrics")
        if self.rows or self.decisions:
            changed.add("moderation")  # the risk reorders the queue: subscribers refresh
        self.rows, self.decisions = {}, {}
        return changed
