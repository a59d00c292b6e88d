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

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Mapper, Notification

from adapters.background import FollowingWorker, read_to
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
        self._decoded: dict[int, Any] = {}
        many = getattr(mapper, "to_domain_events", None)
        if many is not None:  # all at once: the keys of sealed comment texts in one query
            for n, event in zip(self.notifications, many(self.notifications), strict=True):
                self._decoded[n.id] = event

    def covers(self, start: int) -> bool:
        """Whether this read holds a runner's next batch: it starts at or after `lo` and
        has events to take. A runner ahead of the read (the read was cut at `limit` for
        one that lags, e.g. one held back after errors) reads the log itself."""
        return self.lo <= start < self.head

    def take(
        self, start: int, topics: Sequence[str], limit: int
    ) -> tuple[list[Notification], list[Any]]:
        wanted = set(topics)
        picked = [
            n for n in self.notifications if n.id > start and (not wanted or n.topic in wanted)
        ][:limit]
        return picked, [self._decode(n) for n in picked]

    def _decode(self, n: Notification) -> Any:
        # Events are immutable: one decoded object serves every runner. A failure (a poison
        # event) fails each runner that needs the event, as alone.
        event = self._decoded.get(n.id)
        if event is None:
            event = self._decoded[n.id] = self.mapper.to_domain_event(n)
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
) -> dict[str, int]:
    """One round for runners that share a read-model engine: read the log once, then apply
    the runners' batches in `lane_count` lanes (threads of `lanes`), each lane one
    transaction in which every runner has its own savepoint. Returns, per runner that
    moved, the events it applied (1 when it only moved over events of other topics). A
    runner that fails is rolled back alone and passed to `on_failure` (or raised).

    Why lanes: a runner's flush waits on the database while another runner's Python
    could run (the GIL is released while psycopg waits), so two lanes keep both cores
    busy; one lane is one transaction per round (live, where latency counts)."""
    engine = runners[0].engine
    head = store.recorder.max_notification_id() or 0
    with engine.connect() as conn:
        positions = read_positions(conn, [r.name for r in runners])
    due = [r for r in runners if positions.get(r.name, 0) < head]
    if not due:
        return {}
    if shared is None:
        shared = _shared_read(store, mapper, due, positions, head, batch_size, catch_up_factor)
    groups = [due[i::lane_count] for i in range(lane_count) if due[i::lane_count]]
    if lanes is None or len(groups) == 1:
        outcomes = [_lane(g, engine, store, mapper, shared, head, raise_errors) for g in groups]
    else:
        futures = [
            lanes.submit(_lane, g, engine, store, mapper, shared, head, raise_errors)
            for g in groups
        ]
        outcomes = [f.result() for f in futures]
    moved: dict[str, int] = {}
    for lane in outcomes:
        # After the commit: reporting a failure writes in a transaction of its own (SQLite
        # has one writer at a time, and this lane's transaction held it).
        for runner, error in lane.failed:
            if on_failure is not None:
                on_failure(runner, error)
        for runner, end in lane.checkpointed:
            runner.checkpointed_at(end)
        for runner, end, n, changed in lane.applied:
            runner.committed(end, changed)
            moved[runner.name] = n or 1  # advanced over ignored events: still progress
    return moved


@dataclass
class _Lane:
    applied: list[tuple[ProjectionRunner, int, int, set[str]]] = field(default_factory=list)
    checkpointed: list[tuple[ProjectionRunner, int]] = field(default_factory=list)
    failed: list[tuple[ProjectionRunner, Exception]] = field(default_factory=list)


def _lane(
    runners: Sequence[ProjectionRunner],
    engine: Any,
    store: SharedStore,
    mapper: Mapper[Any],
    shared: SharedRead,
    head: int,
    raise_errors: bool,
) -> _Lane:
    """Some runners' batches in one transaction, each in its own savepoint."""
    out = _Lane()
    with engine.begin() as conn:
        positions = read_positions(conn, [r.name for r in runners])  # the committed ones
        for runner in runners:
            start = positions.get(runner.name, 0)
            if start >= head:
                continue
            try:
                with conn.begin_nested():  # a savepoint: a failure rolls back this runner only
                    runner.sync(conn, start)
                    notifications, events, end = _batch(runner, shared, store, mapper, start, head)
                    changed = runner.apply(conn, notifications, events) if notifications else set()
                    if runner.checkpoint_due(end):
                        runner.write_checkpoint(conn, end)
                        out.checkpointed.append((runner, end))
            except Exception as e:
                runner.invalidate()
                if raise_errors:
                    raise
                out.failed.append((runner, e))
                continue
            if end > start:
                out.applied.append((runner, end, len(notifications), changed))
        write_positions(conn, [(r.name, end, n) for r, end, n, _ in out.applied])
    return out


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
    # Far behind: read more at once (fewer statements and commits per event).
    limit = batch_size * factor if head - lo > batch_size * factor else batch_size
    return LogRead(store, mapper, lo, head, topics, limit)


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
    notifications = list(
        store.recorder.select_notifications(
            start=start + 1, limit=runner.batch_size, stop=head, topics=topics
        )
    )
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

    @property
    def thread_name(self) -> str:
        return "projections"

    def start(self) -> None:
        self._live = True
        super().start()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._live = False
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
            self.checkpoint_behind()
        return total

    def _round(self, active: list[ProjectionRunner]) -> dict[str, int]:
        moved: dict[str, int] = {}
        by_engine: dict[int, list[ProjectionRunner]] = {}
        for r in active:
            by_engine.setdefault(id(r.engine), []).append(r)
        for members in by_engine.values():
            sqlite = members[0].engine.dialect.name == "sqlite"  # one writer at a time anyway
            got = run_round(
                members, self.store, self.mapper, self.batch_size, on_failure=self._failed,
                lanes=None if sqlite else self._lanes, lane_count=1 if sqlite else self.lane_count,
            )  # fmt: skip
            moved.update(got)
        for name in moved:
            self._retry_at.pop(name, None)
            self.failures.pop(name, None)
            runner = next(r for r in active if r.name == name)
            runner.last_error = None
        return moved

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
