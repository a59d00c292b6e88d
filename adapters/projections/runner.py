"""ProjectionRunner: one projection, catch-up then live, exactly once per event.

Each batch of events is applied in a read-model transaction that also advances the
projection's row in `projection_tracking`; after a crash the runner resumes from the last
committed position, so every event takes effect exactly once. Runners of one process
share that transaction (`run_round`, one commit for all of them) and each applies its
batch inside its own savepoint, so a failing one is rolled back alone. The position
advances to the head that was scanned, so a projection that ignores an event is still
"at" that event's position (read-your-writes waits rely on this).

Projections with in-memory state (online models) checkpoint it at a bounded interval
(`checkpoint_seconds`), when caught up outside the live loop, and when stopped, not at
every batch: the state of a model with tens of thousands of viewers costs tens of
milliseconds to pickle, a stall of every read model's freshness in a live server. The
checkpoint row carries its own position; a runner that (re)loads state behind its tracked
position replays the events in between with a `NullView`: the state is a function of the
events alone (event time, no view reads), so the replay rebuilds exactly the state that
was lost, and the view writes those events made are already committed.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from eventsourcing.persistence import Mapper, Notification

from adapters.background import FollowingWorker
from adapters.projections.quarantine import quarantined_positions
from adapters.readmodel.tables import projection_checkpoints, projection_tracking
from adapters.readmodel.upsert import insert_for
from commands.base import SharedStore
from projections.base import Projection

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 30.0  # online-model state is checkpointed at most this often, live
REPLAY_PAGE = 5_000  # events per read when replaying from a checkpoint


class FlushableView(Protocol):
    """What the runner needs of a view. A view may also offer `prefetch(events)`, called
    with the batch's decoded events before the first is processed, to read the rows the
    batch will need in a few queries instead of one per event."""

    def flush(self) -> set[str]: ...


class NullView:
    """A view that writes nothing: every call is accepted and ignored (checkpoint replay)."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _ignore

    def flush(self) -> set[str]:
        return set()


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


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


def read_positions(conn: sa.Connection, names: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(
        sa.select(projection_tracking.c.name, projection_tracking.c.position).where(
            projection_tracking.c.name.in_(names)
        )
    )
    return {r.name: int(r.position) for r in rows}


def write_position(conn: sa.Connection, name: str, position: int, events: int) -> None:
    write_positions(conn, [(name, position, events)])


def write_positions(conn: sa.Connection, rows: Sequence[tuple[str, int, int]]) -> None:
    """Several projections' (name, position, events applied) in one statement."""
    if not rows:
        return
    now = datetime.now(UTC)
    stmt = insert_for(conn, projection_tracking)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "position": stmt.excluded.position,
            "events": projection_tracking.c.events + stmt.excluded.events,
            "updated_at": stmt.excluded.updated_at,
            "last_error": None,
        },
    )
    conn.execute(
        stmt,
        [
            {"name": n, "position": p, "events": e, "updated_at": now, "last_error": None}
            for n, p, e in rows
        ],
    )


def read_checkpoint(conn: sa.Connection, name: str) -> bytes | None:
    found = read_checkpoint_at(conn, name)
    return found[0] if found else None


def read_checkpoint_at(conn: sa.Connection, name: str) -> tuple[bytes, int] | None:
    row = conn.execute(
        sa.select(projection_checkpoints.c.state, projection_checkpoints.c.position).where(
            projection_checkpoints.c.name == name
        )
    ).first()
    return (bytes(row[0]), int(row[1])) if row else None


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


