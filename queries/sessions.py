"""Viewer sessions: runs of views without a pause of 30 minutes or more (event time).

See projections/sessions.py for how views are assigned to sessions.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.errors import InvalidValue

MAX_FIRST = 100


@dataclass(frozen=True)
class ViewerSession:
    viewer_id: UUID
    session_no: int  # 1, 2, ... per viewer, in the order sessions started
    started_at: datetime  # event time of the view that opened the session (UTC)
    ended_at: datetime  # event time of its latest view (UTC)
    views: int
    videos_watched: int  # distinct videos
    watch_seconds: float

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


class SessionsReader(ABC):
    @abstractmethod
    def viewer_sessions(self, viewer_id: UUID, first: int) -> list[ViewerSession]:
        """The viewer's `first` most recent sessions, newest (highest session_no) first."""


def check_first(first: int) -> int:
    if not 1 <= first <= MAX_FIRST:
        raise InvalidValue(f"first must be 1-{MAX_FIRST}", code="invalid_first")
    return first
