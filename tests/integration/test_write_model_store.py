"""The write model against a real store (PostgreSQL): streams it dropped are read back.

The write model keeps `write_model_streams` pair streams; the others live only in the
store. These stories check that a stream evicted from it is read (from its latest
snapshot) before it is decided again, never decided as new and refused; that concurrent
batches sharing hot streams with a second writer on the same store (another process's
write model) all land, exactly once, with dense versions; and what the snapshot read
returns.
"""

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.bootstrap import Container, bootstrap
from adapters.settings import Settings
from commands.engagement import Signal
from domain.engagement import Engagement
from domain.errors import VersionConflict

pytestmark = pytest.mark.postgres

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SMALL = 100  # the smallest write model the settings allow
CLIENT_RETRIES = 20


def catalog(container: Container, videos: int = 4) -> list[UUID]:
    creator = container.content.register_creator(
        creator_id=UUID(int=1), handle="ana", display_name="Ana", region="PT", occurred_at=NOW
    ).id
    return [
        container.content.publish_video(
            video_id=UUID(int=100 + i), creator_id=creator, caption=f"clip {i}", hashtags=[],
            sound_id=None, duration_seconds=30.0, occurred_at=NOW,
        ).id
        for i in range(videos)
    ]  # fmt: skip


@pytest.fixture
def containers(pg_url: str) -> Any:
    built: list[Container] = []

    def build() -> Container:
        c = bootstrap(
            Settings(database_url=pg_url, write_model_streams=SMALL, projections_in_process=False),
            clock=lambda: NOW,
        )
        built.append(c)
        return c

    yield build
    for c in reversed(built):
        c.close()


def view(viewer: UUID, video: UUID, i: int = 0) -> Signal:
    return Signal("view", viewer, video, occurred_at=NOW + timedelta(seconds=i), watch_seconds=2.0)


def versions(container: Container) -> dict[UUID, list[int]]:
    out: dict[UUID, list[int]] = {}
    for n in container.store.recorder.select_notifications(start=1, limit=10_000_000):
        out.setdefault(n.originator_id, []).append(n.originator_version)
    return out


def test_streams_evicted_from_the_write_model_are_read_not_decided_as_new(containers):
    c = containers()
    videos = catalog(c)
    pairs = [(UUID(int=10_000 + i), videos[i % len(videos)]) for i in range(3 * SMALL)]
    first = c.engagement.ingest([view(v, video) for v, video in pairs])
    assert first.recorded == len(pairs)
    assert len(c.engagement.model) <= SMALL  # two thirds of the streams were evicted

    again = c.engagement.ingest([view(v, video, 1) for v, video in pairs])

    assert again.recorded == len(pairs)
    assert {i.version for i in again.items} == {3}  # Started, Viewed, Viewed
    assert c.store.appender.refusals["StreamsExist"] == 0  # read before deciding
    stored = versions(c)
    assert all(stored[Engagement.create_id(v, video)] == [1, 2, 3] for v, video in pairs)


def test_a_stream_is_read_from_its_latest_snapshot(containers):
    c = containers()
    videos = catalog(c)
    viewer = UUID(int=7)
    for i in range(0, 250, 50):  # 250 events: Started + 249 views
        c.engagement.ingest([view(viewer, videos[0], i + k) for k in range(50 if i else 49)])
    stream_id = Engagement.create_id(viewer, videos[0])
    table = c.engagement.snapshots.recorder.events_table_name

    read = c.store.recorder.select_streams([stream_id], table)[stream_id]

    assert [e.originator_version for e in read] == [200, *range(201, 251)]
    assert read[0].topic.endswith("Snapshot")
    with c.engagement.model.lock:
        c.engagement.model.forget([stream_id])
    assert c.engagement.record(view(viewer, videos[0], 250)).version == 251
    assert c.engagement.get_engagement(viewer, videos[0]).views == 250


