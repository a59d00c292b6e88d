"""EventFollower: feeds the store's events, in global order, to a process application.

Used for event-driven policies (ModerationPolicy). Positions live in the store's tracking
table, written in the same transaction as the policy's own events, so a restart resumes
exactly where the last committed decision left off.
"""

import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Mapper, Tracking

from adapters.background import FollowingWorker, read_to
from commands.base import SharedStore

# A policy reacts to decisions within this long, in one pass for all the commits of the
# interval: passing once per group commit cost 12 % of the serving process's CPU at
# 400 commands/s (three queries a pass, nearly always finding none of its topics).
MIN_PASS_SECONDS = 0.05


class EventFollower(FollowingWorker):
    def __init__(
        self,
        store: SharedStore,
        mapper: Mapper[Any],
        processor: Any,  # has process_event(domain_event, tracking)
        *,
        tracking_name: str,
        topics: Sequence[str] = (),
        poll_seconds: float = 0.5,
        batch_size: int = 200,
        min_interval: float = MIN_PASS_SECONDS,
    ) -> None:
        super().__init__(store, poll_seconds=poll_seconds, min_interval=min_interval)
        self.mapper = mapper
        self.processor = processor
        self.tracking_name = tracking_name
        self.topics = list(topics)
        self.batch_size = batch_size
        self.processed = 0
        # How far this follower has read the log: beyond its tracked position when the
        # newest events are not of its topics (they leave no tracking record). Without it
        # every wake-up would re-scan every event since the last one of its topics.
        self._scanned = 0
        self._tracked = 0  # the tracked position last read

    @property
    def thread_name(self) -> str:
        return self.tracking_name

    @property
    def position(self) -> int:
        return self.store.recorder.max_tracking_id(self.tracking_name) or 0

    def run_until_idle(self) -> int:
        """Process everything recorded so far; return how many events were processed."""
        done = 0
        while not self._stop.is_set():
            # Ids are issued and committed in one order (the store's table lock; SQLite
            # has one writer), so nothing can still appear at or below the head.
            head = self.store.recorder.max_notification_id() or 0
            tracked = self.position
            if tracked < self._tracked:  # the tracking was reset: read everything again
                self._scanned = 0
            self._tracked = tracked
            start = max(tracked, self._scanned)
            if head <= start:
                return done
            notifications = self.store.recorder.select_notifications(
                start=start + 1, limit=self.batch_size, stop=head, topics=self.topics
            )
            for n in notifications:
                event = self.mapper.to_domain_event(n)
                self.processor.process_event(event, Tracking(self.tracking_name, n.id))
                done += 1
                self.processed += 1
            self._scanned = read_to(notifications, self.batch_size, head)
        return done

    def wait_until(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Test helper: poll a condition while the follower runs (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self._stop.wait(0.01)
        return bool(predicate())
