"""SessionsProjection: viewing sessions per viewer (session windows in event time).

A session is a run of a viewer's views without a pause of SESSION_GAP or more. Rules, per
Engagement.Viewed in log order:

- no session yet                                -> session 1 starts at the view;
- view - ended_at of the latest session < GAP   -> the view belongs to it, and
                                                   ended_at = max(ended_at, view);
- otherwise (a pause of GAP or more)            -> session_no + 1 starts at the view.

A pause of exactly SESSION_GAP starts a new session (the gap is half-open, as in Flink's
session windows). Out-of-order views: one inside the latest session, or within the gap
after it, joins it. Simplification: a view OLDER than the latest session's start is also
counted in the latest session (views, videos, watch time) without moving started_at;
it is not re-assigned to an earlier session, and sessions never overlap or merge. Clients
send views within seconds, so such stragglers are rare.
"""

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.engagement import Engagement
from projections.base import Projection

SESSION_GAP = timedelta(minutes=30)


class SessionState(NamedTuple):
    session_no: int
    started_at: datetime
    ended_at: datetime


class SessionsView(ABC):
    """Transaction-scoped storage for viewer sessions."""

    @abstractmethod
    def latest_session(self, viewer_id: UUID) -> SessionState | None: ...

    @abstractmethod
    def start_session(self, viewer_id: UUID, session_no: int, at: datetime) -> None:
        """Open session `session_no` with started_at = ended_at = `at` and no views."""

    @abstractmethod
    def extend_session(self, viewer_id: UUID, session_no: int, ended_at: datetime) -> None: ...

    @abstractmethod
    def add_view(
        self, viewer_id: UUID, session_no: int, video_id: UUID, watch_seconds: float
    ) -> None:
        """Count one view; a video counts once per session in videos_watched."""


class SessionsProjection(Projection[SessionsView]):
    name = "sessions"
    partition_by = "viewer"
    topics = (get_topic(Engagement.Viewed),)

    def process(self, event: Any, position: int, view: SessionsView) -> None:
        if not isinstance(event, Engagement.Viewed):
            return
        viewer, at = event.viewer_id, event.occurred_at
        latest = view.latest_session(viewer)
        if latest is None or at - latest.ended_at >= SESSION_GAP:
            session_no = 1 if latest is None else latest.session_no + 1
            view.start_session(viewer, session_no, at)
        else:
            session_no = latest.session_no
            if at > latest.ended_at:
                view.extend_session(viewer, session_no, at)
        view.add_view(viewer, session_no, event.video_id, event.watch_seconds)
