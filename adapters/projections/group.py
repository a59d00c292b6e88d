"""ProjectionGroup: the runners of one process in one thread, one read and one commit.

Eleven runners, each with its own thread, read of the log and transaction, queue behind
one another on two cores, and every commit of the write side costs eleven transactions
(docs/benchmarks.md, B5). A round of the group does, for all of them at once:

    read     the head, then the new events of every runner's topics, decoded once
    apply    each runner's batch in its own savepoint of ONE read-model transaction
             (a failing runner rolls back alone and is retried later, never skipped past)
    commit   every applied runner's position in one statement, one commit

Exactly once holds per runner as before: its read-model rows and its position change in
the same transaction. While far behind (a rebuild, a restart) a round reads up to
`catch_up_batch` events, so statements and commits are spread over more events.
"""

import contextlib
import logging
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Mapper, Notification

from adapters.background import FollowingWorker, read_to
from adapters.projections.quarantine import careful_pass, quarantinable
from adapters.projections.runner import (
    ProjectionRunner,
    SharedRead,
    read_positions,
    write_positions,
)
from commands.base import SharedStore

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # a failing runner is tried again after this (never skipped past)
CATCH_UP_FACTOR = 10  # a round far behind reads up to this many batches at once
DEFAULT_LANES = 1  # transactions (threads) per round on PostgreSQL (see run_round)
KNOWN_SECONDS = 1.0  # a live group reads its runners' positions again at least this often


class LogRead:
    """The events of the given topics (all when empty) in (lo, head], read and decoded once
    for several runners. `head` is the store's head, or the last event read when the read
    was cut at `limit`: runners treat it as theirs."""

    def __init__(
        self,
        store: SharedStore,
        mapper: Mapper[Any],
        lo: int,
        head: int,
        topics: Sequence[str],
        limit: int,
    ) -> None:
        self.lo = lo
        self.mapper = mapper
        self.notifications = store.recorder.select_notifications(
            start=lo + 1, limit=limit, stop=head, topics=topics
        )
        self.limit = limit
        self.head = read_to(self.notifications, limit, head)
        # Each runner takes its topics' events after its own position: positions by
        # topic, found by bisection, instead of a scan of the whole read per runner.
        self._ids = [n.id for n in self.notifications]
        self._by_topic: dict[str, list[int]] = {}
        for i, n in enumerate(self.notifications):
            self._by_topic.setdefault(n.topic, []).append(i)
        self._decoded: list[Any] = [None] * len(self.notifications)
        many = getattr(mapper, "to_domain_events", None)
        if many is not None:  # all at once: the keys of sealed comment texts in one query
            self._decoded = list(many(self.notifications))
            if len(self._decoded) != len(self.notifications):
                raise RuntimeError("the mapper decoded a different number of events")

    def covers(self, start: int) -> bool:
        """Whether this read holds a runner's next batch: it starts at or after `lo` and
        has events to take. A runner ahead of the read (the read was cut at `limit` for
        one that lags, e.g. one held back after errors) reads the log itself."""
        return self.lo <= start < self.head

    def take(
        self, start: int, topics: Sequence[str], limit: int
    ) -> tuple[list[Notification], list[Any]]:
        ids = self._ids
        if not topics:
            first = bisect_right(ids, start)
            at: Sequence[int] = range(first, min(len(ids), first + limit))
        else:
            parts = []
            for topic in set(topics):
                mine = self._by_topic.get(topic)
                if mine:
                    parts.append(mine[bisect_right(mine, start, key=ids.__getitem__) :])
            at = parts[0][:limit] if len(parts) == 1 else sorted(chain(*parts))[:limit]
        notifications = self.notifications
        return [notifications[i] for i in at], [self._decode(i) for i in at]

    def _decode(self, i: int) -> Any:
        # Events are immutable: one decoded object serves every runner. A failure (a poison
        # event) fails each runner that needs the event, as alone.
        event = self._decoded[i]
        if event is None:
            event = self._decoded[i] = self.mapper.to_domain_event(self.notifications[i])
        elif isinstance(event, Exception):
            raise event
        return event


