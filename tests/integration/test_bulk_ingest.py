"""The PostgreSQL bulk path keeps the event store's guarantees.

Batch ingest reads every stream a batch touches in one query and writes its events with
one COPY (adapters/eventstore/bulk.py). These stories check that it stores exactly what
the library's own path stores (same rows, same format, read back identically), that
notification ids stay in one global order with no gap a tailing reader could pass, that
a taken (stream, version) still rejects the whole transaction, and that idempotency keys
and retries behave as documented.
"""

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from adapters.bootstrap import Container
from adapters.eventstore import bulk
from adapters.eventstore.postgres import PostgresEventStoreRecorder
from commands.base import Idempotency, IdempotencyRecord
from commands.engagement import Signal
from domain.engagement import Engagement

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


def test_bulk_ingest_stores_what_the_library_path_stores(pg_server, container_factory, monkeypatch):
    # Given two empty stores with the same catalog
    with pg_server.fresh_database() as bulk_url, pg_server.fresh_database() as plain_url:
        fast = container_factory(bulk_url, clock=lambda: NOW)
        plain = container_factory(plain_url, clock=lambda: NOW)
        creator, videos = catalog(fast)
        assert catalog(plain) == (creator, videos)
        batches = [signals(creator, videos, 300, salt=b) for b in range(2)]
        batches.append(signals(creator, videos, 300, salt=0))  # the same streams again

        # When the same batches are ingested through the bulk path (COPY, one read)...
        copies: list[int] = []
        original_copy = PostgresEventStoreRecorder.copy_events

        def counting_copy(self: Any, events: Any, **kwargs: Any) -> list[int]:
            copies.append(len(events))
            return original_copy(self, events, **kwargs)

        monkeypatch.setattr(PostgresEventStoreRecorder, "copy_events", counting_copy)
        fast_results = [fast.engagement.ingest(b) for b in batches]
        # ...and through the library's own path (its INSERT, one load per aggregate)
        threshold = bulk.COPY_THRESHOLD
        monkeypatch.setattr(bulk, "COPY_THRESHOLD", 10**9)
        monkeypatch.setattr("commands.engagement.StreamBatchReader", type("Never", (), {}))
        plain_results = [plain.engagement.ingest(b) for b in batches]

        # Then the bulk path was used, and both stores hold the same events in the same
        # order, the same per-item results, and the same aggregates
        assert len(copies) == 3 and all(n >= threshold for n in copies)
        assert [r.items for r in fast_results] == [r.items for r in plain_results]
        statuses = {i.status for r in fast_results for i in r.items}
        assert sum(r.recorded for r in fast_results) > 500
        assert statuses == {"recorded", "duplicate", "rejected"}
        fast_rows, plain_rows = stored_rows(fast), stored_rows(plain)
        assert fast_rows == plain_rows
        assert [r.position for r in fast_results] == [r.position for r in plain_results]
        for stream_id in {row[0] for row in fast_rows}:
            assert aggregate_state(fast, stream_id) == aggregate_state(plain, stream_id)


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
