"""SQL implementation of SessionsView: a batch's sessions are kept in memory and written
once at flush: the session videos and the sessions in one statement on PostgreSQL
(bulk.write_counting_new counts each session's new videos)."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import ADD, ADD_MS, SET, qualified, raw_query, write_counting_new
from adapters.readmodel.tables import rm_session_videos, rm_viewer_sessions
from adapters.readmodel.times import as_utc
from domain.engagement import Engagement
from projections.sessions import SessionState, SessionsView

S, SV = rm_viewer_sessions.c, rm_session_videos.c
PREFETCH_CHUNK = 500
_UNKNOWN = object()  # a viewer whose latest session was never read
SESSION_VIDEO_COLUMNS = ("viewer_id", "session_no", "video_id")
SESSION_COLUMNS = ("viewer_id", "session_no", "started_at", "ended_at", "views", "watch_seconds")
# watch time in whole milliseconds (bulk.ADD_MS): the same sum whatever the batch splits
SESSION_UPDATE = {"ended_at": SET, "views": ADD, "watch_seconds": ADD_MS}


class _Touched:
    """A session changed in this batch: its times and the batch's deltas (one per new
    session of the batch: a plain class with slots, cheaper to build than a dataclass)."""

    __slots__ = ("ended_at", "session_no", "started_at", "videos", "views", "watch_ms")

    def __init__(self, session_no: int, started_at: datetime, ended_at: datetime) -> None:
        self.session_no = session_no
        self.started_at = started_at
        self.ended_at = ended_at
        self.views = 0
        self.watch_ms = 0
        self.videos: set[UUID] = set()


class SqlSessionsView(SessionsView):
    """One instance per read-model transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._latest: dict[UUID, SessionState | None] = {}
        self._touched: dict[tuple[UUID, int], _Touched] = {}
        # The viewer's latest session when this batch touched it: one lookup per view.
        self._current: dict[UUID, _Touched] = {}

    def latest_session(self, viewer_id: UUID) -> SessionState | None:
        found = self._latest.get(viewer_id, _UNKNOWN)
        if found is not _UNKNOWN:  # read by prefetch, or written by this batch
            return found  # type: ignore[return-value]
        row = self.conn.execute(
            sa.select(S.session_no, S.started_at, S.ended_at)
            .where(S.viewer_id == viewer_id)
            .order_by(S.session_no.desc())
            .limit(1)
        ).first()
        state = (
            SessionState(row.session_no, as_utc(row.started_at), as_utc(row.ended_at))
            if row
            else None
        )
        self._latest[viewer_id] = state
        return state

    def prefetch(self, events: Sequence[Any]) -> None:
        """Every viewer's latest session for the batch's views, in one query."""
        viewers = list(
            dict.fromkeys(
                e.viewer_id
                for e in events
                if isinstance(e, Engagement.Viewed) and e.viewer_id not in self._latest
            )
        )
        if not viewers:
            return
        if self.conn.dialect.name == "postgresql":
            rows = raw_query(
                self.conn,
                "SELECT DISTINCT ON (viewer_id) viewer_id, session_no, started_at, ended_at "
                f"FROM {qualified(self.conn, rm_viewer_sessions)} "
                "WHERE viewer_id = ANY(%b::uuid[]) ORDER BY viewer_id, session_no DESC",
                (viewers,),
            )
        else:
            rows = self._latest_rows(viewers)
        found = {v: SessionState(n, as_utc(start), as_utc(end)) for v, n, start, end in rows}
        for viewer in viewers:
            self._latest[viewer] = found.get(viewer)

    def _latest_rows(self, viewers: list[UUID]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(viewers), PREFETCH_CHUNK):
            chunk = viewers[i : i + PREFETCH_CHUNK]
            latest = (
                sa.select(S.viewer_id, sa.func.max(S.session_no).label("n"))
                .where(S.viewer_id.in_(chunk))
                .group_by(S.viewer_id)
                .subquery()
            )
            rows = self.conn.execute(
                sa.select(S.viewer_id, S.session_no, S.started_at, S.ended_at).join(
                    latest, sa.and_(S.viewer_id == latest.c.viewer_id, S.session_no == latest.c.n)
                )
            )
            out.extend(tuple(r) for r in rows)
        return out

    def start_session(self, viewer_id: UUID, session_no: int, at: datetime) -> None:
        if at.tzinfo is not UTC:  # event times are UTC already: as_utc only when not
            at = as_utc(at)
        self._latest[viewer_id] = SessionState(session_no, at, at)
        touched = _Touched(session_no, at, at)
        self._touched[(viewer_id, session_no)] = self._current[viewer_id] = touched

    def extend_session(self, viewer_id: UUID, session_no: int, ended_at: datetime) -> None:
        touched = self._current.get(viewer_id)
        if touched is None or touched.session_no != session_no:
            touched = self._touch(viewer_id, session_no)
        if ended_at.tzinfo is not UTC:
            ended_at = as_utc(ended_at)
        touched.ended_at = ended_at
        self._latest[viewer_id] = SessionState(session_no, touched.started_at, ended_at)

    def add_view(
        self, viewer_id: UUID, session_no: int, video_id: UUID, watch_seconds: float
    ) -> None:
        touched = self._current.get(viewer_id)
        if touched is None or touched.session_no != session_no:
            touched = self._touch(viewer_id, session_no)
        touched.views += 1
        touched.watch_ms += round(watch_seconds * 1000)
        touched.videos.add(video_id)

    def _touch(self, viewer_id: UUID, session_no: int) -> _Touched:
        """The batch's record of the viewer's latest session, which must be `session_no`
        (the projection's contract)."""
        current = self._current.get(viewer_id)
        if current is not None and current.session_no == session_no:
            return current  # only start_session makes a session the latest
        state = self.latest_session(viewer_id)
        if state is None or state.session_no != session_no:
            raise ValueError(f"session {session_no} of {viewer_id} is not the latest")
        key = (viewer_id, session_no)
        touched = self._touched.get(key)
        if touched is None:
            touched = self._touched[key] = _Touched(session_no, state.started_at, state.ended_at)
        self._current[viewer_id] = touched
        return touched

    def flush(self) -> set[str]:
        """Write the batch; return {"sessions:<viewer_id>"} per viewer it changed."""
        if not self._touched:
            return set()
        touched, self._touched = self._touched, {}
        # The session videos first (a CTE of the same statement on PostgreSQL): the insert
        # skips videos a session already had, and each session's distinct-video count
        # grows by the new ones only.
        pairs = [(v, n, video) for (v, n), t in touched.items() for video in t.videos]
        rows = [
            (v, n, t.started_at, t.ended_at, t.views, t.watch_ms / 1000)
            for (v, n), t in touched.items()
        ]
        write_counting_new(
            self.conn, rm_viewer_sessions, SESSION_COLUMNS, rows,
            key=("viewer_id", "session_no"), update=SESSION_UPDATE, count="videos_watched",
            children=rm_session_videos, child_columns=SESSION_VIDEO_COLUMNS, child_rows=pairs,
        )  # fmt: skip
        return {f"sessions:{v}" for v in dict.fromkeys(v for v, _ in touched)}
