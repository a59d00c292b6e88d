"""FollowingWorker: a pass per commit, or, with `min_interval`, one pass for the commits
of each interval (a policy under load), never missing a commit and stopping at once."""

import itertools
import threading
import time

from adapters.background import FollowingWorker


class Commits:
    """What a worker needs of the SharedStore: the commit generation and its wake-up."""

    def __init__(self) -> None:
        self.committed = threading.Condition()
        self.commit_generation = 0

    def notify_committed(self) -> None:
        with self.committed:
            self.commit_generation += 1
            self.committed.notify_all()

    def wait_for_commit(self, seen: int, timeout: float) -> int:
        with self.committed:
            self.committed.wait_for(lambda: self.commit_generation != seen, timeout)
            return self.commit_generation


class Recorder(FollowingWorker):
    """Records when each pass started and the generation it saw."""

    def __init__(self, store: Commits, min_interval: float) -> None:
        super().__init__(store, poll_seconds=10.0, min_interval=min_interval)  # type: ignore[arg-type]
        self.passes: list[tuple[float, int]] = []
        self.changed = threading.Condition()

    @property
    def thread_name(self) -> str:
        return "test-follower"

    def run_until_idle(self) -> int:
        with self.changed:
            self.passes.append((time.monotonic(), self.store.commit_generation))
            self.changed.notify_all()
        return 0

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


def commit_for(store: Commits, seconds: float) -> int:
    """A commit every millisecond for `seconds` (a group commit under load)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        store.notify_committed()
        time.sleep(0.001)  # the load's pace, not a wait for a result
    return store.commit_generation


def test_without_an_interval_every_commit_gets_a_pass():
    store = Commits()
    worker = Recorder(store, min_interval=0.0)
    worker.start()
    try:
        last = commit_for(store, 0.3)
        assert worker.wait_for(lambda: worker.passes[-1][1] == last)
    finally:
        worker.stop()
    assert len(worker.passes) > 30  # one per commit it could see (hundreds unloaded)


def test_with_an_interval_the_commits_of_each_interval_share_one_pass():
    store = Commits()
    worker = Recorder(store, min_interval=0.1)
    worker.start()
    try:
        started = time.monotonic()
        last = commit_for(store, 0.5)
        # The last commit is seen by a pass within about one interval.
        assert worker.wait_for(lambda: worker.passes[-1][1] == last, timeout=5.0)
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    starts = [t for t, _ in worker.passes]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.1 - 0.005  # never two passes closer than the interval
    assert len(starts) <= elapsed / 0.1 + 2


def test_stop_does_not_wait_for_the_interval_to_end():
    store = Commits()
    worker = Recorder(store, min_interval=60.0)
    worker.start()
    assert worker.wait_for(lambda: len(worker.passes) == 1)
    store.notify_committed()  # the next pass is due in a minute
    started = time.monotonic()
    worker.stop(timeout=5.0)
    assert worker._thread is not None and not worker._thread.is_alive()
    assert time.monotonic() - started < 5.0
