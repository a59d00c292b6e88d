"""The Kafka ingest worker: client signals from the ingest topic into the event store, at
least once and counted once, with poison messages dead-lettered instead of blocking.

Every test has its own topic prefix on the session broker, its own in-memory event store
and creator with videos, and runs workers until they have read every partition to its end.
"""

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from adapters.bootstrap import Container, bootstrap
from adapters.kafka.client import consumer, ensure_topics, producer
from adapters.kafka.envelope import dead_letter_topic, ingest_topic
from adapters.kafka.ingest import (
    DETAIL_HEADER,
    REASON_HEADER,
    SOURCE_HEADER,
    IngestStats,
    IngestWorker,
)
from adapters.settings import Settings
from commands.engagement import Signal

pytestmark = pytest.mark.kafka

RUN_TIMEOUT = 120.0  # seconds for a worker to join the group and drain the topic
READ_TIMEOUT = 30.0  # seconds to read the expected dead letters back
IDLE_MS = 300


@dataclass
class World:
    settings: Settings
    container: Container
    creator: UUID
    videos: list[UUID]

    @property
    def topic(self) -> str:
        return ingest_topic(self.settings.kafka_topic_prefix)

    def views(self, viewer: UUID, video: UUID) -> int:
        return self.container.engagement.get_engagement(viewer, video).views


@pytest.fixture
def world(kafka_bootstrap: str, kafka_prefix: str) -> Iterator[World]:
    settings = Settings(
        database_url="memory://",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=kafka_prefix,
    )
    container = bootstrap(settings)
    content = container.content
    creator = content.register_creator(handle="ann", display_name="Ann", region="SE").id
    videos = [
        content.publish_video(
            creator_id=creator, caption=f"clip {n}", hashtags=[], sound_id=None,
            duration_seconds=30,
        ).id
        for n in range(10)
    ]  # fmt: skip
    yield World(settings, container, creator, videos)
    container.close()


# -- helpers -----------------------------------------------------------------------------
def view(viewer: UUID, video: UUID, client_event_id: str | None, **fields: Any) -> dict[str, Any]:
    doc = {"type": "view", "viewer_id": str(viewer), "video_id": str(video), "watch_seconds": 12}
    if client_event_id is not None:
        doc["client_event_id"] = client_event_id
    return doc | fields


def message(doc: Any, key: UUID) -> tuple[bytes, bytes]:
    return str(key).encode(), orjson.dumps(doc)


async def _produce(
    settings: Settings, messages: list[tuple[bytes | None, bytes]], *, spread: bool = False
) -> list[Any]:
    """spread: message n goes to partition n mod partitions, whatever its key."""
    await ensure_topics(settings)
    kafka = producer(settings)
    await kafka.start()
    try:
        topic = ingest_topic(settings.kafka_topic_prefix)
        acks = [
            await kafka.send(
                topic, value=v, key=k, partition=n % settings.kafka_partitions if spread else None
            )
            for n, (k, v) in enumerate(messages)
        ]
        return list(await asyncio.gather(*acks))
    finally:
        await kafka.stop()


def produce(settings: Settings, messages: list[tuple[bytes | None, bytes]]) -> list[Any]:
    """Send to the ingest topic; returns each message's RecordMetadata (partition, offset)."""
    return asyncio.run(asyncio.wait_for(_produce(settings, messages), READ_TIMEOUT))


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait, bounded, until condition() holds (checked every 50 ms)."""
    deadline = asyncio.get_running_loop().time() + RUN_TIMEOUT
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


def run(worker: IngestWorker, **kwargs: Any) -> IngestStats:
    options = {"until_idle": True, "idle_timeout_ms": IDLE_MS} | kwargs
    return asyncio.run(asyncio.wait_for(worker.run(**options), RUN_TIMEOUT))


async def _dead_letters(settings: Settings, count: int) -> list[ConsumerRecord[Any, Any]]:
    kafka = consumer(settings, dead_letter_topic(settings.kafka_topic_prefix), group_id=None)
    await kafka.start()
    try:
        found: list[ConsumerRecord[Any, Any]] = []
        while len(found) < count:
            batch = await kafka.getmany(timeout_ms=500)
            found += [r for rs in batch.values() for r in rs]
        return found
    finally:
        await kafka.stop()


def dead_letters(settings: Settings, count: int) -> list[ConsumerRecord[Any, Any]]:
    return asyncio.run(asyncio.wait_for(_dead_letters(settings, count), READ_TIMEOUT))


async def _committed(settings: Settings, group_id: str) -> dict[int, int]:
    topic = ingest_topic(settings.kafka_topic_prefix)
    kafka = consumer(settings, group_id=group_id)
    await kafka.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        return {tp.partition: await kafka.committed(tp) or 0 for tp in tps}
    finally:
        await kafka.stop()


def committed_offsets(settings: Settings, group_id: str) -> dict[int, int]:
    """The group's committed offset of every ingest partition (0: none)."""
    return asyncio.run(asyncio.wait_for(_committed(settings, group_id), READ_TIMEOUT))


