"""SQL implementation of ModerationView: cases and view counts in memory, written at flush."""

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import ADD, SET, qualified, raw_query, upsert
from adapters.readmodel.tables import rm_case_reach, rm_case_timeline, rm_cases
from adapters.readmodel.times import as_utc
from projections.moderation_queue import (
    CaseState,
    ModerationQueueProjection,
    ModerationView,
    TimelineRow,
)

CASE_COLUMNS = tuple(c.name for c in rm_cases.columns)
CASE_UPDATE = {c: SET for c in CASE_COLUMNS if c != "case_id"}
TIMELINE_COLUMNS = ("case_id", "position", "event_type", "occurred_at", "actor_id", "details")
CHUNK = 400  # ids per IN (...) list, well below every driver's parameter limit


def _chunks(ids: Iterable[Any]) -> Iterable[list[Any]]:
    items = list(ids)
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


class _Row(dict[str, Any]):
    """A row read by name (`row.stored`), like SQLAlchemy's."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


def case_from_row(row: Any) -> CaseState:
    values = {c: getattr(row, c) for c in CASE_COLUMNS}
    values["opened_at"] = as_utc(values["opened_at"])
    values["updated_at"] = as_utc(values["updated_at"])
    return CaseState(**values)


class SqlModerationView(ModerationView):
    """One instance per transaction. Cases touched by the batch stay in memory and are
    upserted once at flush; views are summed per video and added once at flush."""

    def __init__(self, conn: sa.Connection, projection: ModerationQueueProjection) -> None:
        self.conn = conn
        self.projection = projection
        self._cases: dict[UUID, CaseState] = {}
        self._changed: dict[UUID, None] = {}  # insertion-ordered set
        self._timeline: list[dict[str, Any]] = []
        self._views: dict[UUID, int] = defaultdict(int)  # this batch's views per video
        self._stored_views: dict[UUID, int] = {}  # rm_case_reach before this batch

    # -- ModerationView ----------------------------------------------------------------------
    def get_case(self, case_id: UUID) -> CaseState | None:
        if case_id not in self._cases:
            row = self.conn.execute(
                sa.select(rm_cases).where(rm_cases.c.case_id == case_id)
            ).first()
            if row is None:
                return None
            self._cases[case_id] = case_from_row(row)
        return self._cases[case_id]

    def put_case(self, case: CaseState) -> None:
        self._cases[case.case_id] = case
        self._changed[case.case_id] = None

    def add_timeline(self, row: TimelineRow) -> None:
        self._timeline.append(
            dict(
                case_id=row.case_id,
                position=row.position,
                event_type=row.event_type,
                occurred_at=as_utc(row.occurred_at),
                actor_id=row.actor_id,
                details=row.details,
            )
        )

    def count_view(self, video_id: UUID) -> None:
        self._views[video_id] += 1

    def reach(self, video_id: UUID) -> int:
        if video_id not in self._stored_views:
            stored = self.conn.execute(
                sa.select(rm_case_reach.c.views).where(rm_case_reach.c.video_id == video_id)
            ).scalar()
            self._stored_views[video_id] = int(stored or 0)
        return self._stored_views[video_id] + self._views.get(video_id, 0)

    # -- flush ------------------------------------------------------------------------------
    def flush(self) -> set[str]:
        """Write the batch; return change keys ("moderation", "case:<id>") for subscriptions."""
        if self._views:
            self._refresh_open_cases()  # reads stored counts: before they are updated
            upsert(self.conn, rm_case_reach, ("video_id", "views"), list(self._views.items()),
                   key=("video_id",), update={"views": ADD})  # fmt: skip
        self._write_cases()
        if self._timeline:
            rows = [tuple(t[c] for c in TIMELINE_COLUMNS) for t in self._timeline]
            upsert(self.conn, rm_case_timeline, TIMELINE_COLUMNS, rows, key=("case_id", "position"))
        changed = {f"case:{c}" for c in self._changed}
        if changed:
            changed.add("moderation")
        self._changed.clear()
        self._timeline.clear()
        self._views.clear()
        self._stored_views.clear()
        self._cases.clear()
        return changed

    def _refresh_open_cases(self) -> None:
        """Give open cases whose video got views in this batch their new reach."""
        in_memory = {c.video_id: c for c in self._cases.values()}
        for case in in_memory.values():
            if case.video_id in self._views:
                self._reach_changed(case, self.reach(case.video_id))
        others = [v for v in self._views if v not in in_memory]
        for row in self._open_cases_of(others):
            case = case_from_row(row)
            self._cases[case.case_id] = case
            self._reach_changed(case, int(row.stored) + self._views[case.video_id])

    def _open_cases_of(self, videos: list[UUID]) -> Iterable[Any]:
        """The open cases of these videos, each with its video's stored views (`stored`):
        on PostgreSQL one prepared statement with the ids as one array (a batch names
        every video viewed), elsewhere SQLAlchemy IN lists in chunks."""
        if not videos:
            return []
        if self.conn.dialect.name == "postgresql":
            cases, reach = qualified(self.conn, rm_cases), qualified(self.conn, rm_case_reach)
            columns = ", ".join(f'c."{c}"' for c in CASE_COLUMNS)
            rows = raw_query(
                self.conn,
                f"SELECT {columns}, coalesce(r.views, 0) FROM {cases} AS c "
                f"LEFT JOIN {reach} AS r ON r.video_id = c.video_id "
                "WHERE c.video_id = ANY(%b::uuid[]) AND c.status = 'open'",
                (videos,),
            )
            return [_Row(zip((*CASE_COLUMNS, "stored"), r, strict=True)) for r in rows]
        out: list[Any] = []
        for chunk in _chunks(videos):
            out.extend(
                self.conn.execute(
                    sa.select(rm_cases, sa.func.coalesce(rm_case_reach.c.views, 0).label("stored"))
                    .select_from(
                        rm_cases.outerjoin(
                            rm_case_reach, rm_case_reach.c.video_id == rm_cases.c.video_id
                        )
                    )
                    .where(rm_cases.c.video_id.in_(chunk), rm_cases.c.status == "open")
                )
            )
        return out

    def _reach_changed(self, case: CaseState, reach: int) -> None:
        if self.projection.reach_changed(case, reach):
            self._changed[case.case_id] = None

    def _write_cases(self) -> None:
        if not self._changed:
            return
        rows = [self._case_row(self._cases[c]) for c in self._changed]
        upsert(self.conn, rm_cases, CASE_COLUMNS, [tuple(r[c] for c in CASE_COLUMNS) for r in rows],
               key=("case_id",), update=CASE_UPDATE)  # fmt: skip

    @staticmethod
    def _case_row(case: CaseState) -> dict[str, Any]:
        row = {c: getattr(case, c) for c in CASE_COLUMNS}
        row["opened_at"] = as_utc(case.opened_at)
        row["updated_at"] = as_utc(case.updated_at)
        return row


def moderation_view_factory(
    projection: ModerationQueueProjection,
) -> Callable[[sa.Connection], SqlModerationView]:
    """`make_view` for the runner: views of this projection, scoring with its weights."""

    def make_view(conn: sa.Connection) -> SqlModerationView:
        return SqlModerationView(conn, projection)

    return make_view
