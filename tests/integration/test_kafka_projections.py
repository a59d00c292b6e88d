"""Projections run from Kafka by a consumer group: N workers split the partitions, and
every event takes effect exactly once, also while workers join and leave.

Story 1: given a store filled with a seeded workload and relayed to Kafka (plus a batch
the relay re-published, as after a crash), two workers in one group split the partitions
and build read models identical, row by row, to one worker's, and equal to a recount.

Story 2: given 100,000 engagement messages, worker 1 starts; worker 2 joins mid-stream
(rebalance); worker 1 leaves mid-stream (rebalance); worker 2 finishes. Exactly 100,000
events were applied in committed transactions, and the counters equal the expected ones.
"""

import asyncio
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from support.readmodels import group_events

from adapters.bootstrap import Container, bootstrap
from adapters.kafka.client import ensure_topics, producer
from adapters.kafka.envelope import build_envelope, event_topic, family_of
from adapters.kafka.projection_consumer import KafkaProjectionWorker
from adapters.kafka.relay import KeyResolver, Relay
from adapters.readmodel.kafka_view import OffsetConflict, claim_offsets
from adapters.readmodel.tables import kafka_offsets, rm_kafka_video_engagement, rm_kafka_view_pairs
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from domain.creator import Creator
from domain.engagement import Engagement
from domain.values import derived_id
from domain.video import Video
from projections.recount import recount
from projections.video_engagement import VideoEngagementProjection

WORKLOAD = WorkloadConfig(
    seed=5, creators=20, viewers=400, views_per_day=1500, batch_window_seconds=600
)
REPUBLISHED = 300  # engagement messages the relay "re-publishes" after a simulated crash
MESSAGES = 100_000
PARTITIONS = 6
ALL_PARTITIONS = list(range(PARTITIONS))
# Rebalances are noticed at the next heartbeat: beat often so the tests do not wait.
FAST_GROUP = {"heartbeat_interval_ms": 300}
TIMEOUT = 60.0  # longest wait for any one condition
COUNTED = frozenset(VideoEngagementProjection.topics)
COLUMNS = ("views", "unique_viewers", "likes", "shares", "comments", "watch_ms", "completions")


# -- fixtures and helpers ------------------------------------------------------------------
def kafka_settings(bootstrap_servers: str, prefix: str) -> Settings:
    return Settings(
        database_url="memory://",
        kafka_bootstrap_servers=bootstrap_servers,
        kafka_topic_prefix=prefix,
        kafka_partitions=PARTITIONS,
        projection_batch_size=500,
    )


async def until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Wait, bounded, for a condition that other tasks make true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f} s: {what}")
        await asyncio.sleep(0.02)


async def bounded(awaitable: Awaitable[Any], what: str, timeout: float = TIMEOUT) -> Any:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise TimeoutError(f"not within {timeout:.0f} s: {what}") from None


def stored_offsets(engine: sa.Engine, group: str) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(kafka_offsets.c.partition, kafka_offsets.c.next_offset).where(
                kafka_offsets.c.consumer_group == group
            )
        )
        return {r.partition: int(r.next_offset) for r in rows}


def consumed(engine: sa.Engine, group: str) -> int:
    """Messages consumed by the group's committed transactions (offsets start at 0 on a
    fresh topic and have no gaps without transactions or compaction)."""
    return sum(stored_offsets(engine, group).values())


def read_model(engine: sa.Engine) -> dict[str, Any]:
    """Both tables, row by row."""
    with engine.connect() as conn:
        videos = conn.execute(
            sa.select(
                rm_kafka_video_engagement.c.video_id,
                *(rm_kafka_video_engagement.c[c] for c in COLUMNS),
            )
        )
        pairs = conn.execute(
            sa.select(rm_kafka_view_pairs.c.video_id, rm_kafka_view_pairs.c.viewer_id)
        )
        return {
            "videos": {r[0]: tuple(int(v) for v in r[1:]) for r in videos},
            "pairs": {(r.video_id, r.viewer_id) for r in pairs},
        }


def expected_model(events: list[Any]) -> dict[str, Any]:
    """What the tables must hold, counted from the events with projections/recount.py
    (independent of the projection's code) plus watch time and the viewer pairs."""
    counts = recount(events)
    watch: dict[UUID, int] = defaultdict(int)
    touched: set[UUID] = set()
    pairs: set[tuple[UUID, UUID]] = set()
    for e in events:
        if isinstance(e, Engagement.Viewed):
            watch[e.video_id] += round(e.watch_seconds * 1000)
            pairs.add((e.video_id, e.viewer_id))
        if get_topic(type(e)) in COUNTED:
            touched.add(e.video_id)
    videos = {}
    for v in touched:
        c = {**counts.videos[v], "watch_ms": watch[v]}
        videos[v] = tuple(int(c.get(name, 0)) for name in COLUMNS)
    return {"videos": videos, "pairs": pairs}