def end_offsets(settings: Settings, sent: list[Any]) -> dict[int, int]:
    """Every partition's end offset, from the producer's acks. (Not ListOffsets: Tansu
    answers it with the last record batch's base offset + 1.)"""
    ends = dict.fromkeys(range(settings.kafka_partitions), 0)
    for metadata in sent:
        ends[metadata.partition] = max(ends[metadata.partition], metadata.offset + 1)
    return ends


def headers(record: ConsumerRecord[Any, Any]) -> Mapping[str, str]:
    return {k: v.decode() for k, v in record.headers}


# -- stories -----------------------------------------------------------------------------
def test_poison_messages_are_dead_lettered_and_never_block_the_partition(world: World):
    video, viewer = world.videos[0], uuid4()
    like = {"type": "like", "viewer_id": str(viewer), "video_id": str(video)}
    key = str(video).encode()  # one key: one partition, so the poison sits between them
    messages = [
        message(view(viewer, video, "p-0"), video),
        (key, b"\xff\xfe{ not json"),
        message(view(viewer, video, "p-2", watch_seconds=-3), video),
        message(like | {"client_event_id": "p-3"}, video),
        message(view(viewer, uuid4(), "p-4"), video),  # unknown video: rejected
        message(like | {"client_event_id": "p-5"}, video),  # liked already: rejected
        (key, b"[1, 2]"),
        message(view(viewer, video, None), video),  # no client_event_id
        message({"type": "dance", "viewer_id": str(viewer)}, video),
        message(view(viewer, video, "p-9", watch_seconds=5), video),
    ]
    expected_reasons = {
        1: "invalid_json",
        2: "invalid_input",
        4: "rejected:video_not_found",
        5: "rejected:already_liked",
        6: "invalid_input",
        7: "invalid_input",
        8: "invalid_input",
    }
    head = world.container.head_position
    sent = produce(world.settings, messages)

    stats = run(IngestWorker(world.settings, world.container, group_id="poison"))

    assert (stats.consumed, stats.recorded, stats.duplicates, stats.dead_lettered) == (
        10, 3, 0, len(expected_reasons),
    )  # fmt: skip
    # Started + Viewed + Liked + Viewed, the last one after all the poison
    assert world.container.head_position == head + 4 == stats.position
    engagement = world.container.engagement.get_engagement(viewer, video)
    assert (engagement.views, engagement.liked) == (2, True)

    by_source = {f"{world.topic}:{m.partition}:{m.offset}": i for i, m in enumerate(sent)}
    letters = dead_letters(world.settings, len(expected_reasons))
    by_index = {by_source[headers(letter)[SOURCE_HEADER]]: letter for letter in letters}
    assert {i: headers(letter)[REASON_HEADER] for i, letter in by_index.items()} == (
        expected_reasons
    )
    for index, letter in by_index.items():
        assert (letter.key, letter.value) == messages[index], "original key and value"
        assert headers(letter)[DETAIL_HEADER], "a human-readable detail"
    assert "watch_seconds" in headers(by_index[2])[DETAIL_HEADER]
    assert "video_not_found" not in headers(by_index[4])[DETAIL_HEADER]  # the message

    assert committed_offsets(world.settings, "poison") == end_offsets(world.settings, sent)


