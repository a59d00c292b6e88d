"""The fast write paths on PostgreSQL keep the event store's guarantees.

Engagement goes through lean states and the group commit (commands/engagement.py,
adapters/eventstore/committer.py); other bulk writes through the recorder's COPY
(adapters/eventstore/bulk.py). These stories check that the group commit stores exactly
what the reference path (aggregates and the library's save) stores, same rows, same
format, same answers; that notification ids stay in one global order with no gap a
tailing reader could pass; that a taken (stream, version) still rejects a whole
transaction; and that idempotency keys and retries behave as documented.
"""

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from adapters.bootstrap import Container
from adapters.eventstore.postgres import PostgresEventStoreRecorder
from commands.base import Idempotency, IdempotencyRecord
from commands.engagement import Signal
from commands.engagement_reference import ReferenceEngagement
from domain.engagement import Engagement
from domain.errors import DomainError

pytestmark = pytest.mark.postgres

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EVENT_CLOCK_FIELDS = {"timestamp"}  # eventsourcing's recording time, not ours


def catalog(container: Container) -> tuple[UUID, list[UUID]]:
    creator = container.content.register_creator(
        creator_id=UUID(int=1), handle="ana", display_name="Ana", region="PT", occurred_at=NOW
    ).id
    videos = [
        container.content.publish_video(
            video_id=UUID(int=100 + i),
            creator_id=creator,
            caption=f"clip {i}",
            hashtags=["#dance"],
            sound_id=None,
            duration_seconds=15.0,
            occurred_at=NOW,
        ).id
        for i in range(3)
    ]
    return creator, videos


def signals(creator: UUID, videos: list[UUID], count: int, *, salt: int = 0) -> list[Signal]:
    """Deterministic signals of every kind, on new and on repeated streams."""
    out: list[Signal] = []
    for i in range(count):
        viewer = UUID(int=10_000 + salt * 1_000 + i % 37)
        video = videos[i % len(videos)]
        when = NOW + timedelta(seconds=i)
        match i % 6:
            case 0 | 1:
                out.append(
                    Signal("view", viewer, video, occurred_at=when, watch_seconds=float(i % 15),
                           client_event_id=f"c{salt}-{i}")
                )  # fmt: skip
            case 2:
                out.append(Signal("like", viewer, video, occurred_at=when))
            case 3:
                out.append(Signal("share", viewer, video, occurred_at=when, channel="sms"))
            case 4:
                out.append(
                    Signal("comment", viewer, video, occurred_at=when, text=f"nice {i}",
                           comment_id=UUID(int=500_000 + salt * 1_000 + i))
                )  # fmt: skip
            case _:
                out.append(Signal("follow", viewer, creator_id=creator, occurred_at=when))
    return out


def stored_rows(container: Container) -> list[tuple[Any, ...]]:
    """Every notification as (id order, stream, version, topic, decoded state minus the
    recording time), as the library reads it back."""
    mapper = container.engagement.mapper
    rows = []
    for n in container.store.recorder.select_notifications(start=1, limit=1_000_000):
        event = mapper.to_domain_event(n)
        state = {k: v for k, v in vars(event).items() if k not in EVENT_CLOCK_FIELDS}
        rows.append((n.originator_id, n.originator_version, n.topic, state))
    return rows


def aggregate_state(container: Container, aggregate_id: UUID) -> dict[str, Any]:
    aggregate = container.engagement.repository.get(aggregate_id)
    return {k: v for k, v in vars(aggregate).items() if k not in ("_created_on", "_modified_on")}


