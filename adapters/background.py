"""A worker thread that follows the event store: run until idle, then wait for commits."""

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

from eventsourcing.persistence import Notification

from commands.base import SharedStore

log = logging.getLogger(__name__)


def read_to(notifications: Sequence[Notification], limit: int, head: int) -> int:
    """How far a read of at most `limit` events up to `head` has seen the log: its last
    event when the limit cut it, else the head (nothing in between was of its topics)."""
    return notifications[-1].id if len(notifications) == limit else head


class FollowingWorker(ABC):
    """Runs `run_until_idle` in a daemon thread whenever events may have arrived: woken at
    once by commits in this process (and by LISTEN/NOTIFY on PostgreSQL), polling every
    `poll_seconds` otherwise. An error never skips an event: it is recorded, and the
    work is retried after a back-off.

    `min_interval`: the shortest time between the starts of two passes. Every pass costs
    a few queries whether or not events of its topics arrived; a worker that need not
    react within milliseconds (a policy) gathers the commits of that interval into one
    pass instead of one pass per group commit (hundreds a second under load, each
    taking the GIL from the request path)."""

    def __init__(
        self, store: SharedStore, *, poll_seconds: float, min_interval: float = 0.0
    ) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.min_interval = min_interval
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    @abstractmethod
    def thread_name(self) -> str: ...

    @abstractmethod
    def run_until_idle(self) -> int: ...

    def on_error(self, message: str) -> None:  # noqa: B027 (an optional hook)
        """Hook: where else to report an error (besides `last_error` and the log)."""

    def start(self) -> None:
        self._stop.clear()  # a worker stopped before can be started again
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.store.notify_committed()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        generation = self.store.commit_generation
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_until_idle()
                self.last_error = None
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("%s failed; retrying", self.thread_name)
                self.on_error(self.last_error)
                self._stop.wait(1.0)
                continue
            generation = self.store.wait_for_commit(generation, self.poll_seconds)
            rest = started + self.min_interval - time.monotonic()
            if rest > 0:
                self._stop.wait(rest)  # a stop wakes it; commits meanwhile wait for the pass
