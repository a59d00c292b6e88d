"""ProjectionRunner: catch-up then live, exactly once per event.

Each batch of events is applied in ONE read-model transaction that also advances the
projection's row in `projection_tracking`; after a crash the runner resumes from the last
committed position, so every event takes effect exactly once. Topic filtering happens in
the event store query; the position still advances to the head that was scanned, so a
projection that ignores an event is still "at" that event's position (read-your-writes
waits rely on this).
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from eventsourcing.persistence import Mapper, Notification

from adapters.background import FollowingWorker, read_to
from adapters.readmodel.tables import projection_checkpoints, projection_tracking
from adapters.readmodel.upsert import insert_for
from commands.base import SharedStore
from projections.base import Projection

log = logging.getLogger(__name__)


class SharedRead(Protocol):
    """Events of the log in (lo, head] read once for several runners (ProjectionGroup)."""

    head: int

    def covers(self, start: int) -> bool: ...

    def take(
        self, start: int, topics: Sequence[str], limit: int
    ) -> tuple[list[Notification], list[Any]]: ...


class FlushableView(Protocol):
    """What the runner needs of a view. A view may also offer `prefetch(events)`, called
    with the batch's decoded events before the first is processed, to read the rows the
    batch will need in a few queries instead of one per event."""

    def flush(self) -> set[str]: ...


@dataclass(frozen=True)
class ProjectionSpec:
    projection: Projection[Any]
    make_view: Callable[[sa.Connection], FlushableView]

    @property
    def name(self) -> str:
        return self.projection.name


OnCommit = Callable[[str, int, set[str]], None]


def read_position(conn: sa.Connection, name: str) -> int:
    row = conn.execute(
        sa.select(projection_tracking.c.position).where(projection_tracking.c.name == name)
    ).first()
    return int(row[0]) if row else 0


def write_position(conn: sa.Connection, name: str, position: int, events: int) -> None:
    stmt = insert_for(conn, projection_tracking).values(
        name=name, position=position, events=events, updated_at=datetime.now(UTC), last_error=None
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "position": stmt.excluded.position,
            "events": projection_tracking.c.events + stmt.excluded.events,
            "updated_at": stmt.excluded.updated_at,
            "last_error": None,
        },
    )
    conn.execute(stmt)


def read_checkpoint(conn: sa.Connection, name: str) -> bytes | None:
    row = conn.execute(
        sa.select(projection_checkpoints.c.state).where(projection_checkpoints.c.name == name)
    ).first()
    return bytes(row[0]) if row else None


def write_checkpoint(conn: sa.Connection, name: str, position: int, state: bytes) -> None:
    stmt = insert_for(conn, projection_checkpoints).values(
        name=name, position=position, state=state, updated_at=datetime.now(UTC)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"position": stmt.excluded.position, "state": stmt.excluded.state,
              "updated_at": stmt.excluded.updated_at},
    )  # fmt: skip
    conn.execute(stmt)


class ProjectionRunner(FollowingWorker):
    def __init__(
        self,
        spec: ProjectionSpec,
        store: SharedStore,
        mapper: Mapper[Any],
        engine: sa.Engine,
        *,
        batch_size: int = 1000,
        poll_seconds: float = 0.5,
        on_commit: OnCommit | None = None,
    ) -> None:
        super().__init__(store, poll_seconds=poll_seconds)
        self.spec = spec
        self.mapper = mapper
        self.engine = engine
        self.batch_size = batch_size
        self.on_commit = on_commit
        self._state_loaded = False
        self._last_end = -1  # the position of this runner's last commit (or state load)

    @property
    def name(self) -> str:
        return self.spec.name

    def position(self) -> int:
        with self.engine.connect() as conn:
            return read_position(conn, self.name)

    @property
    def checkpointed(self) -> bool:
        """Projections with in-memory state (online models) checkpoint it with the position."""
        return hasattr(self.spec.projection, "dump_state")

    def run_once(self, shared: "SharedRead | None" = None) -> int:
        """Apply the next batch; return how many events it held (0 when caught up).
        With `shared` (a ProjectionGroup's read of the log for all its runners) the batch
        is taken from it instead of this runner's own head read, query and decoding."""
        try:
            return self._run_once(shared)
        except BaseException:
            self._state_loaded = False  # the batch rolled back: reload state from checkpoint
            raise

    def _run_once(self, shared: "SharedRead | None" = None) -> int:
        with self.engine.begin() as conn:
            start = read_position(conn, self.name)
            # (Re)load the model state when it is not this runner's own last commit: at the
            # start, after a failed batch, or when someone else moved the position (a
            # rebuild's switch, a reset): the in-memory state would be stale.
            if self.checkpointed and (not self._state_loaded or start != self._last_end):
                self.spec.projection.load_state(read_checkpoint(conn, self.name))  # type: ignore[attr-defined]
                self._state_loaded = True
                self._last_end = start
            topics = self.spec.projection.topics
            if shared is not None and shared.covers(start):
                head = shared.head
                notifications, events = shared.take(start, topics, self.batch_size)
            else:
                head = self.store.recorder.max_notification_id() or 0
                if head <= start:
                    return 0
                notifications = self.store.recorder.select_notifications(
                    start=start + 1, limit=self.batch_size, stop=head, topics=topics
                )
                events = [self.mapper.to_domain_event(n) for n in notifications]
            end = read_to(notifications, self.batch_size, head)
            view = self.spec.make_view(conn)
            prefetch = getattr(view, "prefetch", None)
            if prefetch is not None:  # a view may read what the whole batch needs at once
                prefetch(events)
            process = self.spec.projection.process
            for n, event in zip(notifications, events, strict=True):
                process(event, n.id, view)
            changed = view.flush()
            write_position(conn, self.name, end, len(notifications))
            if self.checkpointed and notifications:
                state = self.spec.projection.dump_state()  # type: ignore[attr-defined]
                write_checkpoint(conn, self.name, end, state)
        self._last_end = end
        if self.on_commit is not None:
            self.on_commit(self.name, end, changed)
        return len(notifications) or 1  # advanced over ignored events: still progress

    def run_until_idle(self) -> int:
        total = 0
        while not self._stop.is_set():
            n = self.run_once()
            if n == 0:
                return total
            total += n
        return total

    @property
    def thread_name(self) -> str:
        return f"projection-{self.name}"

    def on_error(self, message: str) -> None:
        self._record_error(message)

    def _record_error(self, message: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    projection_tracking.update()
                    .where(projection_tracking.c.name == self.name)
                    .values(last_error=message[:2000])
                )
        except Exception:
            log.exception("could not record the error of projection %s", self.name)
