"""Group commit: one writer thread per process commits every queued command at once.

Commands are decided against the in-memory write model by the threads that receive them
(HTTP handlers, ingest workers) and queued here as `AppendRequest`s. The writer thread
takes everything queued (up to `max_group_events`) and commits it as one transaction
(`GroupWriter`, one per database):

    lock the events table (the library's EXCLUSIVE lock: commit order = id order)
    read what the decisions could not see      watched events since the last group,
                                               which of the "new" streams exist,
                                               which idempotency keys are taken
    refuse, per request, what no longer holds  (the rest of the group goes on)
    write the rest                             idempotency rows, NOTIFY, one COPY
    commit                                     one WAL flush for the whole group

Steps, in `_commit`: plan -> append -> deliver. While one group commits, the next one
queues, so the group grows with the load: one lock, one COPY and one flush serve many
commands.

Safety (docs/architecture.md, "The write path"):
* a refused request never fails its neighbours, but every request that was decided on
  its provisional state is refused with it (the same streams, in this group or queued,
  or submitted later with its commit in `AppendRequest.after`: `DependsOnRefused`,
  transitively), atomically with the refusal under the queue's lock; the write model
  drops the refused state when it next reads the stream (commands/write_model.py), so
  this thread never waits for the deciding threads;
* the checks run under the table lock, so what they read cannot change before the
  commit; a primary-key conflict that no check foresaw (another process wrote a stream
  this process had cached) rolls the group back and commits its requests one by one;
* positions are not burned by refusals: refused requests never reach the COPY;
* a request whose deadline passed before its group was written is not stored
  (`CommitExpired`); once written, its outcome is delivered whatever the deadline;
* a connection lost during COMMIT is resolved by looking for the group's last event
  before anything is retried, so a group is never written twice.
"""

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from adapters.observability.metrics import count_recorded
from commands.appending import (
    Appender,
    AppendRefused,
    AppendRequest,
    CommitExpired,
    DependsOnRefused,
    IdempotencyKeyTaken,
    ReadsChanged,
    StreamsExist,
    Watched,
    refused,
)

log = logging.getLogger(__name__)

MAX_GROUP_EVENTS = 20_000  # one transaction's events at most (memory, lock hold time)
RETRY_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0)  # back-off while the database is unreachable
RETRY_LIMIT_SECONDS = 60.0  # then requests without a deadline get the database error


class GroupTransaction(ABC):
    """One group's transaction, the events table locked (GroupWriter.transaction)."""

    def checks(
        self,
        position: int,
        topics: Sequence[str],
        new_streams: Collection[UUID],
        keys: Collection[str],
    ) -> tuple[list[Watched], set[UUID], set[str]]:
        """What the plan reads, at once (a writer may send it in one round trip): watched
        events after `position`, which `new_streams` exist, which `keys` are taken."""
        return (
            self.watched_since(position, topics) if topics else [],
            self.existing(new_streams) if new_streams else set(),
            self.taken_keys(keys) if keys else set(),
        )

    @abstractmethod
    def watched_since(self, position: int, topics: Sequence[str]) -> list[Watched]:
        """Events of `topics` after `position`, in order."""

    @abstractmethod
    def existing(self, stream_ids: Collection[UUID]) -> set[UUID]:
        """Which of these streams have events."""

    @abstractmethod
    def taken_keys(self, keys: Collection[str]) -> set[str]:
        """Which of these idempotency keys are stored."""

    @abstractmethod
    def append(self, requests: Sequence[AppendRequest]) -> list[int]:
        """Write the requests' idempotency rows and events (in order); return the events'
        notification ids. Raises IntegrityError if an (id, version) is taken."""


class GroupWriter(ABC):
    @abstractmethod
    def transaction(self, timeout: float | None = None) -> AbstractContextManager[GroupTransaction]:
        """Begin, lock the events table; commit on exit (roll back on an exception).
        `timeout`: the longest wait for a connection (the group's nearest deadline), then
        OperationalError."""

    @abstractmethod
    def head(self) -> int:
        """The store's last notification id (0 when empty)."""

    @abstractmethod
    def committed_ids(self, requests: Sequence[AppendRequest]) -> list[int] | None:
        """The notification ids of the requests' events if they are stored (a commit whose
        acknowledgement was lost), else None."""