class RunnerFailed(Exception):
    def __init__(self, runner: ProjectionRunner, error: Exception) -> None:
        super().__init__(f"{runner.name}: {error}")
        self.runner = runner
        self.error = error


def run_round(
    runners: Sequence[ProjectionRunner],
    store: SharedStore,
    mapper: Mapper[Any],
    batch_size: int,
    *,
    shared: SharedRead | None = None,
    raise_errors: bool = False,
    on_failure: Callable[[ProjectionRunner, Exception], None] | None = None,
    catch_up_factor: int = CATCH_UP_FACTOR,
    lanes: Executor | None = None,
    lane_count: int = 1,
    known: dict[str, int] | None = None,
    optimistic: bool = True,
    held: Any = None,
) -> dict[str, int]:
    """One round for runners that share a read-model engine: read the log once, then apply
    the runners' batches in `lane_count` lanes (threads of `lanes`), each lane one
    transaction. Returns, per runner that moved, the events it applied (1 when it only
    moved over events of other topics). A runner that fails is rolled back alone and
    passed to `on_failure` (or raised).

    `known`: the runners' committed positions as the caller last saw them (a live group
    knows them from its own commits; read for runners missing from it, and updated in
    place): they only choose who is due and where the shared read starts, so the round
    skips reading them; each lane reads the committed ones in its transaction as always,
    so a position someone else moved (a reset, a rebuild's switch) is found there.
    `optimistic`: a lane first applies every batch without savepoints (two round trips
    fewer per runner, and most rounds fail nowhere); only when one fails is that
    transaction rolled back and the lane run again, each runner in its own savepoint, so
    the failure stays the failing runner's (see _lane). `held`: a connection to the
    runners' engine the caller keeps between rounds (one lane): no pool checkout and
    ping per round, and the views' prepared statements stay prepared on it.

    Why lanes: a runner's flush waits on the database while another runner's Python
    could run (the GIL is released while psycopg waits), so two lanes keep both cores
    busy; one lane is one transaction per round (live, where latency counts)."""
    engine = runners[0].engine
    head = store.recorder.max_notification_id() or 0
    if known is None:
        known = {}
    if any(r.name not in known for r in runners):
        with _transaction(held if held is not None else engine) as conn:
            known.update(read_positions(conn, [r.name for r in runners]))
    due = [r for r in runners if known.get(r.name, 0) < head]
    if not due:
        return {}
    if shared is None:
        shared = _shared_read(store, mapper, due, known, head, batch_size, catch_up_factor)
    groups = [due[i::lane_count] for i in range(lane_count) if due[i::lane_count]]
    args = (engine, store, mapper, shared, head, raise_errors, optimistic)
    if len(groups) == 1 and held is not None:
        outcomes = [_lane(groups[0], held, *args[1:])]
    elif lanes is None or len(groups) == 1:
        outcomes = [_lane(g, *args) for g in groups]
    else:
        futures = [lanes.submit(_lane, g, *args) for g in groups]
        outcomes = [f.result() for f in futures]
    moved: dict[str, int] = {}
    for lane in outcomes:
        known.update(lane.positions)
        # After the commit: reporting a failure writes in a transaction of its own (SQLite
        # has one writer at a time, and this lane's transaction held it).
        for runner, error in lane.failed:
            if on_failure is not None:
                on_failure(runner, error)
        for runner, end in lane.checkpointed:
            runner.checkpointed_at(end)
        for runner, end, n, changed in lane.applied:
            runner.committed(end, changed)
            known[runner.name] = end
            moved[runner.name] = n or 1  # advanced over ignored events: still progress
    return moved


@dataclass
class _Lane:
    applied: list[tuple[ProjectionRunner, int, int, set[str]]] = field(default_factory=list)
    checkpointed: list[tuple[ProjectionRunner, int]] = field(default_factory=list)
    failed: list[tuple[ProjectionRunner, Exception]] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)  # the committed ones it read


class _RolledBack(Exception):
    """An optimistic lane failed: its whole transaction was rolled back."""

    def __init__(self, error: Exception, touched: list[ProjectionRunner]) -> None:
        super().__init__(str(error))
        self.error = error
        self.touched = touched  # runners whose in-memory state may be past the rollback