def test_group_commit_stores_what_the_reference_path_stores(pg_server, container_factory):
    # Given two empty stores with the same catalog
    with pg_server.fresh_database() as fast_url, pg_server.fresh_database() as plain_url:
        fast = container_factory(fast_url, clock=lambda: NOW)
        plain = container_factory(plain_url, clock=lambda: NOW)
        creator, videos = catalog(fast)
        assert catalog(plain) == (creator, videos)
        batches = [signals(creator, videos, 300, salt=b) for b in range(2)]
        batches.append(signals(creator, videos, 300, salt=0))  # the same streams again
        singles = signals(creator, videos, 40, salt=7)
        liker = UUID(int=77)
        singles += [
            Signal("like", liker, videos[0], occurred_at=NOW),
            Signal("like", liker, videos[0], occurred_at=NOW),  # already_liked
            Signal("unlike", UUID(int=78), videos[1], occurred_at=NOW),  # not_liked
            Signal("delete_comment", liker, videos[0], comment_id=UUID(int=9)),  # not found
            Signal("view", liker, UUID(int=999), occurred_at=NOW),  # no such video
            Signal("view", liker, videos[0], occurred_at=NOW, watch_seconds=1e6),  # too long
        ]

        # When the same signals go through the lean path (write model, group commit)...
        groups = fast.store.appender.groups
        fast_results = [fast.engagement.ingest(b) for b in batches]
        fast_singles = [outcome(lambda s=s: fast.engagement.record(s)) for s in singles]
        # ...and through the reference (aggregates, the library's repository and save)
        reference = ReferenceEngagement(plain.store, clock=lambda: NOW)
        plain_results = [reference.ingest(b) for b in batches]
        plain_singles = [outcome(lambda s=s: reference.record(s)) for s in singles]

        # Then the group commit was used, and both stores hold the same events in the same
        # order, the same per-item results and answers, and the same aggregates
        assert fast.store.appender.groups - groups == 3 + sum(
            1 for o in fast_singles if o[0] == "ok" and o[4] == "recorded"
        )
        assert [r.items for r in fast_results] == [r.items for r in plain_results]
        statuses = {i.status for r in fast_results for i in r.items}
        assert sum(r.recorded for r in fast_results) > 500
        assert statuses == {"recorded", "duplicate", "rejected"}
        assert fast_singles == plain_singles
        assert {o[0] for o in fast_singles} == {"ok", "error"}
        fast_rows, plain_rows = stored_rows(fast), stored_rows(plain)
        # The reference saves a batch aggregate by aggregate; the lean path in the order
        # of the signals (tested below): the same events, in the same order per stream.
        assert sorted(fast_rows, key=by_stream) == sorted(plain_rows, key=by_stream)
        assert [r.position for r in fast_results] == [r.position for r in plain_results]
        for stream_id in {row[0] for row in fast_rows}:
            assert aggregate_state(fast, stream_id) == aggregate_state(plain, stream_id)


def by_stream(row: tuple[Any, ...]) -> tuple[str, int]:
    return str(row[0]), row[1]


def test_a_batch_is_stored_in_the_order_of_its_signals(pg_url, container_factory):
    container = container_factory(pg_url, clock=lambda: NOW)
    creator, videos = catalog(container)
    batch = signals(creator, videos, 120, salt=3)
    head = container.head_position

    result = container.engagement.ingest(batch)

    stored = container.store.recorder.select_notifications(start=head + 1, limit=10_000)
    streams_in_order = list(dict.fromkeys(n.originator_id for n in stored))
    recorded = [i.id for i in result.items if i.status == "recorded"]
    assert streams_in_order == list(dict.fromkeys(recorded))
    assert [n.id for n in stored] == list(range(head + 1, result.position + 1))


def outcome(command: Any) -> tuple[Any, ...]:
    try:
        r = command()
    except DomainError as e:
        return ("error", type(e), e.code, e.message)
    return ("ok", r.id, r.version, r.position, r.details.get("status"))


def test_copy_returns_the_ids_it_was_issued_in_row_order(pg_url, container_factory):
    container = container_factory(pg_url)
    recorder = container.store.recorder
    assert isinstance(recorder, PostgresEventStoreRecorder)
    events = [StoredEvent(uuid4(), 1, "t:Topic", b'{"n":%d}' % i) for i in range(50)]

    ids = recorder.copy_events(events)

    stored = recorder.select_notifications(start=1, limit=100)
    assert ids == [n.id for n in stored]
    assert ids == list(range(ids[0], ids[0] + 50))
    assert [(n.originator_id, n.state) for n in stored] == [
        (e.originator_id, e.state) for e in events
    ]


def test_a_taken_version_rejects_the_whole_copy(pg_url, container_factory):
    container = container_factory(pg_url)
    recorder = container.store.recorder
    assert isinstance(recorder, PostgresEventStoreRecorder)
    taken = StoredEvent(uuid4(), 1, "t:Topic", b"{}")
    recorder.copy_events([taken, *(StoredEvent(uuid4(), 1, "t:Topic", b"{}") for _ in range(40))])
    head = recorder.max_notification_id()

    batch = [StoredEvent(uuid4(), 1, "t:Topic", b"{}") for _ in range(40)]
    with pytest.raises(IntegrityError):
        recorder.copy_events([*batch, StoredEvent(taken.originator_id, 1, "t:Other", b"{}")])

    assert recorder.max_notification_id() == head
    assert recorder.select_streams([e.originator_id for e in batch]) == {}


