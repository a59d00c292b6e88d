"""SqlSessionsReader: a viewer's sessions, newest first."""

from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_viewer_sessions
from adapters.readmodel.times import as_utc
from queries.sessions import SessionsReader, ViewerSession, check_first

S = rm_viewer_sessions.c


class SqlSessionsReader(SessionsReader):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def viewer_sessions(self, viewer_id: UUID, first: int) -> list[ViewerSession]:
        stmt = (
            sa.select(rm_viewer_sessions)
            .where(S.viewer_id == viewer_id)
            .order_by(S.session_no.desc())
            .limit(check_first(first))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            ViewerSession(
                viewer_id=r.viewer_id,
                session_no=r.session_no,
                started_at=as_utc(r.started_at),
                ended_at=as_utc(r.ended_at),
                views=r.views,
                videos_watched=r.videos_watched,
                watch_seconds=float(r.watch_seconds),
            )
            for r in rows
        ]