@dataclass(eq=False)
class _Entry:
    request: AppendRequest
    future: "Future[list[int]]" = field(default_factory=Future)

    @property
    def size(self) -> int:
        return len(self.request.events)


@dataclass
class _Plan:
    survivors: list[_Entry] = field(default_factory=list)
    refused: list[tuple[_Entry, Exception]] = field(default_factory=list)
    failed_streams: set[UUID] = field(default_factory=set)

    def refuse(self, entry: _Entry, error: Exception) -> None:
        self.refused.append((entry, error))
        self.failed_streams |= entry.request.streams


class GroupCommitter(Appender):
    """The process's single writer of lean append requests (see the module docstring)."""

    def __init__(
        self,
        writer: GroupWriter,
        *,
        watched_topics: Sequence[str] = (),
        on_committed: Callable[[], None] | None = None,
        max_group_events: int = MAX_GROUP_EVENTS,
        name: str = "group-commit",
    ) -> None:
        self.writer = writer
        self.watched_topics = list(watched_topics)
        self.on_committed = on_committed
        self.max_group_events = max_group_events
        self._watch_listeners: list[Callable[[list[Watched]], None]] = []
        self._versions: dict[UUID, int] = {}  # newest version seen of each watched stream
        self._versions_lock = threading.Lock()
        self._unannounced: list[Watched] = []
        # Watched events up to here are known: every event committed later has a larger
        # id (ids are issued under the table lock), and no decision has read yet.
        self._last_seen = writer.head()
        self._queue: list[_Entry] = []
        self._cond = threading.Condition()
        self._closing = False
        self.groups = 0  # committed transactions (tests, metrics)
        self._commit_sent = False  # the current transaction reached its COMMIT
        self.refusals: Counter[str] = Counter()  # refused requests by reason (tests, metrics)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- Appender --------------------------------------------------------------------------
    def add_watch_listener(self, listener: Callable[[list[Watched]], None]) -> None:
        self._watch_listeners.append(listener)

    def observe(self, events: Sequence[Any], ids: Sequence[int] | None) -> None:
        """Events this process stored by another path (the library's save: content,
        moderation, the policy): their watched ones are learnt and announced at once, so
        this process's decisions see its own status changes before the next group."""
        if not ids or not self.watched_topics:
            return
        topics = set(self.watched_topics)
        watched = [
            (nid, e.originator_id, e.originator_version, e.topic)
            for e, nid in zip(events, ids, strict=False)
            if e.topic in topics
        ]
        if watched:
            with self._versions_lock:
                self._learn_versions(watched)
            for listener in self._watch_listeners:
                listener(watched)

    def submit(self, request: AppendRequest) -> "Future[list[int]]":
        entry = _Entry(request)
        with self._cond:
            if self._closing:
                raise RuntimeError("the group committer is closed")
            if any(refused(f) for f in request.after):
                self._refuse(entry, DependsOnRefused("an earlier request on its streams failed"))
                return entry.future
            self._queue.append(entry)
            self._cond.notify()
        return entry.future

    def _refuse_queued(self, streams: Collection[UUID], reason: Exception) -> None:
        """Refuse every queued request decided on the refused one's state (with the lock
        held): those that touched its streams, and transitively theirs."""
        failed = set(streams)
        refused: list[_Entry] = []
        kept = []
        for entry in self._queue:  # FIFO: dependents come after what they depend on
            if entry.request.touched & failed:
                failed |= entry.request.streams
                refused.append(entry)
            else:
                kept.append(entry)
        if refused:
            self._queue = kept
            for entry in refused:
                if not entry.future.done():
                    entry.future.set_exception(DependsOnRefused(str(reason)))
                    self.refusals[DependsOnRefused.__name__] += 1

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    # -- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            group = self._claim(group)
            try:
                self._commit(group)
            except BaseException as e:  # never leave a caller waiting
                log.exception("group commit failed")
                for entry in group:
                    if not entry.future.done():
                        self._refuse(entry, e if isinstance(e, Exception) else RuntimeError(e))

    def _take(self) -> list[_Entry] | None:
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            size, n = 0, 0
            for entry in self._queue:
                if n and size + entry.size > self.max_group_events:
                    break
                size += entry.size
                n += 1
            group, self._queue = self._queue[:n], self._queue[n:]
            return group

    def _claim(self, group: list[_Entry]) -> list[_Entry]:
        """From here on a request's caller can no longer cancel it (its outcome will be
        delivered); one cancelled before is dropped, its provisional state forgotten."""
        claimed = []
        for entry in group:
            if entry.future.set_running_or_notify_cancel():
                claimed.append(entry)
            else:
                self._refuse(entry, CommitExpired("cancelled before it was committed"))
        return claimed

    def _commit(self, group: list[_Entry]) -> None:
        """plan -> append -> deliver, retrying while the database is unreachable."""
        started = time.monotonic()
        for attempt in range(10_000):
            group = self._drop_expired(group)
            if not group:
                return
            try:
                self._transact(group)
                return
            except IntegrityError:
                # A conflict no check foresaw: find it by committing one request at a time.
                self._one_by_one(group)
                return
            except (OperationalError, InterfaceError) as e:
                if self._commit_sent and self._resolved_after_lost_commit(group):
                    return
                waited = time.monotonic() - started
                if waited > RETRY_LIMIT_SECONDS:
                    for entry in group:
                        self._refuse(entry, e)
                    return
                log.warning("group commit: database unavailable (%s); retrying", e)
                self._expire_queued()  # the queue's deadlines pass while this group waits
                pause = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                deadlines = [x.request.deadline for x in group if x.request.deadline is not None]
                if deadlines:  # never sleep past a deadline of the group
                    pause = min(pause, max(0.0, min(deadlines) - time.monotonic()))
                time.sleep(pause)

    def _transact(self, group: list[_Entry]) -> None:
        """One transaction for the group. Until its COMMIT is sent nothing can be stored:
        an error before that (no connection, a lost one) needs no lost-commit check."""
        self._commit_sent = False
        deadlines = [e.request.deadline for e in group if e.request.deadline is not None]
        timeout = max(0.05, min(deadlines) - time.monotonic()) if deadlines else None
        try:
            with self.writer.transaction(timeout) as tx:
                plan = self._plan(tx, group)
                requests = [e.request for e in plan.survivors]
                # From here a COMMIT may be sent (a writer may send it with the writes): a
                # lost connection must be resolved by looking for the group's events.
                self._commit_sent = True
                ids = tx.append(requests) if requests else []
        finally:
            self._announce()  # what the checks learnt, committed or not: it is true
        # Committed.
        self.groups += 1
        self._advance(ids)
        for entry, error in plan.refused:
            self._refuse(entry, error)
        self._deliver(plan.survivors, ids)

    def _one_by_one(self, group: list[_Entry]) -> None:
        failed: set[UUID] = set()
        for entry in group:
            if entry.request.touched & failed:
                failed |= entry.request.streams
                self._refuse(entry, DependsOnRefused("an earlier request on its streams failed"))
                continue
            try:
                self._transact([entry])
            except IntegrityError as e:
                failed |= entry.request.streams
                self._refuse(entry, e)

    def _resolved_after_lost_commit(self, group: list[_Entry]) -> bool:
        """After a connection error: if the group's events are stored (the COMMIT went
        through, its answer was lost), deliver them instead of writing them again."""
        requests = [e.request for e in group]
        if not any(r.events for r in requests):
            return False
        try:
            ids = self.writer.committed_ids(requests)
        except (OperationalError, InterfaceError):
            return False
        if ids is None:
            return False
        self._advance(ids)
        self._deliver(group, ids)
        return True

    # -- plan: the checks, per request, in queue order --------------------------------------
    def _watch(self, watched: list[Watched]) -> None:
        """Learn the watched events since the last group (any writer's) before the checks:
        under the lock, nothing newer can be committed until this transaction ends."""
        with self._versions_lock:
            self._learn_versions(watched)
        if watched:
            self._last_seen = max(self._last_seen, watched[-1][0])
            self._unannounced.extend(watched)

    def _plan(self, tx: GroupTransaction, group: list[_Entry]) -> _Plan:
        new = {s for e in group for s in e.request.new_streams}
        keys = [e.request.idempotency.key for e in group if e.request.idempotency]
        watched, exists, taken = tx.checks(self._last_seen, self.watched_topics, new, keys)
        self._watch(watched)
        plan = _Plan()
        # Streams more than one request of the group writes (set operations on the
        # frozensets reuse their stored hashes): only their versions can collide.
        seen: set[UUID] = set()
        twice: set[UUID] = set()
        for entry in group:
            streams = entry.request.streams
            twice |= streams & seen
            seen |= streams
        claimed: set[tuple[UUID, int]] = set()
        keys_in_group: set[str] = set()
        for entry in group:
            r = entry.request
            shared = r.streams & twice if twice else None
            error = self._check(
                r, plan.failed_streams, exists, taken | keys_in_group, claimed if shared else None
            )
            if error is not None:
                plan.refuse(entry, error)
                continue
            plan.survivors.append(entry)
            if shared:
                claimed.update(
                    (e.originator_id, e.originator_version)  # type: ignore[misc]
                    for e in r.events
                    if e.originator_id in twice
                )
            if r.idempotency is not None:
                keys_in_group.add(r.idempotency.key)
        return plan

    def _check(
        self,
        r: AppendRequest,
        failed: set[UUID],
        exists: set[UUID],
        taken: set[str],
        claimed: set[tuple[UUID, int]] | None,
    ) -> AppendRefused | None:
        if r.touched & failed:
            return DependsOnRefused("an earlier request on its streams was refused")
        hit = exists.intersection(r.new_streams)
        if hit:
            return StreamsExist(hit)
        if r.reads and self._versions:  # nothing watched seen yet: nothing changed
            changed = [s for s, v in r.reads.items() if self._versions.get(s, v) > v]
            if changed:
                return ReadsChanged(changed)
        if r.idempotency is not None and r.idempotency.key in taken:
            return IdempotencyKeyTaken(r.idempotency.key)
        if claimed:  # two write models of one store deciding the same stream
            for e in r.events:
                if (e.originator_id, e.originator_version) in claimed:
                    return DependsOnRefused("another request of the group writes this version")
        return None

    # -- after the commit --------------------------------------------------------------------
    def _learn_versions(self, watched: list[Watched]) -> None:
        for _, stream_id, version, _ in watched:
            if version > self._versions.get(stream_id, 0):
                self._versions[stream_id] = version

    def _announce(self) -> None:
        """Tell the listeners (the write models) what the checks learnt."""
        watched, self._unannounced = self._unannounced, []
        if watched:
            for listener in self._watch_listeners:
                listener(watched)

    def _advance(self, ids: list[int]) -> None:
        if ids:
            self._last_seen = max(self._last_seen, ids[-1])
            if self.on_committed is not None:
                self.on_committed()

    def _deliver(self, entries: list[_Entry], ids: list[int]) -> None:
        offset = 0
        for entry in entries:
            n = entry.size
            count_recorded(entry.request.events)
            entry.future.set_result(ids[offset : offset + n])
            offset += n

    def _expire_queued(self) -> None:
        """Refuse the queued requests whose deadline passed (not taken yet: the writer is
        retrying a group while the database is unreachable)."""
        now = time.monotonic()
        with self._cond:
            expired = [e for e in self._queue
                       if e.request.deadline is not None and now > e.request.deadline]  # fmt: skip
            if expired:
                gone = set(map(id, expired))
                self._queue = [e for e in self._queue if id(e) not in gone]
                for entry in expired:
                    self._refuse(entry, CommitExpired("not stored: the request's deadline passed"))

    def _drop_expired(self, group: list[_Entry]) -> list[_Entry]:
        now = time.monotonic()
        live = []
        for entry in group:
            deadline = entry.request.deadline
            if deadline is not None and now > deadline:
                self._refuse(entry, CommitExpired("not stored: the request's deadline passed"))
            else:
                live.append(entry)
        return live

    def _refuse(self, entry: _Entry, error: Exception) -> None:
        """Fail the request and, in the same critical section, every queued one decided on
        it: no request can be submitted on its state in between (`submit` checks `after`
        under the same lock)."""
        with self._cond:
            if not entry.future.done():
                entry.future.set_exception(error)
                self.refusals[type(error).__name__] += 1
            if self._queue:
                self._refuse_queued(entry.request.streams, error)


def ids_of(
    rows: Iterator[tuple[UUID, int, int]], requests: Sequence[AppendRequest]
) -> list[int] | None:
    """The notification ids of the requests' events from rows (id, version, notification
    id) found in the store, in the requests' order; None unless every event was found."""
    found = {(originator_id, version): nid for originator_id, version, nid in rows}
    ids = []
    for r in requests:
        for e in r.events:
            nid = found.get((e.originator_id, e.originator_version))  # type: ignore[arg-type]
            if nid is None:
                return None
            ids.append(nid)
    return ids