async def run_workers(*workers: KafkaProjectionWorker, **kwargs: Any) -> list[asyncio.Task[Any]]:
    return [asyncio.create_task(w.run(**kwargs)) for w in workers]


async def stop_all(workers: list[KafkaProjectionWorker], tasks: list[asyncio.Task[Any]]) -> None:
    for w in workers:
        w.stop()
    await bounded(asyncio.gather(*tasks), "workers stop")


# -- story 1: two workers build what one worker builds -------------------------------------
@pytest.fixture
def filled(kafka_bootstrap: str, kafka_prefix: str) -> Iterator[Container]:
    settings = kafka_settings(kafka_bootstrap, kafka_prefix)
    container = bootstrap(settings)
    try:
        drive_application(container, generate(WORKLOAD).commands)
        yield container
    finally:
        container.close()


async def republish_some(container: Container, count: int) -> int:
    """Publish `count` engagement events a second time, as a relay restarted after a crash
    between the broker's acks and its tracking write would."""
    settings = container.settings
    keys = KeyResolver(container.store)
    topic = event_topic(settings.kafka_topic_prefix, "engagement")
    kafka = producer(settings)
    await kafka.start()
    try:
        notifications = container.store.recorder.select_notifications(start=1, limit=10**7)
        again = [n for n in notifications if n.topic.startswith("domain.engagement:")][:count]
        acks = []
        for n in again:
            envelope = build_envelope(n, keys.key(n))
            acks.append(await kafka.send(topic, envelope.to_bytes(), key=envelope.key.encode()))
        await asyncio.gather(*acks)
        return len(acks)
    finally:
        await kafka.stop()


@pytest.mark.kafka
def test_two_workers_split_the_partitions_and_build_what_one_worker_builds(
    filled, read_urls, engines
):
    container = filled
    settings = container.settings
    topic = event_topic(settings.kafka_topic_prefix, "engagement")
    mapper = container.content.mapper
    engine_a, engine_b = engines(read_urls[0]), engines(read_urls[1])
    all_events = [
        mapper.to_domain_event(n)
        for n in container.store.recorder.select_notifications(start=1, limit=10**7)
    ]
    counted = sum(1 for e in all_events if get_topic(type(e)) in COUNTED)
    relayed = sum(1 for e in all_events if family_of(get_topic(type(e))) == "engagement")
    messages = relayed + REPUBLISHED
    timings: dict[str, float] = {}

    async def scenario() -> tuple[list[KafkaProjectionWorker], KafkaProjectionWorker, list]:
        t = time.perf_counter()
        await ensure_topics(settings)
        # (b) two workers of one group, live: both hold partitions before anything arrives.
        two = [
            KafkaProjectionWorker(settings, engine_b, mapper, "two", consumer_options=FAST_GROUP)
            for _ in range(2)
        ]
        tasks = await run_workers(*two)
        await until(
            lambda: (
                all(w.stats.partitions for w in two)
                and sorted(two[0].stats.partitions + two[1].stats.partitions) == ALL_PARTITIONS
            ),
            "two workers split the partitions",
        )
        split = [set(w.stats.partitions) for w in two]
        timings["group join"] = time.perf_counter() - t
        t = time.perf_counter()
        stats = await bounded(Relay(settings, container.store).run(until_caught_up=True), "relay")
        assert stats.published == len(all_events) and stats.by_topic[topic] == relayed
        assert await republish_some(container, REPUBLISHED) == REPUBLISHED
        timings["relay"] = time.perf_counter() - t
        await until(lambda: consumed(engine_b, "two") == messages, "two workers catch up")
        await stop_all(two, tasks)
        timings["two workers"] = time.perf_counter() - t
        t = time.perf_counter()
        # (a) one worker of another group, catching up on its own.
        one = KafkaProjectionWorker(settings, engine_a, mapper, "one")
        await bounded(one.run(until_idle=True, idle_ms=500), "one worker catches up")
        timings["one worker"] = time.perf_counter() - t
        return two, one, split

    two, one, split = asyncio.run(scenario())
    print(f"\n{len(all_events)} events; seconds {timings}")
    print(
        "\n".join(
            f"{name}: {w.stats}" for name, w in zip(("b1", "b2", "a"), (*two, one), strict=True)
        )
    )

    assert all(w.stats.applied > 0 for w in two), [w.stats for w in two]
    assert not split[0] & split[1]
    assert stored_offsets(engine_a, "one") == stored_offsets(engine_b, "two")
    assert consumed(engine_a, "one") == messages
    assert sum(w.stats.messages for w in two) == one.stats.messages == messages
    assert sum(w.stats.applied for w in two) == one.stats.applied == counted
    assert sum(w.stats.duplicates for w in two) == one.stats.duplicates == REPUBLISHED
    assert group_events(engine_a, "one") == group_events(engine_b, "two") == counted
    model_a, model_b = read_model(engine_a), read_model(engine_b)
    assert model_a["videos"] and model_a["pairs"]
    assert model_a == model_b
    assert model_a == expected_model(all_events)


