"""ProjectionGroup: the runners of one process in one thread, reading the log once.

Eleven runners, each in its own thread, each woken by every commit, each reading the
head, reading and decoding the new events and committing its batch: on two cores they
queue behind one another (and behind the GIL) and every command costs eleven times that
work (docs/benchmarks.md, B5). The group keeps each runner's guarantees — its own
position, its own transaction per batch, exactly once, a failing runner held back alone —
and shares what they had in common: per round one head read, one read of the events of
all their topics and one decoding of each event, then each runner's batch in turn.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import Mapper, Notification

from adapters.background import FollowingWorker, read_to
from adapters.projections.runner import ProjectionRunner
from commands.base import SharedStore

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # a failing runner is tried again after this (never skipped past)


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
        self.head = read_to(self.notifications, limit, head)
        self._decoded: dict[int, Any] = {}

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
        # event) is not kept: each runner that needs the event fails on it, as alone.
        event = self._decoded.get(n.id)
        if event is None:
            event = self._decoded[n.id] = self.mapper.to_domain_event(n)
        return event


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
    ) -> None:
        super().__init__(store, poll_seconds=poll_seconds)
        self.runners = list(runners)
        self.mapper = mapper
        self.positions = positions  # every runner's committed position, in one query
        self.batch_size = batch_size
        self.failures: Counter[str] = Counter()  # consecutive failed attempts per runner
        self._retry_at: dict[str, float] = {}

    @property
    def thread_name(self) -> str:
        return "projections"

    def run_until_idle(self) -> int:
        """Rounds until every runner is caught up (or held back after an error); returns
        how many events the runners applied."""
        total = 0
        while not self._stop.is_set():
            now = time.monotonic()
            active = [r for r in self.runners if self._retry_at.get(r.name, 0.0) <= now]
            if not active:
                return total
            head = self.store.recorder.max_notification_id() or 0
            positions = self.positions()
            lo = min(positions.get(r.name, 0) for r in active)
            if head <= lo:
                return total
            topics: list[str] = []
            for r in active:
                if not r.spec.projection.topics:  # one runner wants every topic
                    topics = []
                    break
                topics.extend(t for t in r.spec.projection.topics if t not in topics)
            shared = LogRead(self.store, self.mapper, lo, head, topics, self.batch_size)
            moved = 0
            for r in active:
                if self._stop.is_set():
                    break
                moved += self._run(r, shared)
            if moved == 0:
                return total
            total += moved
        return total

    def _run(self, runner: ProjectionRunner, shared: LogRead) -> int:
        try:
            moved = runner.run_once(shared)
        except Exception as e:
            runner.last_error = f"{type(e).__name__}: {e}"
            log.exception("projection %s failed; retrying", runner.name)
            runner.on_error(runner.last_error)
            self._retry_at[runner.name] = time.monotonic() + RETRY_SECONDS
            self.failures[runner.name] += 1
            return 0
        runner.last_error = None
        self._retry_at.pop(runner.name, None)
        self.failures.pop(runner.name, None)
        return moved