def test_a_redelivered_signal_counts_once(world: World):
    viewers = [uuid4() for _ in range(40)]
    pairs = [(viewer, world.videos[n % 3]) for n, viewer in enumerate(viewers)]
    once = [message(view(v, video, f"r-{n}"), video) for n, (v, video) in enumerate(pairs)]
    head = world.container.head_position
    sent = produce(world.settings, once + once)  # every message delivered twice

    worker = IngestWorker(world.settings, world.container, group_id="redelivery")

    def stop_when_all_consumed(stats: IngestStats) -> None:
        if stats.consumed >= 2 * len(once):
            worker.stop()

    stats = run(worker, until_idle=False, on_batch=stop_when_all_consumed)

    assert (stats.consumed, stats.recorded, stats.duplicates, stats.dead_lettered) == (
        80, 40, 40, 0,
    )  # fmt: skip
    assert [world.views(v, video) for v, video in pairs] == [1] * 40
    assert world.container.head_position == head + 2 * 40  # Started + Viewed per pair
    assert committed_offsets(world.settings, "redelivery") == end_offsets(world.settings, sent)


class Crash(Exception):
    """Stands for the process dying between storing a batch and committing its offsets."""


def test_a_crash_before_the_commit_redelivers_and_still_counts_once(world: World):
    settings = world.settings.model_copy(update={"kafka_ingest_batch_size": 25})
    pairs = [(uuid4(), world.videos[n % 10]) for n in range(100)]
    sent = produce(
        settings, [message(view(v, video, f"c-{n}"), video) for n, (v, video) in enumerate(pairs)]
    )
    head = world.container.head_position

    def crash(offsets: Mapping[TopicPartition, int]) -> None:
        raise Crash

    first = IngestWorker(settings, world.container, group_id="crash", before_commit=crash)
    with pytest.raises(Crash):
        run(first)
    stored = first.stats.recorded
    assert 0 < stored <= 25 and first.stats.batches == 0
    assert world.container.head_position == head + 2 * stored, "stored, but not committed"
    assert sum(committed_offsets(settings, "crash").values()) == 0

    second = run(IngestWorker(settings, world.container, group_id="crash"))

    assert second.duplicates == stored, "the crashed batch came again and counted once"
    assert second.recorded == 100 - stored and second.dead_lettered == 0
    assert [world.views(v, video) for v, video in pairs] == [1] * 100
    assert world.container.head_position == head + 2 * 100
    assert committed_offsets(settings, "crash") == end_offsets(settings, sent)


def test_a_message_that_trips_an_unexpected_error_is_isolated(world: World, monkeypatch):
    from commands import engagement

    evil, good = uuid4(), [uuid4() for _ in range(5)]
    real = engagement._Decision.apply

    def apply(self: Any, signal: Signal, *args: Any) -> Any:
        if signal.viewer_id == evil:
            raise RuntimeError("a bug this message triggers")
        return real(self, signal, *args)

    monkeypatch.setattr(engagement._Decision, "apply", apply)
    video = world.videos[0]
    viewers = [*good[:2], evil, *good[2:]]
    sent = produce(
        world.settings, [message(view(v, video, f"e-{n}"), video) for n, v in enumerate(viewers)]
    )

    stats = run(IngestWorker(world.settings, world.container, group_id="isolate"))

    assert (stats.recorded, stats.dead_lettered) == (5, 1)
    assert stats.by_reason == {"error:RuntimeError": 1}
    assert [world.views(v, video) for v in good] == [1] * 5
    [letter] = dead_letters(world.settings, 1)
    assert headers(letter)[REASON_HEADER] == "error:RuntimeError"
    assert committed_offsets(world.settings, "isolate") == end_offsets(world.settings, sent)


def test_two_workers_in_one_group_share_the_partitions_and_count_once(world: World):
    settings = world.settings.model_copy(update={"kafka_ingest_batch_size": 40})
    pairs = [(uuid4(), world.videos[n % 10]) for n in range(600)]
    sent = produce(
        settings, [message(view(v, video, f"s-{n}"), video) for n, (v, video) in enumerate(pairs)]
    )

    async def two_workers() -> list[IngestStats]:
        workers = [IngestWorker(settings, world.container, group_id="pair") for _ in range(2)]
        return await asyncio.gather(
            *(w.run(until_idle=True, idle_timeout_ms=IDLE_MS) for w in workers)
        )

    first, second = asyncio.run(asyncio.wait_for(two_workers(), RUN_TIMEOUT))

    assert first.recorded + second.recorded == 600
    assert first.dead_lettered + second.dead_lettered == 0
    assert [world.views(v, video) for v, video in pairs] == [1] * 600
    assert committed_offsets(settings, "pair") == end_offsets(settings, sent)