# -- story 2: 100,000 messages while workers join and leave ---------------------------------
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def synthetic_events(
    *, videos: int = 400, viewers: int = 5000, seed: int = 3
) -> tuple[list[Any], Iterator[Any]]:
    """The videos' Published events, and an endless stream of engagement events made by
    the domain aggregates (so every rule holds). A few videos are far more popular."""
    rng = random.Random(seed)

    def uid() -> UUID:
        return UUID(int=rng.getrandbits(128), version=4)

    creator = Creator.register(
        creator_id=uid(), handle="kafka_load", display_name="Load", region="DE", occurred_at=T0
    )
    catalogue = [
        Video.publish(video_id=uid(), creator=creator, caption="clip", hashtags=[],
                      sound_id=None, duration_seconds=30.0, occurred_at=T0)
        for _ in range(videos)
    ]  # fmt: skip
    published = [e for v in catalogue for e in v.collect_events()]
    audience = [uid() for _ in range(viewers)]
    popularity = list(itertools.accumulate(1 / (rank + 1) ** 1.1 for rank in range(videos)))

    def stream() -> Iterator[Any]:
        pairs: dict[tuple[UUID, UUID], Engagement] = {}
        for session in itertools.count():
            # One viewer does a few things to one video.
            video = rng.choices(catalogue, cum_weights=popularity)[0]
            viewer = rng.choice(audience)
            at = T0 + timedelta(seconds=session)
            eng = pairs.get((viewer, video.id))
            if eng is None:
                eng = pairs[(viewer, video.id)] = Engagement.start(
                    viewer_id=viewer, video=video, occurred_at=at
                )
            for _ in range(rng.randint(1, 10)):
                act(rng.random(), eng, video, at)
            yield from (e for e in eng.collect_events() if not isinstance(e, Engagement.Started))

    return published, stream()


def act(roll: float, eng: Engagement, video: Video, at: datetime) -> None:
    if roll < 0.7:
        watched = round(roll * 60, 3)
        eng.view(video, watch_seconds=watched, completed=watched >= 30,
                 traffic_source="for_you", device="ios", occurred_at=at)  # fmt: skip
    elif roll < 0.8:
        (eng.unlike if eng.liked else eng.like)(video, occurred_at=at)
    elif roll < 0.85:
        eng.share(video, channel="copy_link", occurred_at=at)
    elif roll < 0.93 or not eng.comments:
        comment_id = derived_id(
            "comment", eng.id, str(len(eng.comments) + len(eng.deleted_comments))
        )
        eng.comment(video, comment_id=comment_id, text="nice", occurred_at=at)
    else:
        eng.delete_comment(comment_id=eng.comments[0], occurred_at=at)


class Synthetic:
    """`n` synthetic engagement events, mapped with the applications' mapper and wrapped
    as the relay wraps them (envelopes keyed by video id, positions 1..n), in chunks."""

    def __init__(self, mapper: Any, n: int, chunk: int = 5000) -> None:
        self.mapper, self.n, self.chunk = mapper, n, chunk
        self.published, self._stream = synthetic_events()
        self.events: list[Any] = []

    def next_chunk(self) -> list[tuple[bytes, bytes]]:
        """The next messages (none when all n are made)."""
        messages = []
        for event in itertools.islice(self._stream, min(self.chunk, self.n - len(self.events))):
            self.events.append(event)
            stored = self.mapper.to_stored_event(event)
            notification = Notification(
                id=len(self.events),
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=stored.state,
            )
            envelope = build_envelope(notification, str(event.video_id))
            messages.append((envelope.key.encode(), envelope.to_bytes()))
        return messages

    def expected(self) -> dict[str, Any]:
        return expected_model(self.published + self.events)