def _lane(
    runners: Sequence[ProjectionRunner],
    engine: Any,  # an Engine, or a Connection held by the caller
    store: SharedStore,
    mapper: Mapper[Any],
    shared: SharedRead,
    head: int,
    raise_errors: bool,
    optimistic: bool,
) -> _Lane:
    """Some runners' batches in one transaction: first without savepoints when
    `optimistic`; if a runner fails there, the transaction is rolled back, every runner
    it touched is invalidated (its in-memory state reloads at the committed position),
    and the lane runs again with each runner in its own savepoint."""
    if optimistic:
        try:
            return _apply_lane(runners, engine, store, mapper, shared, head, isolate=False)
        except _RolledBack as e:
            for runner in e.touched:
                runner.invalidate()
            if raise_errors and not quarantinable(e.error):
                raise e.error from None
            log.info("a projection failed in a shared transaction; isolating: %s", e)
    return _apply_lane(runners, engine, store, mapper, shared, head, isolate=True,
                       raise_errors=raise_errors)  # fmt: skip


def _apply_lane(
    runners: Sequence[ProjectionRunner],
    engine: Any,
    store: SharedStore,
    mapper: Mapper[Any],
    shared: SharedRead,
    head: int,
    *,
    isolate: bool,
    raise_errors: bool = False,
) -> _Lane:
    out = _Lane()
    touched: list[ProjectionRunner] = []  # runners whose state this transaction may move
    try:
        with _transaction(engine) as conn:
            out.positions = read_positions(conn, [r.name for r in runners])  # committed ones
            for runner in runners:
                start = out.positions.get(runner.name, 0)
                if start >= head:
                    continue
                touched.append(runner)
                try:
                    changed, end, n = _apply_one(
                        runner, conn, shared, store, mapper, start, head, out, isolate
                    )
                except Exception as e:
                    if not isolate:
                        raise _RolledBack(e, touched) from e
                    runner.invalidate()
                    try:
                        if not quarantinable(e):
                            raise
                        changed, end, n = _careful(runner, conn, store, mapper, start, head)
                    except Exception as failed:
                        runner.invalidate()
                        if raise_errors:
                            raise
                        out.failed.append((runner, failed))
                        continue
                if end > start:
                    out.applied.append((runner, end, n, changed))
            write_positions(conn, [(r.name, end, n) for r, end, n, _ in out.applied])
    except _RolledBack:
        raise
    except Exception as e:  # the positions' write or the commit failed: nothing committed
        if not isolate:
            raise _RolledBack(e, touched) from e
        for runner in touched:
            runner.invalidate()
        raise
    return out


def _apply_one(
    runner: ProjectionRunner,
    conn: Any,
    shared: SharedRead,
    store: SharedStore,
    mapper: Mapper[Any],
    start: int,
    head: int,
    out: _Lane,
    isolate: bool,
) -> tuple[set[str], int, int]:
    """One runner's next batch on `conn`: (its change keys, how far it read, events)."""
    notifications, events, end = _batch(runner, shared, store, mapper, start, head)
    # A savepoint where the runner writes or reads (a failure rolls back this runner
    # only); one that just moves over events of other topics needs none, unless loading
    # its state (online models) reads.
    savepoint = isolate and (bool(notifications) or runner.checkpointed)
    with conn.begin_nested() if savepoint else contextlib.nullcontext():
        runner.sync(conn, start)
        changed = runner.apply(conn, notifications, events) if notifications else set()
        if notifications:
            runner.quarantine_streak = 0
        if runner.checkpoint_due(end):
            runner.write_checkpoint(conn, end)
            out.checkpointed.append((runner, end))
    return changed, end, len(notifications)