class SharedRead(Protocol):
    """Events of the log in (lo, head] read once for several runners (group.LogRead)."""

    head: int
    limit: int

    def covers(self, start: int) -> bool: ...

    def take(
        self, start: int, topics: Sequence[str], limit: int
    ) -> tuple[list[Notification], list[Any]]: ...


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
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        super().__init__(store, poll_seconds=poll_seconds)
        self.spec = spec
        self.mapper = mapper
        self.engine = engine
        self.batch_size = batch_size
        self.on_commit = on_commit
        self.checkpoint_seconds = checkpoint_seconds
        self._state_loaded = False
        self._last_end = -1  # the position of this runner's last commit (or state load)
        self._checkpoint_position = -1  # the position of the state checkpointed last
        self._checkpoint_at = time.monotonic()
        self.quarantine_streak = 0  # events quarantined in a row, nothing applied between
        self.raise_alerts = True  # operational alerts in rm_alerts (not in a rebuild's shadow)

    @property
    def name(self) -> str:
        return self.spec.name

    def position(self) -> int:
        with self.engine.connect() as conn:
            return read_position(conn, self.name)

    @property
    def checkpointed(self) -> bool:
        """Projections with in-memory state (online models) checkpoint it (see above)."""
        return hasattr(self.spec.projection, "dump_state")

    # -- the steps of a round (run_round) -----------------------------------------------------
    def sync(self, conn: sa.Connection, position: int) -> None:
        """Make the in-memory state that of `position` (the committed one): at the start,
        after a failed batch, or when someone else moved the position (a rebuild's switch,
        a reset)."""
        if self._state_loaded and position == self._last_end:
            return
        if self.checkpointed:
            found = read_checkpoint_at(conn, self.name)
            state, at = found if found else (None, 0)
            if state is None or at > position:  # a checkpoint ahead of its position: reset
                state, at = None, 0
            try:
                self.spec.projection.load_state(state)  # type: ignore[attr-defined]
            except Exception as e:  # any unreadable checkpoint: start over
                # A checkpoint this code cannot read (pickled by an older version of the
                # model's classes): rebuilt from the first event instead of stuck.
                log.warning(
                    "%s: checkpoint at %d unreadable (%s: %s); replaying from the start",
                    self.name, at, type(e).__name__, e,
                )  # fmt: skip
                self.spec.projection.load_state(None)  # type: ignore[attr-defined]
                at = 0
            self._replay(conn, at, position)
            self._checkpoint_position = at
            self._checkpoint_at = time.monotonic()
        self._state_loaded = True
        self._last_end = position

    def _replay(self, conn: sa.Connection, start: int, end: int) -> None:
        """Rebuild the state from a checkpoint at `start` to `end`, writing nothing, and
        skipping the events this projection quarantined (adapters/projections/quarantine)."""
        if start >= end:
            return
        skip = quarantined_positions(conn, self.name, start, end)
        recorder, process = self.store.recorder, self.spec.projection.process
        view, topics, position = NullView(), list(self.spec.projection.topics), start
        replayed = 0
        while position < end:
            page = recorder.select_notifications(
                start=position + 1, limit=REPLAY_PAGE, stop=end, topics=topics
            )
            for n in page:
                if n.id not in skip:
                    process(self.mapper.to_domain_event(n), n.id, view)
            replayed += len(page)
            if len(page) < REPLAY_PAGE:
                break
            position = page[-1].id
        log.info("%s: replayed %d events from checkpoint %d to %d", self.name, replayed, start, end)

    def apply(
        self, conn: sa.Connection, notifications: Sequence[Notification], events: Sequence[Any]
    ) -> set[str]:
        """Process a batch through a view on `conn`; return the view's change keys."""
        view = self.spec.make_view(conn)
        prefetch = getattr(view, "prefetch", None)
        if prefetch is not None:  # a view may read what the whole batch needs at once
            prefetch(events)
        process = self.spec.projection.process
        for n, event in zip(notifications, events, strict=True):
            process(event, n.id, view)
        return view.flush()

    def checkpoint_due(self, position: int, *, force: bool = False) -> bool:
        if not self.checkpointed or not self._state_loaded or position <= self._checkpoint_position:
            return False
        return force or time.monotonic() - self._checkpoint_at >= self.checkpoint_seconds

    def write_checkpoint(self, conn: sa.Connection, position: int) -> None:
        state = self.spec.projection.dump_state()  # type: ignore[attr-defined]
        write_checkpoint(conn, self.name, position, state)

    def checkpointed_at(self, position: int) -> None:
        self._checkpoint_position = position
        self._checkpoint_at = time.monotonic()

    def committed(self, end: int, changed: set[str]) -> None:
        self._last_end = end
        if self.on_commit is not None:
            self.on_commit(self.name, end, changed)

    def invalidate(self) -> None:
        """The batch rolled back: the in-memory state is not the committed one."""
        self._state_loaded = False

    # -- alone (tests, the rebuild tool, the CLI's catch-up) ----------------------------------
    def run_once(self, shared: SharedRead | None = None) -> int:
        """Apply the next batch of at most `batch_size` events; return how many it held
        (0 when caught up, when a lagging checkpoint is also written)."""
        from adapters.projections.group import run_round

        moved = run_round(
            [self], self.store, self.mapper, self.batch_size, shared=shared, raise_errors=True,
            catch_up_factor=1,
        ).get(self.name, 0)  # fmt: skip
        if moved == 0:
            self._checkpoint_if_behind()
        return moved

    def run_until_idle(self) -> int:
        total = 0
        while not self._stop.is_set():
            n = self.run_once()
            if n == 0:
                return total
            total += n
        return total

    def _checkpoint_if_behind(self) -> None:
        if not self.checkpointed or not self._state_loaded:
            return
        end = self._last_end
        if end > self._checkpoint_position:
            with self.engine.begin() as conn:
                if read_position(conn, self.name) != end:
                    return  # moved by someone else meanwhile: the next sync reloads
                self.write_checkpoint(conn, end)
            self.checkpointed_at(end)

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