async def produce(settings: Settings, synthetic: Synthetic) -> dict[int, int]:
    """Make and publish the messages in order, a chunk at a time (made in a thread, so the
    workers run meanwhile); return each partition's end offset, from the broker's acks."""
    topic = event_topic(settings.kafka_topic_prefix, "engagement")
    kafka = producer(settings)
    await kafka.start()
    ends: dict[int, int] = {}
    try:
        while chunk := await asyncio.to_thread(synthetic.next_chunk):
            acks = [await kafka.send(topic, v, key=k) for k, v in chunk]
            for ack in await asyncio.gather(*acks):
                ends[ack.partition] = max(ends.get(ack.partition, 0), ack.offset + 1)
    finally:
        await kafka.stop()
    return ends


@pytest.mark.kafka
def test_workers_joining_and_leaving_apply_100k_events_exactly_once(
    kafka_bootstrap, kafka_prefix, tmp_path, engines
):
    settings = kafka_settings(kafka_bootstrap, kafka_prefix)
    container = bootstrap(Settings(database_url="memory://"))
    mapper = container.content.mapper
    url = f"sqlite:///{tmp_path}/read.db"
    check = engines(url)  # migrates; the test reads through it
    synthetic = Synthetic(mapper, MESSAGES)
    timings: dict[str, float] = {}

    async def scenario() -> tuple[KafkaProjectionWorker, KafkaProjectionWorker, dict[int, int]]:
        t = time.perf_counter()
        await ensure_topics(settings, [event_topic(settings.kafka_topic_prefix, "engagement")])
        # Separate engines, as if the workers were separate processes.
        w1, w2 = (
            KafkaProjectionWorker(settings, engines(url), mapper, "g", consumer_options=FAST_GROUP)
            for _ in range(2)
        )
        w2_applied = asyncio.Event()

        async def hold_w1(stats: Any) -> None:
            # Keeps work for the later stages even if a rebalance is slow: past half of the
            # stream, worker 1 waits (holding no batch) until worker 2 has applied a batch.
            if stats.applied >= MESSAGES // 2 and not w2_applied.is_set():
                await bounded(w2_applied.wait(), "worker 2 applies")

        (t1,) = await run_workers(w1, on_batch=hold_w1)
        producing = asyncio.create_task(produce(settings, synthetic))
        await until(lambda: w1.stats.applied >= 10_000, "worker 1 applies 10,000")
        timings["worker 1 alone"] = time.perf_counter() - t
        (t2,) = await run_workers(w2, on_batch=lambda _: w2_applied.set())
        await until(lambda: w2.stats.applied > 0, "worker 2 joins and applies")
        await until(
            lambda: len(w1.stats.partitions) == len(w2.stats.partitions) == PARTITIONS // 2,
            "the group rebalances: half of the partitions each",
        )
        timings["worker 2 joins"] = time.perf_counter() - t
        joined_at = w1.stats.applied
        await until(lambda: w1.stats.applied > joined_at, "both workers apply")
        w1.stop()
        await bounded(t1, "worker 1 leaves")
        timings["worker 1 leaves"] = time.perf_counter() - t
        await until(lambda: w2.stats.partitions == tuple(ALL_PARTITIONS), "worker 2 takes over")
        ends = await bounded(producing, "producing", 2 * TIMEOUT)
        timings["produced"] = time.perf_counter() - t
        await until(lambda: stored_offsets(check, "g") == ends, "worker 2 finishes")
        await stop_all([w2], [t2])
        timings["done"] = time.perf_counter() - t
        return w1, w2, ends

    try:
        w1, w2, ends = asyncio.run(scenario())
    finally:
        container.close()
    print(f"\nseconds {timings}\nworker 1: {w1.stats}\nworker 2: {w2.stats}")
    assert 0 < w1.stats.applied < MESSAGES and w2.stats.rebalances >= 2
    assert sum(ends.values()) == MESSAGES
    # Exactly once: every committed transaction together applied each message once.
    assert w1.stats.applied + w2.stats.applied == MESSAGES
    assert group_events(check, "g") == MESSAGES
    assert w1.stats.duplicates == w2.stats.duplicates == 0
    assert len(synthetic.events) == MESSAGES
    assert read_model(check) == synthetic.expected()


# -- the fence: a worker that lost its partition cannot commit ------------------------------
def test_a_stale_owner_cannot_move_the_stored_offset(read_urls, engines):
    engine = engines(read_urls[0])
    with engine.begin() as conn:
        claim_offsets(conn, "g", "t", {0: None, 1: None}, {0: 10, 1: 5})
    with engine.begin() as conn:  # the new owner moves on from 10
        claim_offsets(conn, "g", "t", {0: 10}, {0: 20})
    for expected in ({0: 10}, {0: None}):  # a zombie still believes 10 (or nothing)
        with pytest.raises(OffsetConflict), engine.begin() as conn:
            claim_offsets(conn, "g", "t", expected, {0: 15})
    assert stored_offsets(engine, "g") == {0: 20, 1: 5}
