"""Query side of the moderation read models: DTOs, cursors and the reader interface."""

import base64
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.moderation import CaseStatus

CASE_STATUSES = frozenset(s.value for s in CaseStatus)


@dataclass(frozen=True)
class CaseSummary:
    case_id: UUID
    video_id: UUID
    creator_id: UUID
    status: str
    priority: str
    priority_score: float
    reports: int
    max_flag_score: float
    reach: int  # views of the video (live while the case is open, else as of its last event)
    outcome: str | None
    appealed: bool
    opened_at: datetime
    updated_at: datetime  # event time of the case's latest event


@dataclass(frozen=True)
class TimelineEntry:
    position: int  # global position of the event in the log
    event_type: str  # "Opened", "Reported", "AutoFlagged", "Escalated", "Decided", ...
    occurred_at: datetime
    actor_id: UUID | None  # reporter, moderator or appellant
    details: dict[str, Any]


@dataclass(frozen=True)
class QueueCursor:
    """Where a queue page ended, in queue order: score desc, opened_at, case_id."""

    priority_score: float
    opened_at: datetime
    case_id: UUID

    @classmethod
    def after(cls, case: CaseSummary) -> "QueueCursor":
        return cls(case.priority_score, case.opened_at, case.case_id)

    def encode(self) -> str:
        parts = [self.priority_score, self.opened_at.isoformat(), str(self.case_id)]
        return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()

    @classmethod
    def decode(cls, cursor: str) -> "QueueCursor":
        """Raises ValueError for a cursor this server did not make."""
        try:
            score, opened_at, case_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            decoded = cls(float(score), datetime.fromisoformat(opened_at), UUID(case_id))
        except Exception:
            raise ValueError("invalid cursor") from None
        if not math.isfinite(decoded.priority_score) or decoded.opened_at.tzinfo is None:
            raise ValueError("invalid cursor")
        return decoded


def check_queue_args(status: str | None, first: int) -> None:
    """Raises ValueError for arguments no reader accepts."""
    if status is not None and status not in CASE_STATUSES:
        raise ValueError(f"status must be one of {', '.join(sorted(CASE_STATUSES))}")
    if first < 0:
        raise ValueError("first must not be negative")


class ModerationReader(ABC):
    @abstractmethod
    def queue(
        self, status: str | None, first: int, after: str | None
    ) -> tuple[list[CaseSummary], str | None, bool]:
        """Cases with `status` (None: every status) by priority_score descending, then
        opened_at, then case_id; keyset pagination. Returns (items, end cursor — None
        when the page is empty —, has_next_page). Raises ValueError for a bad status,
        a negative `first` or a foreign cursor."""

    @abstractmethod
    def case(self, case_id: UUID) -> CaseSummary | None: ...

    @abstractmethod
    def timeline(self, case_id: UUID) -> list[TimelineEntry]:
        """Every event of the case, in log order (empty for an unknown case)."""

    @abstractmethod
    def cases_by_ids(self, ids: Iterable[UUID]) -> dict[UUID, CaseSummary]:
        """The known cases among `ids` (for batched loading, e.g. GraphQL dataloaders)."""
