"""SQL implementation of ModerationReader (SQLAlchemy Core, keyset pagination)."""

from collections.abc import Iterable
from datetime import UTC
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_case_timeline, rm_cases
from adapters.readmodel.times import as_utc
from queries.moderation import (
    CaseSummary,
    ModerationReader,
    QueueCursor,
    TimelineEntry,
    check_queue_args,
)

K = rm_cases.c
CHUNK = 400  # ids per IN (...) list


def _summary(row: Any) -> CaseSummary:
    return CaseSummary(
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
    )


def _after(cursor: QueueCursor) -> sa.ColumnElement[bool]:
    """Rows strictly after the cursor in queue order (score desc, opened_at, case_id)."""
    opened_at = cursor.opened_at.astimezone(UTC)  # compared as stored (UTC)
    return sa.or_(
        K.priority_score < cursor.priority_score,
        sa.and_(
            K.priority_score == cursor.priority_score,
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
        stmt = sa.select(rm_cases)
        if status is not None:
            stmt = stmt.where(K.status == status)
        if after is not None:
            stmt = stmt.where(_after(QueueCursor.decode(after)))
        stmt = stmt.order_by(K.priority_score.desc(), K.opened_at, K.case_id).limit(first + 1)
        rows = self._rows(stmt)
        items = [_summary(r) for r in rows[:first]]
        end = QueueCursor.after(items[-1]).encode() if items else None
        return items, end, len(rows) > first

    def case(self, case_id: UUID) -> CaseSummary | None:
        rows = self._rows(sa.select(rm_cases).where(K.case_id == case_id))
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
            for row in self._rows(sa.select(rm_cases).where(K.case_id.in_(wanted[i : i + CHUNK]))):
                found[row.case_id] = _summary(row)
        return found
