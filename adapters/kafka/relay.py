"""The outbound relay: the event store's global order -> Kafka topics, at least once.

Position is kept in the event store's tracking table (row "ReelPulse->KafkaRelay") and
advanced only after the broker acknowledged every message of the batch. A crash between
the acks and that write re-publishes the batch after restart: duplicates are possible
only then, and they are the same record: same bytes, headers, key, partition and
timestamp (the event time, not the relay's clock). Messages of one key (video id) are
sent in log order on one partition, so per-key order holds.

The projection feeds (`REELPULSE_KAFKA_PROJECTION_FEEDS`, docs/scaling.md): each event is
also sent to `<prefix>.feed.video.v1` (the same key and bytes as its public message; one
topic, so that a video's content, engagement and moderation events keep their global order
on one partition), and each view to `<prefix>.feed.viewer.v1` keyed by its viewer. After a
batch is acknowledged, a watermark marker (`watermark_message`) goes to every partition of
each feed: a worker that has read a partition up to a marker for position P has seen every
event up to P of that partition, which is how Kafka-run projections report a position that
read-your-writes tokens can wait on.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from aiokafka.partitioner import DefaultPartitioner
from eventsourcing.persistence import Notification, Tracking

from adapters.kafka.client import ensure_topics, producer
from adapters.kafka.envelope import (
    FAMILY_OF_MODULE,
    NO_WATERMARK,
    TRENDING_WATERMARK_HEADER,
    VIEWED_TOPIC,
    encode,
    event_id,
    event_topic,
    feed_topic,
    headers,
    iso_of,
    payload_uuid,
    timestamp_ms,
    watermark_message,
)
from adapters.kafka.public import plain_data
from adapters.settings import Settings
from commands.base import SharedStore
from projections.trending import WATERMARK_TOPICS, minute_of

log = logging.getLogger(__name__)
TRACKING_NAME = "ReelPulse->KafkaRelay"
# The trending watermark the relay stamps on the video feed (envelope.py), kept beside its
# position: a tracking row per new maximum (minutes since the epoch).
WATERMARK_TRACKING_NAME = "ReelPulse->KafkaRelay:trending-watermark"


class KeyResolver:
    """The partition key of an event: its video id (creator id for creator events).

    Follow and case events after the first do not name their creator/video, so the
    stream's first event is read once and remembered (bounded LRU)."""

    def __init__(self, store: SharedStore, maxsize: int = 100_000) -> None:
        self.store = store
        self.maxsize = maxsize
        self._first: OrderedDict[str, str] = OrderedDict()

    def key(
        self, n: Notification, payload: dict[str, Any] | None = None, stream: str | None = None
    ) -> str:
        module = n.topic.split(":", 1)[0]
        stream = stream or str(n.originator_id)
        if module in ("domain.video", "domain.creator"):
            return stream
        if module == "domain.engagement":
            return payload_uuid(n, "video_id", payload) or stream
        if module == "domain.handle":  # one event per stream: beside its creator's events
            return payload_uuid(n, "creator_id", payload) or stream
        field_name = "creator_id" if module == "domain.following" else "video_id"
        if n.originator_version == 1:
            key = payload_uuid(n, field_name, payload) or stream
            self._remember(stream, key)
            return key
        if stream not in self._first:
            first = self.store.recorder.select_events(UUID(stream), lte=1)
            self._remember(
                stream, (payload_uuid(first[0], field_name) if first else None) or stream
            )
        self._first.move_to_end(stream)
        return self._first[stream]

    def _remember(self, stream: str, key: str) -> None:
        self._first[stream] = key
        if len(self._first) > self.maxsize:
            self._first.popitem(last=False)


def _later(watermark: int | None, occurred_at: str | None) -> int | None:
    """The trending watermark after an event of WATERMARK_TOPICS at `occurred_at`."""
    if occurred_at is None:
        return watermark
    minute = minute_of(datetime.fromisoformat(occurred_at))
    return minute if watermark is None or minute > watermark else watermark