def test_a_single_command_write_is_one_transaction_that_a_taken_version_rolls_back(
    pg_url, container_factory
):
    # Small transactions go through insert_pipelined (COMMIT in the LOCK/INSERT pipeline).
    container = container_factory(pg_url)
    recorder = container.store.recorder
    assert isinstance(recorder, PostgresEventStoreRecorder)
    first = [StoredEvent(uuid4(), 1, "t:Topic", b"{}") for _ in range(2)]
    ids = recorder.insert_events(first)
    assert ids is not None and list(ids) == [ids[0], ids[0] + 1]
    assert [n.id for n in recorder.select_notifications(start=ids[0], limit=10)] == list(ids)
    head = recorder.max_notification_id()

    # When one of two events takes a taken version, with an idempotency row in the same
    # transaction, nothing is written and the library's IntegrityError is raised.
    record = IdempotencyRecord("pipelined-conflict", "fp", {"ok": True})
    fresh = StoredEvent(uuid4(), 1, "t:Topic", b"{}")
    clash = StoredEvent(first[0].originator_id, 1, "t:Other", b"{}")
    for _ in range(3):  # every pooled connection is left usable: the next write succeeds
        with pytest.raises(IntegrityError):
            recorder.insert_events([fresh, clash], idempotency=record)
    assert recorder.max_notification_id() == head
    assert recorder.select_streams([fresh.originator_id]) == {}
    assert recorder.find_idempotency(record.key) is None
    again = recorder.insert_events([fresh], idempotency=record)
    assert again is not None and again[0] > head
    assert recorder.find_idempotency(record.key) is not None


def test_concurrent_writers_never_leave_a_gap_a_tailing_reader_passes(pg_url, container_factory):
    # Given bulk and single-event writers racing, and a reader tailing by notification id
    container = container_factory(pg_url)
    recorder = container.store.recorder
    assert isinstance(recorder, PostgresEventStoreRecorder)
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write(bulk_size: int, rounds: int) -> None:
        try:
            for _ in range(rounds):
                batch = [StoredEvent(uuid4(), 1, "t:Topic", b"{}") for _ in range(bulk_size)]
                recorder.insert_events(batch)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    def tail() -> None:
        last = 0
        while True:
            finished = done.is_set()  # read before the query: a final pass after the end
            for n in recorder.select_notifications(start=last + 1, limit=10_000):
                seen.append(n.id)
                last = n.id
            if finished:
                return

    writers = [threading.Thread(target=write, args=(size, 15)) for size in (200, 100, 1, 2)]
    reader = threading.Thread(target=tail)
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    reader.join()

    # Then the reader saw every event exactly once, in id order
    assert not errors
    everything = [n.id for n in recorder.select_notifications(start=1, limit=100_000)]
    assert len(everything) == 15 * (200 + 100 + 1 + 2)
    assert seen == everything


def test_a_batch_retry_with_its_idempotency_key_replays_the_bulk_result(pg_url, container_factory):
    container = container_factory(pg_url, clock=lambda: NOW)
    creator, videos = catalog(container)
    batch = signals(creator, videos, 120)
    key = Idempotency("batch-1", "fingerprint-1")

    first = container.engagement.ingest(batch, idempotency=key)
    head = container.head_position
    again = container.engagement.ingest(batch, idempotency=key)

    assert first.recorded > 40 and not first.replayed
    assert again.replayed and again.items == first.items and again.position == first.position
    assert container.head_position == head == first.position


def test_a_concurrent_writer_on_a_prefetched_stream_makes_the_batch_retry(
    pg_url, container_factory
):
    # Given a batch whose streams are read before a competing writer likes the same video
    competitor_ran = threading.Event()

    class Interleave:
        calls = 0

        def __call__(self) -> datetime:
            self.calls += 1
            if self.calls == 1 and not competitor_ran.is_set():
                competitor_ran.set()
                other.engagement.record(Signal("like", viewer, video, occurred_at=NOW))
            return NOW

    clock = Interleave()
    container = container_factory(pg_url, clock=clock)
    other = container_factory(pg_url, clock=lambda: NOW)
    _, videos = catalog(other)
    video, viewer = videos[0], uuid4()
    batch = [Signal("like", viewer, video, occurred_at=NOW)]
    batch += [Signal("view", uuid4(), videos[1], occurred_at=NOW) for _ in range(40)]

    # When the batch is ingested (the competitor wins the race for the pair stream)
    result = container.engagement.ingest(batch)

    # Then the batch was retried against the winner's events: the like is rejected,
    # every other item recorded once, and the pair stream holds one like
    assert competitor_ran.is_set()
    assert result.items[0].status == "rejected" and result.items[0].error == "already_liked"
    assert result.recorded == 40
    pair = container.engagement.get_engagement(viewer, video)
    assert pair.liked and pair.version == 2
    assert isinstance(pair, Engagement)