def test_a_worker_joining_mid_stream_takes_over_partitions_without_loss(world: World):
    settings = world.settings.model_copy(update={"kafka_ingest_batch_size": 20})
    pairs = [(uuid4(), world.videos[n % 10]) for n in range(600)]
    messages = [message(view(v, video, f"j-{n}"), video) for n, (v, video) in enumerate(pairs)]
    first_half, second_half = messages[:300], messages[300:]

    async def scenario() -> tuple[IngestWorker, IngestWorker, list[Any]]:
        early = IngestWorker(settings, world.container, group_id="join")
        late = IngestWorker(settings, world.container, group_id="join")
        sent = await _produce(settings, first_half, spread=True)
        tasks = [asyncio.create_task(early.run())]
        try:
            await eventually(lambda: early.stats.consumed >= 300, "the first worker is busy")
            tasks.append(asyncio.create_task(late.run()))
            await eventually(
                lambda: bool(late.partitions) and early.partitions.isdisjoint(late.partitions),
                "the group rebalanced over both workers",
            )
            sent += await _produce(settings, second_half, spread=True)
            await eventually(
                lambda: early.stats.recorded + late.stats.recorded >= 600, "all are stored"
            )
        finally:
            early.stop()
            late.stop()
            await asyncio.gather(*tasks)
        return early, late, sent

    early, late, sent = asyncio.run(asyncio.wait_for(scenario(), RUN_TIMEOUT))

    assert early.stats.recorded + late.stats.recorded == 600
    assert late.stats.recorded > 0, "the late worker took over partitions"
    assert [world.views(v, video) for v, video in pairs] == [1] * 600
    assert committed_offsets(settings, "join") == end_offsets(settings, sent)


def test_throughput_of_five_thousand_signals(world: World, capsys: pytest.CaptureFixture[str]):
    viewers = [uuid4() for _ in range(500)]
    pairs = [(viewer, video) for viewer in viewers for video in world.videos]
    sent = produce(
        world.settings,
        [message(view(v, video, f"t-{n}"), video) for n, (v, video) in enumerate(pairs)],
    )
    head = world.container.head_position

    stats = run(IngestWorker(world.settings, world.container, group_id="throughput"))

    assert (stats.consumed, stats.recorded, stats.duplicates, stats.dead_lettered) == (
        5000, 5000, 0, 0,
    )  # fmt: skip
    events = world.container.head_position - head
    assert events == 2 * 5000  # Started + Viewed per pair: nothing lost
    assert sum(world.views(v, video) for v, video in pairs[::97]) == len(pairs[::97])
    assert committed_offsets(world.settings, "throughput") == end_offsets(world.settings, sent)
    # Baseline in the same run: the same number of signals straight into the application.
    direct = [
        Signal("view", uuid4(), video, client_event_id=f"d-{n}", watch_seconds=12)
        for n, video in enumerate(world.videos * 500)
    ]
    began = time.perf_counter()
    for start in range(0, len(direct), world.settings.kafka_ingest_batch_size):
        world.container.engagement.ingest(
            direct[start : start + world.settings.kafka_ingest_batch_size]
        )
    baseline = len(direct) / (time.perf_counter() - began)
    rate = stats.consumed / stats.busy_seconds
    with capsys.disabled():
        print(
            f"\nKafka ingest: {stats.consumed} messages -> {events} events in "
            f"{stats.batches} batches, {stats.busy_seconds:.2f} s busy: {rate:,.0f} msg/s, "
            f"{events / stats.busy_seconds:,.0f} events/s; {rate / baseline:.2f}x calling "
            f"ingest() directly ({baseline:,.0f} signals/s); run {stats.seconds:.1f} s "
            f"including group join and idle check"
        )