def _careful(
    runner: ProjectionRunner,
    conn: Any,
    store: SharedStore,
    mapper: Mapper[Any],
    start: int,
    head: int,
) -> tuple[set[str], int, int]:
    """After `runner` failed on a batch with an event's error: the same events one at a
    time, the first that fails alone quarantined (adapters/projections/quarantine.py).
    Returns (change keys, how far it covered the log, events applied)."""
    notifications = _select(runner, store, start, head)
    with conn.begin_nested():  # a failure here leaves nothing of the pass behind
        runner.sync(conn, start)
        changed, n, bad = careful_pass(
            runner.name, conn, notifications, mapper, runner.apply, runner.quarantine_streak,
            alert=runner.raise_alerts,
        )  # fmt: skip
    if bad is None:
        runner.quarantine_streak = 0 if n else runner.quarantine_streak
        return changed, read_to(notifications, runner.batch_size, head), n
    runner.quarantine_streak = runner.quarantine_streak + 1 if n == 0 else 1
    runner.invalidate()  # in-memory state: reloaded without the quarantined event
    return changed, bad, n


@contextlib.contextmanager
def _transaction(engine: Any) -> Iterator[Any]:
    """A transaction on `engine` (an Engine: a pooled connection; a Connection: itself,
    held by the caller), committed on exit, rolled back on an exception."""
    if isinstance(engine, sa.Connection):
        with engine.begin():
            yield engine
    else:
        with engine.begin() as conn:
            yield conn


def _shared_read(
    store: SharedStore,
    mapper: Mapper[Any],
    runners: Sequence[ProjectionRunner],
    positions: dict[str, int],
    head: int,
    batch_size: int,
    factor: int,
) -> "LogRead":
    lo = min(positions.get(r.name, 0) for r in runners)
    topics: list[str] = []
    for r in runners:
        if not r.spec.projection.topics:  # one runner wants every topic
            topics = []
            break
        topics.extend(t for t in r.spec.projection.topics if t not in topics)
    # Behind by more than a batch: read up to `factor` batches at once (fewer statements
    # and commits per event; a catch-up keeps its large rounds to the end).
    limit = batch_size * factor if head - lo > batch_size else batch_size
    return LogRead(store, mapper, lo, head, topics, limit)


def _select(
    runner: ProjectionRunner, store: SharedStore, start: int, head: int
) -> list[Notification]:
    """The runner's next batch after `start`, read from the store, as stored."""
    return list(
        store.recorder.select_notifications(
            start=start + 1, limit=runner.batch_size, stop=head,
            topics=runner.spec.projection.topics,
        )
    )  # fmt: skip


def _batch(
    runner: ProjectionRunner,
    shared: SharedRead | None,
    store: SharedStore,
    mapper: Mapper[Any],
    start: int,
    head: int,
) -> tuple[list[Notification], list[Any], int]:
    """The runner's next events after `start`, decoded, and how far they cover the log."""
    topics = runner.spec.projection.topics
    if shared is not None and shared.covers(start):
        limit = max(shared.limit, runner.batch_size)
        notifications, events = shared.take(start, topics, limit)
        return notifications, events, read_to(notifications, limit, shared.head)
    notifications = _select(runner, store, start, head)
    events = [mapper.to_domain_event(n) for n in notifications]
    return notifications, events, read_to(notifications, runner.batch_size, head)