class _RecordBatches:
    """A relay batch's messages in record batches per (topic, partition), built with
    aiokafka's BatchBuilder and handed over with `send_batch`: one append per message
    instead of one `send` (an await and a future) per message, the relay's largest cost.
    Per partition, messages go out in the order they were added (full batches first, in
    the order they filled, then the open one)."""

    def __init__(self, kafka: Any) -> None:
        self.kafka = kafka
        self.open: dict[tuple[str, int], Any] = {}
        self.full: list[tuple[str, int, Any]] = []

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes,
        value: bytes,
        timestamp: int | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        builder = self.open.get((topic, partition))
        if builder is None:
            builder = self.open[(topic, partition)] = self.kafka.create_batch()
        if builder.append(timestamp=timestamp, key=key, value=value, headers=headers) is None:
            # Full: the next batch of this partition. An empty batch takes any message.
            self.full.append((topic, partition, builder))
            builder = self.open[(topic, partition)] = self.kafka.create_batch()
            builder.append(timestamp=timestamp, key=key, value=value, headers=headers)

    async def send(self) -> list[Any]:
        """Queue every batch; return the futures of their acknowledgements."""
        batches = [*self.full, *((t, p, b) for (t, p), b in self.open.items())]
        self.open, self.full = {}, []
        return [await self.kafka.send_batch(b, t, partition=p) for t, p, b in batches]


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    position: int = 0
    head: int = 0
    last_error: str | None = None
    seconds: float = 0.0
    by_topic: dict[str, int] = field(default_factory=dict)