def test_concurrent_batches_on_hot_streams_with_a_second_writer_all_land_once(containers):
    # Given two write models on one store (two processes), each far smaller than the
    # streams touched, and batches where half the items hit a few hot pairs
    here, there = containers(), containers()
    videos = catalog(here)
    hot = [(UUID(int=50 + i), videos[0]) for i in range(8)]
    threads, batches, size = 6, 12, 60

    def batch(rng: random.Random, salt: int) -> list[Signal]:
        out = []
        for k in range(size):
            if k % 2:
                viewer, video = rng.choice(hot)
            else:
                viewer, video = UUID(int=rng.randrange(1_000_000, 1_000_400)), rng.choice(videos)
            out.append(view(viewer, video, -(salt * size + k)))
        return out

    sent: Counter[UUID] = Counter()
    sent_lock = threading.Lock()
    conflicts = [0]  # batches answered VersionConflict (a 409) and sent again
    errors: list[BaseException] = []

    # (First, one refusal for certain: a pair the other process stored is decided as new
    # here, refused at commit and read; below, refusals depend on the threads' timing.)
    first = [view(hot[0][0], hot[0][1], -1)]
    assert there.engagement.ingest(first).recorded == 1
    assert here.engagement.ingest(first).items[0].version == 3  # Started, two views
    assert here.store.appender.refusals["StreamsExist"] == 1
    sent.update([Engagement.create_id(*hot[0])] * 2)

    def work(t: int) -> None:
        rng = random.Random(t)
        app = (here if t % 3 else there).engagement
        try:
            for b in range(batches):
                signals = batch(rng, t * batches + b)
                for _ in range(CLIENT_RETRIES):  # as a client retries a 409: nothing stored
                    try:
                        result = app.ingest(signals)
                        break
                    except VersionConflict:
                        with sent_lock:
                            conflicts[0] += 1
                else:
                    raise AssertionError("a batch never landed")
                assert result.recorded == len(signals), [i for i in result.items if i.error]
                with sent_lock:
                    sent.update(Engagement.create_id(s.viewer_id, s.video_id) for s in signals)  # type: ignore[arg-type]
        except BaseException as e:
            errors.append(e)

    # When they ingest at once
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not any(w.is_alive() for w in workers), "an ingest did not return"

    # Then every batch landed, each view once, every stream's versions dense from 1
    assert not errors, errors[0]
    stored = versions(here)
    for stream_id, views in sent.items():
        assert stored[stream_id] == list(range(1, views + 2)), stream_id  # Started + views
    assert len(stored) == len(sent) + 2 + len(videos)  # + the creator, its handle, the videos


def test_a_single_command_reads_again_a_stream_another_process_wrote_after_its_read(
    containers, monkeypatch
):
    # Given a pair stream another process stored, that this one reads for a comment...
    here, there = containers(), containers()
    videos = catalog(here)
    viewer = UUID(int=77)
    pair = Engagement.create_id(viewer, videos[0])
    assert there.engagement.record(view(viewer, videos[0], 1)).version == 2  # Started, view
    read = here.engagement._read
    wrote: list[int] = []

    def read_then_the_other_writes(stream_ids: Any, deadline: Any = None) -> Any:
        got = read(stream_ids, deadline)
        if pair in stream_ids and not wrote:  # ...and the other process writes it just after
            wrote.append(there.engagement.record(view(viewer, videos[0], 2)).version)
        return got

    monkeypatch.setattr(here.engagement, "_read", read_then_the_other_writes)

    # When the comment commits: its version is taken (the primary key refuses it)
    comment = Signal("comment", viewer, videos[0], occurred_at=NOW, text="hi",
                     comment_id=UUID(int=5))  # fmt: skip
    result = here.engagement.record(comment)

    # Then it read the stream again and stored the next version, decided on the stored
    # state (not on its own refused comment: "comment id already used")
    assert wrote == [3]
    assert result.version == 4
    assert versions(here)[pair] == [1, 2, 3, 4]