class ProjectionGroup(FollowingWorker):
    def __init__(
        self,
        runners: Sequence[ProjectionRunner],
        store: SharedStore,
        mapper: Mapper[Any],
        positions: Callable[[], dict[str, int]],
        *,
        batch_size: int = 1000,
        poll_seconds: float = 0.5,
        lanes: int = DEFAULT_LANES,
    ) -> None:
        super().__init__(store, poll_seconds=poll_seconds)
        self.runners = list(runners)
        self.mapper = mapper
        self.positions = positions  # every runner's committed position, in one query
        self.batch_size = batch_size
        self.failures: Counter[str] = Counter()  # consecutive failed attempts per runner
        self._retry_at: dict[str, float] = {}
        self._live = False
        self.lane_count = lanes
        self._lanes = (
            ThreadPoolExecutor(lanes, thread_name_prefix="projection-lane") if lanes > 1 else None
        )
        # The runners' committed positions as of the group's last round (run_round's
        # `known`), read again from the database at least every KNOWN_SECONDS.
        self._known: dict[str, int] = {}
        self._known_at = 0.0
        self._held: dict[int, sa.Connection] = {}  # per PostgreSQL engine (run_round's `held`)

    @property
    def thread_name(self) -> str:
        return "projections"

    def start(self) -> None:
        self._live = True
        super().start()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._live = False
        self._release()
        self.checkpoint_behind()

    def round(self) -> dict[str, int]:
        """One round of every runner not held back after an error (see run_round)."""
        now = time.monotonic()
        active = [r for r in self.runners if self._retry_at.get(r.name, 0.0) <= now]
        return self._round(active) if active else {}

    def run_until_idle(self) -> int:
        """Rounds until every runner is caught up (or held back after an error); returns
        how many events the runners applied. Called directly (not in the live loop), it
        also checkpoints the online models it moved."""
        total = 0
        while not self._stop.is_set():
            now = time.monotonic()
            active = [r for r in self.runners if self._retry_at.get(r.name, 0.0) <= now]
            if not active:
                break
            moved = self._round(active)
            if not moved:
                break
            total += sum(moved.values())
        if not self._live:
            self._release()
            self.checkpoint_behind()
        return total

    def _round(self, active: list[ProjectionRunner]) -> dict[str, int]:
        moved: dict[str, int] = {}
        now = time.monotonic()
        if now - self._known_at >= KNOWN_SECONDS:
            self._known.clear()  # read again: someone else may have moved a position
            self._known_at = now
        by_engine: dict[int, list[ProjectionRunner]] = {}
        for r in active:
            by_engine.setdefault(id(r.engine), []).append(r)
        for members in by_engine.values():
            engine = members[0].engine
            sqlite = engine.dialect.name == "sqlite"  # one writer at a time anyway
            try:
                got = self._run(members, engine, sqlite)
            except sa.exc.DBAPIError as e:
                self._release(engine)  # broken (a restarted database): a new one next time
                if not e.connection_invalidated:
                    raise
                # The connection this group held was lost between rounds (its first
                # statement found it closed): nothing of the round was applied, so run it
                # once more on a new connection.
                got = self._run(members, engine, sqlite)
            except Exception:
                self._release(engine)  # it may be broken: a new one
                raise
            moved.update(got)
        for name in moved:
            self._retry_at.pop(name, None)
            self.failures.pop(name, None)
            runner = next(r for r in active if r.name == name)
            runner.last_error = None
        return moved

    def _run(
        self, members: list[ProjectionRunner], engine: sa.Engine, sqlite: bool
    ) -> dict[str, int]:
        return run_round(
            members, self.store, self.mapper, self.batch_size, on_failure=self._failed,
            lanes=None if sqlite else self._lanes, lane_count=1 if sqlite else self.lane_count,
            known=self._known, optimistic=not self.failures, held=self._hold(engine),
        )  # fmt: skip

    def _hold(self, engine: sa.Engine) -> sa.Connection | None:
        """The connection this group keeps for its rounds on a PostgreSQL engine (idle
        between rounds: it holds no locks), opened on first use."""
        if engine.dialect.name != "postgresql":
            return None  # SQLite: connections are cheap, and a file has one writer
        conn = self._held.get(id(engine))
        if conn is None or conn.closed or conn.invalidated:
            conn = self._held[id(engine)] = engine.connect()
        return conn

    def _release(self, engine: sa.Engine | None = None) -> None:
        for key in [id(engine)] if engine is not None else list(self._held):
            conn = self._held.pop(key, None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.invalidate() if engine is not None else conn.close()

    def _failed(self, runner: ProjectionRunner, error: Exception) -> None:
        runner.last_error = f"{type(error).__name__}: {error}"
        log.error("projection %s failed; retrying: %s", runner.name, runner.last_error,
                  exc_info=error)  # fmt: skip
        runner.on_error(runner.last_error)
        self._retry_at[runner.name] = time.monotonic() + RETRY_SECONDS
        self.failures[runner.name] += 1

    def checkpoint_behind(self) -> None:
        """Write the checkpoint of every online model whose state is ahead of it."""
        for runner in self.runners:
            try:
                runner._checkpoint_if_behind()
            except Exception:
                log.exception("could not checkpoint projection %s", runner.name)
