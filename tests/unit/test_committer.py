"""The group committer's rules, against an in-memory GroupWriter.

The fake writer keeps rows like an events table (a primary key on stream and version, ids
issued in order) and can be told to fail: a lost connection before or after COMMIT, or a
conflict no check foresaw. Every test waits on futures with a timeout, never sleeps.
"""

import threading
import time
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from adapters.eventstore.committer import GroupCommitter, GroupTransaction, GroupWriter, ids_of
from commands.appending import (
    AppendRequest,
    CommitExpired,
    DependsOnRefused,
    EncodedEvent,
    IdempotencyKeyTaken,
    ReadsChanged,
    StreamsExist,
)
from commands.base import IdempotencyRecord

WAIT = 10.0
VIDEO_REMOVED = "domain.video:Video.Removed"


class FakeWriter(GroupWriter):
    def __init__(self) -> None:
        self.rows: list[tuple[int, UUID, int, str, bytes]] = []  # committed
        self.keys: set[str] = set()
        self.gate = threading.Event()  # set: transactions may start
        self.gate.set()
        self.entered = threading.Event()  # a transaction began (and may wait at the gate)
        self.fail_before_commit = 0  # lost connections before COMMIT
        self.lose_commit_ack = 0  # commits that succeed but raise
        self.transactions = 0
        self.sequence = 0  # the id sequence: only a rolled-back COPY burns values
        self.connect_wait = 0.0  # a failing attempt waits this long for a connection
        self.timeouts: list[float | None] = []  # the connection waits the committer allowed
        self.lost_commit_checks = 0

    def head(self) -> int:
        return self.rows[-1][0] if self.rows else 0

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[GroupTransaction]:
        self.entered.set()
        assert self.gate.wait(WAIT)
        self.transactions += 1
        self.timeouts.append(timeout)
        if self.fail_before_commit:
            self.fail_before_commit -= 1
            if self.connect_wait:  # the pool waiting for a server that is down
                time.sleep(min(self.connect_wait, timeout or self.connect_wait))
            raise OperationalError("connection lost")
        tx = FakeTx(self)
        yield tx
        self.rows.extend(tx.staged)
        self.keys |= tx.staged_keys
        if self.lose_commit_ack:
            self.lose_commit_ack -= 1
            raise OperationalError("connection lost during COMMIT")

    def committed_ids(self, requests: Sequence[AppendRequest]) -> list[int] | None:
        self.lost_commit_checks += 1
        rows = ((r[1], r[2], r[0]) for r in self.rows)
        return ids_of(iter(rows), requests)

    def insert(self, stream: UUID, version: int, topic: str = "t:Other") -> int:
        """A row written by another process."""
        self.sequence += 1
        self.rows.append((self.sequence, stream, version, topic, b"{}"))
        return self.sequence


class FakeTx(GroupTransaction):
    def __init__(self, writer: FakeWriter) -> None:
        self.w = writer
        self.staged: list[tuple[int, UUID, int, str, bytes]] = []
        self.staged_keys: set[str] = set()

    def watched_since(self, position: int, topics: Sequence[str]) -> list:
        return [(r[0], r[1], r[2], r[3]) for r in self.w.rows if r[0] > position and r[3] in topics]

    def existing(self, stream_ids: Collection[UUID]) -> set[UUID]:
        return {r[1] for r in self.w.rows} & set(stream_ids)

    def taken_keys(self, keys: Collection[str]) -> set[str]:
        return self.w.keys & set(keys)

    def append(self, requests: Sequence[AppendRequest]) -> list[int]:
        taken = {(r[1], r[2]) for r in self.w.rows}
        ids = []
        for r in requests:
            for e in r.events:
                self.w.sequence += 1
                if (e.originator_id, e.originator_version) in taken:
                    raise IntegrityError("duplicate key")
                taken.add((e.originator_id, e.originator_version))
                self.staged.append(
                    (self.w.sequence, e.originator_id, e.originator_version, e.topic, e.state)
                )
                ids.append(self.w.sequence)
            if r.idempotency is not None:
                self.staged_keys.add(r.idempotency.key)
        return ids


def event(stream: UUID, version: int, topic: str = "t:Viewed") -> EncodedEvent:
    return EncodedEvent(stream, version, topic, b'{"v":%d}' % version)