class Relay:
    def __init__(self, settings: Settings, store: SharedStore) -> None:
        self.settings = settings
        self.store = store
        self.keys = KeyResolver(store)
        self.stats = RelayStats()
        self._stopping = asyncio.Event()
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._topic_partitions: dict[str, list[int]] = {}
        self._watermark: int | None = None  # the trending watermark after the position
        self._watermark_stored: int | None = None
        self._watermark_loaded = False

    @property
    def position(self) -> int:
        return self.store.recorder.max_tracking_id(TRACKING_NAME) or 0

    async def _partitions_of(self, kafka: Any, topic: str) -> list[int]:
        """The topic's partitions, asked of the broker once."""
        partitions = self._topic_partitions.get(topic)
        if partitions is None:
            partitions = self._topic_partitions[topic] = sorted(await kafka.partitions_for(topic))
        return partitions

    async def _partition(self, kafka: Any, topic: str, key: bytes) -> int:
        """aiokafka's default (murmur2) partition for a key, computed once per key: the
        same partition any other keyed producer picks, without hashing every message."""
        cached = self._partitions.get((topic, key))
        if cached is None:
            partitions = await self._partitions_of(kafka, topic)
            cached = DefaultPartitioner()(key, partitions, partitions)
            if len(self._partitions) > 200_000:
                self._partitions.clear()
            self._partitions[(topic, key)] = cached
        return cached

    def stop(self) -> None:
        self._stopping.set()

    def _load_watermark(self, position: int) -> None:
        """The trending watermark after `position`: stored beside it, or (a relay that
        published before it was kept: an upgrade) the largest minute of the watermark
        topics' events up to it, read once from the store."""
        stored = self.store.recorder.max_tracking_id(WATERMARK_TRACKING_NAME)
        if stored is None and position > 0:
            recorder, start = self.store.recorder, 0
            while start < position:
                page = recorder.select_notifications(
                    start=start + 1, limit=5000, stop=position, topics=sorted(WATERMARK_TOPICS)
                )
                for n in page:
                    stored = _later(stored, iso_of(orjson.loads(n.state).get("occurred_at")))
                if len(page) < 5000:
                    break
                start = page[-1].id
        self._watermark = self._watermark_stored = stored
        self._watermark_loaded = True

    async def _watermarks(self, kafka: Any, topics: tuple[str, ...], position: int) -> None:
        """A marker for `position` on every partition of the feeds, after the batch's acks
        (so it lands behind every event of the batch on its partition)."""
        value, marker_headers = watermark_message(position)
        acks = []
        for topic in topics:
            for p in await self._partitions_of(kafka, topic):
                acks.append(
                    await kafka.send(topic, value=value, partition=p, headers=marker_headers)
                )
        await asyncio.gather(*acks)

    async def run(
        self, *, until_caught_up: bool = False, on_batch: Callable[[RelayStats], None] | None = None
    ) -> RelayStats:
        await ensure_topics(self.settings)
        kafka = producer(self.settings)
        await kafka.start()
        try:
            generation = self.store.commit_generation
            while not self._stopping.is_set():
                sent = await self.publish_batch(kafka)
                if on_batch is not None and sent:
                    on_batch(self.stats)
                if sent:
                    continue
                if until_caught_up:
                    break
                generation = await asyncio.to_thread(
                    self.store.wait_for_commit, generation, self.settings.policy_poll_seconds
                )
        finally:
            await kafka.stop()
        return self.stats

    async def publish_batch(self, kafka: Any) -> int:
        """Publish the next batch; advance the position after every ack. Returns count."""
        start = self.position
        notifications = await asyncio.to_thread(
            self.store.recorder.select_notifications,
            start=start + 1,
            limit=self.settings.kafka_relay_batch_size,
        )
        self.stats.head = await asyncio.to_thread(self.store.recorder.max_notification_id) or 0
        if not notifications:
            return 0
        prefix = self.settings.kafka_topic_prefix
        feeds = self.settings.kafka_projection_feeds
        if feeds and not self._watermark_loaded:
            await asyncio.to_thread(self._load_watermark, start)
        watermark = self._watermark
        video_feed, viewer_feed = feed_topic(prefix, "video"), feed_topic(prefix, "viewer")
        batches = _RecordBatches(kafka)
        for n in notifications:
            # Hot path: parse the state once, no envelope object, no await per message.
            payload = orjson.loads(n.state)
            stream = str(n.originator_id)
            key = self.keys.key(n, payload, stream)
            module, type_ = n.topic.split(":", 1)
            topic = event_topic(prefix, FAMILY_OF_MODULE[module])
            eid = event_id(stream, n.originator_version)
            version, data = plain_data(n.topic, payload)
            occurred_at = iso_of(payload.get("occurred_at"))
            recorded_at = iso_of(payload.get("timestamp"))
            key_bytes = key.encode()
            partition = self._partitions.get((topic, key_bytes))
            if partition is None:
                partition = await self._partition(kafka, topic, key_bytes)
            value = encode(
                eid, type_, version, n.topic, n.id, stream, n.originator_version,
                occurred_at, recorded_at, key, data, payload,
            )  # fmt: skip
            stamp_ms = timestamp_ms(occurred_at, recorded_at)
            message_headers = headers(type_, version, eid)
            batches.add(topic, partition, key_bytes, value, stamp_ms, message_headers)
            self.stats.by_topic[topic] = self.stats.by_topic.get(topic, 0) + 1
            if feeds:
                where = self._partitions.get((video_feed, key_bytes))
                if where is None:
                    where = await self._partition(kafka, video_feed, key_bytes)
                feed_headers = message_headers
                if n.topic in WATERMARK_TOPICS:  # stamped with the watermark before it
                    stamp = NO_WATERMARK if watermark is None else str(watermark).encode()
                    feed_headers = [*message_headers, (TRENDING_WATERMARK_HEADER, stamp)]
                    watermark = _later(watermark, occurred_at)
                batches.add(video_feed, where, key_bytes, value, stamp_ms, feed_headers)
                if n.topic == VIEWED_TOPIC:
                    viewer = (payload_uuid(n, "viewer_id", payload) or stream).encode()
                    where = self._partitions.get((viewer_feed, viewer))
                    if where is None:
                        where = await self._partition(kafka, viewer_feed, viewer)
                    batches.add(viewer_feed, where, viewer, value, stamp_ms, message_headers)
        acks = await batches.send()
        await asyncio.gather(*acks)  # raises if any message was not acknowledged
        last = notifications[-1].id
        if feeds:
            await self._watermarks(kafka, (video_feed, viewer_feed), last)
            self._watermark = watermark
            if watermark is not None and (
                self._watermark_stored is None or watermark > self._watermark_stored
            ):  # before the position: a crash between re-publishes with the newer stamp
                await asyncio.to_thread(
                    self.store.recorder.insert_tracking,
                    Tracking(WATERMARK_TRACKING_NAME, watermark),
                )
                self._watermark_stored = watermark
        await asyncio.to_thread(self.store.recorder.insert_tracking, Tracking(TRACKING_NAME, last))
        self.stats.published += len(notifications)
        self.stats.batches += 1
        self.stats.position = last
        return len(notifications)
