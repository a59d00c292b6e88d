"""Reads rm_comment_cases: the comment moderation queue.

Open cases come first by what a moderator should see first: flagged by the model, then
the model's probability, then reports; decided cases (status "decided") newest first."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.comment_tables import rm_comment_cases
from adapters.readmodel.times import as_utc

STATUSES = ("open", "decided")
MAX_PAGE = 100


@dataclass(frozen=True)
class CommentCaseDTO:
    case_id: UUID
    comment_id: UUID
    video_id: UUID
    author_id: UUID | None
    text: str | None
    probability: float | None
    status: str
    reports: int
    reasons: dict[str, int]
    flags: int
    flag_score: float | None
    outcome: str | None
    opened_at: datetime
    decided_at: datetime | None
    updated_at: datetime


def comment_cases(
    conn: sa.Connection, status: str = "open", first: int = 20, video_id: UUID | None = None
) -> list[CommentCaseDTO]:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    if not 1 <= first <= MAX_PAGE:
        raise ValueError(f"first must be between 1 and {MAX_PAGE}")
    c = rm_comment_cases.c
    query = sa.select(rm_comment_cases).where(c.status == status)
    if video_id is not None:
        query = query.where(c.video_id == video_id)
    if status == "open":
        order = [(c.flags > 0).desc(), sa.func.coalesce(c.probability, 0.0).desc(),
                 c.reports.desc(), c.opened_at, c.case_id]  # fmt: skip
    else:
        order = [c.decided_at.desc(), c.case_id]
    return [_dto(r) for r in conn.execute(query.order_by(*order).limit(first))]


def _dto(r: sa.Row) -> CommentCaseDTO:
    return CommentCaseDTO(
        case_id=r.case_id, comment_id=r.comment_id, video_id=r.video_id, author_id=r.author_id,
        text=r.text, probability=r.probability, status=r.status, reports=r.reports,
        reasons=dict(r.reasons or {}), flags=r.flags, flag_score=r.flag_score,
        outcome=r.outcome, opened_at=as_utc(r.opened_at),
        decided_at=as_utc(r.decided_at) if r.decided_at else None,
        updated_at=as_utc(r.updated_at),
    )  # fmt: skip