def request(*events: EncodedEvent, **kwargs: object) -> AppendRequest:
    new = kwargs.pop("new", None)
    if new is None:
        new = {e.originator_id for e in events if e.originator_version == 1}
    return AppendRequest(events=list(events), new_streams=new, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def writer() -> FakeWriter:
    return FakeWriter()


@pytest.fixture
def committer(writer: FakeWriter) -> Iterator[GroupCommitter]:
    c = GroupCommitter(writer, watched_topics=[VIDEO_REMOVED])
    yield c
    c.close()


def held(writer: FakeWriter, committer: GroupCommitter) -> AppendRequest:
    """Block the writer thread inside a first transaction, so what is submitted next
    queues up and is committed as one group."""
    writer.gate.clear()
    writer.entered.clear()
    first = request(event(uuid4(), 1))
    committer.submit(first)
    assert writer.entered.wait(WAIT), "the writer thread did not begin the first group"
    return first


def test_queued_requests_are_committed_together_in_order(writer, committer):
    held(writer, committer)
    streams = [uuid4() for _ in range(5)]
    futures = [committer.submit(request(event(s, 1), event(s, 2))) for s in streams]
    writer.gate.set()

    ids = [f.result(WAIT) for f in futures]

    assert committer.groups == 2  # the held one, then the five queued as one group
    assert [i for pair in ids for i in pair] == list(range(ids[0][0], ids[0][0] + 10))
    assert [r[1] for r in writer.rows[1:]] == [s for s in streams for _ in (1, 2)]


def test_a_refused_request_never_fails_its_neighbours(writer, committer):
    existing = uuid4()
    writer.insert(existing, 1)
    held(writer, committer)
    good = committer.submit(request(event(uuid4(), 1)))
    bad = committer.submit(request(event(existing, 1)))  # decided as new, but it exists
    also_good = committer.submit(request(event(uuid4(), 1)))
    writer.gate.set()

    assert len(good.result(WAIT)) == len(also_good.result(WAIT)) == 1
    with pytest.raises(StreamsExist) as refused:
        bad.result(WAIT)
    assert refused.value.stream_ids == {existing}


def test_requests_decided_on_a_refused_ones_state_are_refused_too(writer, committer):
    existing, other = uuid4(), uuid4()
    writer.insert(existing, 1)
    held(writer, committer)
    first = committer.submit(request(event(existing, 1)))
    second = committer.submit(request(event(existing, 2), event(other, 1)))
    third = committer.submit(request(event(other, 2)))  # via `other`
    unrelated = committer.submit(request(event(uuid4(), 1)))
    writer.gate.set()

    with pytest.raises(StreamsExist):
        first.result(WAIT)
    for dependent in (second, third):
        with pytest.raises(DependsOnRefused):
            dependent.result(WAIT)
    assert len(unrelated.result(WAIT)) == 1
    assert not any(r[1] == other for r in writer.rows)


def test_a_request_decided_on_one_refused_before_it_was_submitted_is_refused(writer, committer):
    existing, other = uuid4(), uuid4()
    writer.insert(existing, 1)
    held(writer, committer)
    first = committer.submit(request(event(existing, 1)))
    writer.gate.set()
    with pytest.raises(StreamsExist):
        first.result(WAIT)
    # Decided on the first one's state while it was pending, submitted after its refusal:
    late = committer.submit(
        request(event(other, 1), depends_on=frozenset({existing}), after=(first,))
    )
    with pytest.raises(DependsOnRefused):
        late.result(WAIT)
    assert not any(r[1] == other for r in writer.rows)
    still_pending: Future[list[int]] = Future()  # a dependency not settled yet: queued
    fine = committer.submit(request(event(other, 1), after=(still_pending,)))
    assert len(fine.result(WAIT)) == 1


def test_refusals_burn_no_position(writer, committer):
    existing = uuid4()
    writer.insert(existing, 1)
    held(writer, committer)
    futures = [committer.submit(request(event(existing, 1))) for _ in range(3)]
    futures += [committer.submit(request(event(uuid4(), 1))) for _ in range(3)]
    writer.gate.set()
    for f in futures[3:]:
        f.result(WAIT)

    assert [r[0] for r in writer.rows] == list(range(1, len(writer.rows) + 1))


def test_a_taken_idempotency_key_is_refused_once_stored_and_within_a_group(writer, committer):
    key = IdempotencyRecord("k-1", "fp", {"ok": True})
    first = committer.submit(request(event(uuid4(), 1), idempotency=key))
    first.result(WAIT)
    held(writer, committer)
    again = committer.submit(request(event(uuid4(), 1), idempotency=key))
    other_key = IdempotencyRecord("k-2", "fp", {"ok": True})
    twin_a = committer.submit(request(event(uuid4(), 1), idempotency=other_key))
    twin_b = committer.submit(request(event(uuid4(), 1), idempotency=other_key))
    writer.gate.set()

    with pytest.raises(IdempotencyKeyTaken):
        again.result(WAIT)
    assert len(twin_a.result(WAIT)) == 1
    with pytest.raises(IdempotencyKeyTaken):
        twin_b.result(WAIT)


def test_a_read_stream_that_changed_refuses_the_request(writer, committer):
    video = uuid4()
    writer.insert(video, 1, "domain.video:Video.Published")
    learnt: list[list] = []
    committer.add_watch_listener(learnt.append)
    writer.insert(video, 2, VIDEO_REMOVED)  # by another process, after this one started

    stale = committer.submit(request(event(uuid4(), 1), reads={video: 1}))
    with pytest.raises(ReadsChanged) as refused:
        stale.result(WAIT)
    fresh = committer.submit(request(event(uuid4(), 1), reads={video: 2}))

    assert refused.value.stream_ids == {video}
    assert len(fresh.result(WAIT)) == 1
    assert [w[1:] for w in learnt[0]] == [(video, 2, VIDEO_REMOVED)]


def test_a_status_change_saved_in_this_process_is_learnt_at_once(writer, committer):
    video = uuid4()
    learnt: list[list] = []
    committer.add_watch_listener(learnt.append)
    position = writer.insert(video, 3, VIDEO_REMOVED)

    committer.observe([event(video, 3, VIDEO_REMOVED), event(uuid4(), 1)], [position, 99])

    assert learnt == [[(position, video, 3, VIDEO_REMOVED)]]
    with pytest.raises(ReadsChanged):
        committer.submit(request(event(uuid4(), 1), reads={video: 2})).result(WAIT)


def test_a_request_past_its_deadline_is_not_stored(writer, committer):
    held(writer, committer)
    late = committer.submit(request(event(uuid4(), 1), deadline=time.monotonic() - 1))
    cancelled = committer.submit(request(event(uuid4(), 1)))
    assert cancelled.cancel()  # a caller that stopped waiting before its group was taken
    on_time = committer.submit(request(event(uuid4(), 1), deadline=time.monotonic() + WAIT))
    writer.gate.set()

    assert len(on_time.result(WAIT)) == 1
    with pytest.raises(CommitExpired):
        late.result(WAIT)
    assert len(writer.rows) == 2  # the held request and the one on time


def test_a_taken_request_can_no_longer_be_cancelled(writer, committer):
    held(writer, committer)
    taken = committer.submit(request(event(uuid4(), 1)))
    writer.gate.set()
    ids = taken.result(WAIT)
    assert not taken.cancel() and len(ids) == 1


def test_an_unreachable_database_is_retried_without_losing_or_doubling(writer, committer):
    writer.fail_before_commit = 2
    first = committer.submit(request(event(uuid4(), 1), event(uuid4(), 1)))
    assert len(first.result(WAIT)) == 2

    writer.lose_commit_ack = 1  # committed, but the answer was lost
    second = committer.submit(request(event(uuid4(), 1)))
    ids = second.result(WAIT)

    assert len(writer.rows) == 3  # nothing written twice
    assert ids == [writer.rows[-1][0]]


def test_an_unforeseen_conflict_is_isolated_by_committing_one_by_one(writer, committer):
    cached = uuid4()  # this process believes it is at version 1; another wrote version 2
    writer.insert(cached, 1)
    writer.insert(cached, 2)
    held(writer, committer)
    before = committer.submit(request(event(uuid4(), 1)))
    stale = committer.submit(request(event(cached, 2)))
    dependent = committer.submit(request(event(cached, 3)))
    after = committer.submit(request(event(uuid4(), 1)))
    writer.gate.set()

    assert len(before.result(WAIT)) == len(after.result(WAIT)) == 1
    with pytest.raises(IntegrityError):
        stale.result(WAIT)
    with pytest.raises(DependsOnRefused):
        dependent.result(WAIT)
    assert not any(r[1] == cached and r[2] == 3 for r in writer.rows)


def test_while_the_database_is_down_a_request_is_answered_at_its_deadline(writer, committer):
    # Every attempt fails before COMMIT after waiting for a connection (the pool's wait)
    writer.fail_before_commit = 1_000_000
    writer.connect_wait = 0.4
    deadline = time.monotonic() + 1.0
    future = committer.submit(request(event(uuid4(), 1), deadline=deadline))

    with pytest.raises(CommitExpired):
        future.result(WAIT)

    # answered about when its deadline passed: no connection wait beyond it, and no
    # lost-commit lookup (nothing could have been committed before a COMMIT was sent)
    assert time.monotonic() - deadline < 0.3
    assert writer.timeouts and all(t is not None and t <= 1.0 for t in writer.timeouts)
    assert writer.lost_commit_checks == 0


def test_two_requests_of_a_group_writing_the_same_version_keep_the_first(writer, committer):
    # Two write models of one process (say HTTP and a Kafka ingest worker) decided the
    # same stream's next version; the second must not reach the COPY (it would fail the
    # whole group on the primary key)
    stream, other = uuid4(), uuid4()
    held(writer, committer)
    first = committer.submit(request(event(stream, 1), event(other, 1)))
    same = committer.submit(request(event(stream, 1), new=set()))
    unrelated = committer.submit(request(event(uuid4(), 1)))
    writer.gate.set()

    assert len(first.result(WAIT)) == 2
    with pytest.raises(DependsOnRefused):
        same.result(WAIT)
    assert len(unrelated.result(WAIT)) == 1
    assert [r[2] for r in writer.rows if r[1] == stream] == [1]
    assert writer.transactions == 2  # the held one, then the group: no one-by-one retry
