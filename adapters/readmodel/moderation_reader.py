"""SQL implementation of ModerationReader (SQLAlchemy Core, keyset pagination).

The queue is ordered by an effective priority that adds the moderation-risk model's
prediction (rm_moderation_risk, written by ModerationRiskProjection) to the rule-based
priority score of the moderation projection:

    effective_priority = priority_score + RISK_WEIGHT * (risk - NEUTRAL_RISK)

where `risk` is the latest predicted probability that the case ends in restrict/remove,
used only while the case is OPEN; a case without a prediction (the risk projection is
behind, or the case is not open) counts as NEUTRAL_RISK, i.e. it keeps exactly its
priority score. Additive rather than multiplicative because priority scores can be
negative (a case escalated to "low"), where a factor would push a riskier case DOWN.
RISK_WEIGHT = 4 makes a certain-harmful case (+2) outrank a certain-benign one (-2) by
about as much as two full-score auto-flags, while an escalation to critical (+5) still
outweighs the model alone.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_case_timeline, rm_cases, rm_moderation_risk
from adapters.readmodel.times import as_utc
from queries.moderation import (
    CaseSummary,
    ModerationReader,
    QueueCursor,
    TimelineEntry,
    check_queue_args,
)

K = rm_cases.c
R = rm_moderation_risk.c
CHUNK = 400  # ids per IN (...) list
RISK_WEIGHT = 4.0
NEUTRAL_RISK = 0.5

_open_risk = sa.case((K.status == "open", R.probability), else_=None)
effective_priority = K.priority_score + RISK_WEIGHT * (
    sa.func.coalesce(_open_risk, NEUTRAL_RISK) - NEUTRAL_RISK
)
_CASES = sa.select(
    rm_cases, R.probability.label("risk"), effective_priority.label("effective_priority")
).select_from(rm_cases.outerjoin(rm_moderation_risk, R.case_id == K.case_id))


@dataclass(frozen=True)
class RiskedCaseSummary(CaseSummary):
    """A case with the moderation-risk model's latest prediction (None: not predicted)."""

    risk: float | None = None
    effective_priority: float = 0.0  # the queue's order (see the module docstring)


def _summary(row: Any) -> RiskedCaseSummary:
    return RiskedCaseSummary(
        case_id=row.case_id,
        video_id=row.video_id,
        creator_id=row.creator_id,
        status=row.status,
        priority=row.priority,
        priority_score=float(row.priority_score),
        reports=int(row.reports),
        max_flag_score=float(row.max_flag_score),
        reach=int(row.reach),
        outcome=row.outcome,
        appealed=bool(row.appealed),
        opened_at=as_utc(row.opened_at),
        updated_at=as_utc(row.updated_at),
        risk=None if row.risk is None else float(row.risk),
        effective_priority=float(row.effective_priority),
    )


def _cursor(case: RiskedCaseSummary) -> QueueCursor:
    # The cursor's score slot holds the effective priority: cursors are opaque to clients.
    return QueueCursor(case.effective_priority, case.opened_at, case.case_id)


def _after(cursor: QueueCursor) -> sa.ColumnElement[bool]:
    """Rows strictly after the cursor in queue order (effective priority desc, opened_at,
    case_id)."""
    opened_at = cursor.opened_at.astimezone(UTC)  # compared as stored (UTC)
    return sa.or_(
        effective_priority < cursor.priority_score,
        sa.and_(
            effective_priority == cursor.priority_score,
            sa.or_(
                K.opened_at > opened_at,
                sa.and_(K.opened_at == opened_at, K.case_id > cursor.case_id),
            ),
        ),
    )


class SqlModerationReader(ModerationReader):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _rows(self, stmt: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(stmt))

    def queue(
        self, status: str | None, first: int, after: str | None
    ) -> tuple[list[CaseSummary], str | None, bool]:
        check_queue_args(status, first)
        stmt = _CASES
        if status is not None:
            stmt = stmt.where(K.status == status)
        if after is not None:
            stmt = stmt.where(_after(QueueCursor.decode(after)))
        stmt = stmt.order_by(effective_priority.desc(), K.opened_at, K.case_id).limit(first + 1)
        rows = self._rows(stmt)
        page = [_summary(r) for r in rows[:first]]
        end = _cursor(page[-1]).encode() if page else None
        return list[CaseSummary](page), end, len(rows) > first

    def case(self, case_id: UUID) -> CaseSummary | None:
        rows = self._rows(_CASES.where(K.case_id == case_id))
        return _summary(rows[0]) if rows else None

    def timeline(self, case_id: UUID) -> list[TimelineEntry]:
        T = rm_case_timeline.c
        rows = self._rows(
            sa.select(rm_case_timeline).where(T.case_id == case_id).order_by(T.position)
        )
        return [
            TimelineEntry(
                position=int(r.position),
                event_type=r.event_type,
                occurred_at=as_utc(r.occurred_at),
                actor_id=r.actor_id,
                details=dict(r.details),
            )
            for r in rows
        ]

    def cases_by_ids(self, ids: Iterable[UUID]) -> dict[UUID, CaseSummary]:
        wanted = list(dict.fromkeys(ids))
        found: dict[UUID, CaseSummary] = {}
        for i in range(0, len(wanted), CHUNK):
            for row in self._rows(_CASES.where(K.case_id.in_(wanted[i : i + CHUNK]))):
                found[row.case_id] = _summary(row)
        return found
