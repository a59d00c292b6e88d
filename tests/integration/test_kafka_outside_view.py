"""The relay's topics as a Kafka user who never runs ReelPulse's code sees them.

Given a SQLite store filled with a small seeded workload (~1,800 events of 19 types),
when the relay publishes it and "crashes" once between the broker's acks of a batch and
its tracking write (the batch is then published again by a restarted relay), then:

* every record's timestamp is its event's time in ms (CreateTime), and a duplicate's is
  its original's: stream processors window on event time (read with aiokafka);
* confluent-kafka (librdkafka) reads every message, and each one validates against the
  published JSON Schema of its topic (docs/schemas/kafka/) with `jsonschema`: plain JSON
  values, no eventsourcing transcoding in `data`;
* confluent-kafka reads both projection feeds, and every message, event or watermark
  marker, validates against the feed's published schema; the video feed carries every
  public message once more (same key, bytes, headers, timestamp), the viewer feed every
  view keyed by its viewer; on every partition each marker is at or past every event
  before it, and each partition ends with a marker at the relay's final position;
* librdkafka's `murmur2_random` partitioner puts every key on the partition the relay
  used (and its default, `consistent_random`, does not: docs/kafka.md);
* topics are created with explicit retention configs, read back with DescribeConfigs,
  and an existing topic whose retention differs is reported.

Tansu (the test broker) and Apache Kafka both answer CreateTopics with configs and
DescribeConfigs, so every check reads the broker back; set REELPULSE_TEST_KAFKA_BOOTSTRAP
to run them on a real cluster.
"""

import asyncio
import calendar
import json
import logging
import math
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import confluent_kafka
import jsonschema
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import NewTopic as ConfluentNewTopic
from eventsourcing.persistence import Notification
from support.kafka_read import Record, read_back

from adapters.bootstrap import Container, bootstrap
from adapters.kafka.client import ensure_topics
from adapters.kafka.envelope import (
    FAMILIES,
    FEEDS,
    TRENDING_WATERMARK_HEADER,
    VIEWED_TOPIC,
    WATERMARK_HEADER,
    dead_letter_topic,
    event_topic,
    family_of,
    feed_topic,
    ingest_topic,
)
from adapters.kafka.relay import Relay
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from projections.trending import WATERMARK_TOPICS, minute_of

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]  # each wait is bounded too

WORKLOAD = WorkloadConfig(
    seed=5, creators=8, viewers=120, views_per_day=400, batch_window_seconds=600
)
PARTITIONS = 4
BATCH_SIZE = 300
CRASH_ON_TRACKING_WRITE = 3  # the 3rd batch is acknowledged, then the relay "crashes"
READ_TIMEOUT = 30.0  # seconds for confluent-kafka to read every message
LINGER = 1.0  # seconds to keep reading after the expected count, to see any extra message
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "kafka"
UUID_TEXT = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DAY_MS = 24 * 3600 * 1000


class SimulatedCrash(Exception):
    pass


@dataclass(frozen=True)
class Published:
    settings: Settings
    stored: dict[int, Notification]
    records: list[Record]  # read back with aiokafka
    batches: int  # batches the broker acknowledged, the crashed one included

    @property
    def head(self) -> int:
        return max(self.stored)


def event_time_ms(n: Notification) -> int:
    """The stored event's time in ms since the epoch (occurred_at, else its timestamp)."""
    state = orjson.loads(n.state)
    when = datetime.fromisoformat((state.get("occurred_at") or state["timestamp"])["_data_"])
    return calendar.timegm(when.utctimetuple()) * 1000 + when.microsecond // 1000


def crash_on_tracking_write(container: Container, nth: int) -> None:
    """The relay's nth tracking write raises: that batch was acknowledged by the broker
    but not recorded, as when the process dies between the two."""
    recorder = container.store.recorder
    real = recorder.insert_tracking
    calls = 0

    def insert_tracking(tracking: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == nth:
            raise SimulatedCrash(f"after the acks of batch {nth}")
        real(tracking)

    recorder.insert_tracking = insert_tracking  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def published(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Published]:
    url = f"sqlite:///{tmp_path_factory.mktemp('outside')}/store.db"
    settings = Settings(
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        kafka_partitions=PARTITIONS,
        kafka_relay_batch_size=BATCH_SIZE,
    )
    filler = bootstrap(Settings(database_url=url))
    try:
        drive_application(filler, generate(WORKLOAD).commands)
        head = filler.head_position
        stored = {
            n.id: n for n in filler.store.recorder.select_notifications(start=1, limit=head + 1)
        }
    finally:
        filler.close()
    assert head > CRASH_ON_TRACKING_WRITE * BATCH_SIZE

    crashing = bootstrap(settings)
    try:
        crash_on_tracking_write(crashing, CRASH_ON_TRACKING_WRITE)
        with pytest.raises(SimulatedCrash):
            asyncio.run(Relay(settings, crashing.store).run(until_caught_up=True))
    finally:
        crashing.close()
    restarted = bootstrap(settings)
    try:
        stats = asyncio.run(Relay(settings, restarted.store).run(until_caught_up=True))
        assert stats.position == head
    finally:
        restarted.close()
    # The crashed batch's markers went out before its tracking write: it counts twice.
    batches = math.ceil(head / BATCH_SIZE) + 1
    yield Published(settings, stored, read_back(settings, PARTITIONS), batches)


# -- 1. record timestamps ---------------------------------------------------------------------
def test_record_timestamps_are_event_time_and_a_duplicate_keeps_its_original(
    published: Published,
) -> None:
    by_position: dict[int, list[Record]] = defaultdict(list)
    for r in published.records:
        position = orjson.loads(r.value)["position"]
        n = published.stored[position]
        assert r.timestamp_type == 0, "CreateTime: the producer's timestamp, kept by the broker"
        assert r.timestamp == event_time_ms(n), (position, n.topic, r.timestamp)
        by_position[position].append(r)
    assert sorted(by_position) == sorted(published.stored)  # every event, at least once
    duplicated = {p: rs for p, rs in by_position.items() if len(rs) > 1}
    assert len(duplicated) == BATCH_SIZE, "the crashed batch was published again"
    for records in duplicated.values():
        first, *again = records
        for r in again:  # byte-, header- and timestamp-identical, on the same partition
            assert (r.value, r.headers, r.key, r.topic, r.partition, r.timestamp) == (
                first.value, first.headers, first.key, first.topic, first.partition,
                first.timestamp,
            )  # fmt: skip


# -- 4. the public schema, read with confluent-kafka ------------------------------------------
def confluent_read_all(
    settings: Settings, expected: int, topics: list[str] | None = None
) -> list[confluent_kafka.Message]:
    """Every message of `topics` (the event topics) from offset 0, with librdkafka, until
    `expected` have arrived (Tansu under-reports the high watermark: counting is exact),
    then LINGER seconds more, so that a message too many is seen too."""
    if topics is None:
        topics = [event_topic(settings.kafka_topic_prefix, family) for family in FAMILIES]
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"outside-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign(
            [
                confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                for topic in topics
                for p in range(PARTITIONS)
            ]
        )  # fmt: skip
        messages: list[confluent_kafka.Message] = []
        deadline = time.monotonic() + READ_TIMEOUT
        while len(messages) < expected:
            if time.monotonic() > deadline:
                pytest.fail(f"confluent-kafka read {len(messages)} of {expected} messages")
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    pytest.fail(f"confluent-kafka: {m.error()}")
                messages.append(m)
        extra = consumer.consume(num_messages=1000, timeout=LINGER)
        assert not extra, f"{len(extra)} messages more than the {expected} expected"
        return messages
    finally:
        consumer.close()


def load_schema(name: str) -> dict[str, Any]:
    """A published schema by family (`content`) or topic suffix (`feed.video.v1`)."""
    suffix = name if name.endswith(".v1") else f"{name}.v1"
    return json.loads((SCHEMAS / f"{suffix}.schema.json").read_text())


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_confluent_kafka_reads_every_message_valid_against_the_published_schema(
    published: Published,
) -> None:
    validators = {
        event_topic(published.settings.kafka_topic_prefix, family): schema_validator(family)
        for family in FAMILIES
    }
    messages = confluent_read_all(published.settings, len(published.records))
    assert len(messages) == len(published.records)
    types_seen: set[str] = set()
    for m in messages:
        doc = json.loads(m.value().decode("utf-8"))
        errors = [e.message for e in validators[m.topic()].iter_errors(doc)][:3]
        assert not errors, (m.topic(), doc.get("type"), doc.get("position"), errors)
        n = published.stored[doc["position"]]
        assert m.topic() == event_topic(published.settings.kafka_topic_prefix, family_of(n.topic))
        # The key: the UTF-8 bytes of the dashed lowercase UUID in `key`.
        assert m.key() == doc["key"].encode("utf-8")
        assert m.timestamp() == (confluent_kafka.TIMESTAMP_CREATE_TIME, event_time_ms(n))
        # Plain JSON: no library transcoding anywhere in `data`.
        assert "_type_" not in json.dumps(doc["data"]), doc["data"]
        types_seen.add(doc["type"])
    assert len(types_seen) >= 15, sorted(types_seen)  # the workload's 19 types, nearly all


def test_follows_are_keyed_by_the_creator_followed(published: Published) -> None:
    """On the engagement topic, as docs/kafka.md says (the README said video)."""
    follows = [r for r in published.records if b'"type":"Following.' in r.value]
    assert follows
    for r in follows:
        doc = orjson.loads(r.value)
        if doc["type"] == "Following.Started":
            assert r.key == doc["data"]["creator_id"].encode()


# -- 5. the projection feeds, read with confluent-kafka ---------------------------------------
def test_confluent_kafka_reads_both_feeds_valid_against_the_published_schemas(
    published: Published,
) -> None:
    prefix = published.settings.kafka_topic_prefix
    video_feed, viewer_feed = (feed_topic(prefix, f) for f in FEEDS)
    validators = {video_feed: schema_validator("feed.video.v1"),
                  viewer_feed: schema_validator("feed.viewer.v1")}  # fmt: skip
    marker_schema = schema_validator("watermark.v1")
    public = [(r.key, r.value, tuple(r.headers.items()), r.timestamp) for r in published.records]
    public_views = [p for p in public if b'"type":"Engagement.Viewed"' in p[1]]
    markers_per_feed = published.batches * PARTITIONS
    expected = len(public) + len(public_views) + 2 * markers_per_feed
    messages = confluent_read_all(published.settings, expected, [video_feed, viewer_feed])
    assert len(messages) == expected
    trending: dict[int, int | None] = {}
    minute: int | None = None
    for position, n in sorted(published.stored.items()):
        if n.topic in WATERMARK_TOPICS:
            trending[position] = minute
            at = json.loads(n.state)["occurred_at"]["_data_"]
            m_at = minute_of(datetime.fromisoformat(at))
            minute = m_at if minute is None else max(minute, m_at)

    events: dict[str, list[tuple[Any, ...]]] = {video_feed: [], viewer_feed: []}
    by_partition: dict[tuple[str, int], list[confluent_kafka.Message]] = defaultdict(list)
    for m in messages:
        doc = json.loads(m.value().decode("utf-8"))
        errors = [e.message for e in validators[m.topic()].iter_errors(doc)][:3]
        assert not errors, (m.topic(), m.partition(), m.offset(), errors)
        headers = tuple((k, v) for k, v in m.headers() or ())
        by_partition[(m.topic(), m.partition())].append(m)
        marker = dict(headers).get(WATERMARK_HEADER)
        if marker is not None:  # a marker: no key, the position in the value and header
            assert marker_schema.is_valid(doc) and m.key() is None, (doc, m.key())
            assert doc == {"watermark": int(marker)}, (doc, marker)
            continue
        assert not marker_schema.is_valid(doc)
        stamp = dict(headers).get(TRENDING_WATERMARK_HEADER)
        if m.topic() == video_feed and doc["topic"] in WATERMARK_TOPICS:
            # The trending watermark before the event in global order: the largest minute
            # of the earlier watermark events (docs/kafka.md), "none" before the first.
            want = trending[doc["position"]]
            assert stamp == (b"none" if want is None else str(want).encode()), doc["position"]
            headers = tuple(h for h in headers if h[0] != TRENDING_WATERMARK_HEADER)
        else:
            assert stamp is None, (m.topic(), doc["position"])
        events[m.topic()].append((m.key(), m.value(), headers, m.timestamp()[1]))

    # The video feed: every public message once more, same key, bytes, headers (and the
    # watermark header above) and time.
    assert Counter(events[video_feed]) == Counter(public)
    assert {json.loads(v)["position"] for _, v, _, _ in events[video_feed]} == set(
        published.stored
    ), "every stored event at least once"
    # The viewer feed: every view once more (its bytes), keyed by its viewer's dashed id.
    assert Counter(v for _, v, _, _ in events[viewer_feed]) == Counter(
        v for _, v, _, _ in public_views
    )
    views = {p for p, n in published.stored.items() if n.topic == VIEWED_TOPIC}
    assert {json.loads(v)["position"] for _, v, _, _ in events[viewer_feed]} == views
    for key, value, _, _ in events[viewer_feed]:
        doc = json.loads(value)
        assert re.match(UUID_TEXT, key.decode()) and key.decode() == doc["data"]["viewer_id"]

    # Per partition: a marker is at or past every event before it, and every partition of
    # both feeds ends with a marker at the relay's final position.
    assert set(by_partition) == {
        (t, p) for t in (video_feed, viewer_feed) for p in range(PARTITIONS)
    }
    for (topic, partition), ms in by_partition.items():
        assert [m.offset() for m in ms] == sorted(m.offset() for m in ms)
        seen, marks = 0, []
        for m in ms:
            doc = json.loads(m.value())
            if "watermark" in doc:
                assert doc["watermark"] >= seen, (topic, partition, m.offset(), doc, seen)
                marks.append(doc["watermark"])
            else:
                seen = max(seen, doc["position"])
        assert len(marks) == published.batches, (topic, partition, len(marks))
        assert json.loads(ms[-1].value()) == {"watermark": published.head}, (topic, partition)


# -- 3. keys and the partitioner --------------------------------------------------------------
def librdkafka_partitions(
    settings: Settings, keys: list[bytes], partitioner: str | None
) -> dict[bytes, int]:
    """Where a librdkafka producer with `partitioner` puts each key (no partition given),
    on a scratch topic with the relay's partition count."""
    bootstrap_servers = str(settings.kafka_bootstrap_servers)
    topic = f"{settings.kafka_topic_prefix}.scratch-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    admin.create_topics([ConfluentNewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=15)
    config = {"bootstrap.servers": bootstrap_servers, "linger.ms": 5}
    if partitioner is not None:
        config["partitioner"] = partitioner
    producer = confluent_kafka.Producer(config)
    landed: dict[bytes, int] = {}
    errors: list[str] = []

    def delivered(err: Any, msg: confluent_kafka.Message) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            landed[msg.key()] = msg.partition()

    for key in keys:
        producer.produce(topic, value=b"probe", key=key, on_delivery=delivered)
    assert producer.flush(15) == 0, "librdkafka did not deliver every probe in 15 s"
    assert not errors, errors[:3]
    return landed


def test_librdkafka_murmur2_random_puts_every_key_on_the_relays_partition(
    published: Published,
) -> None:
    relay_partition: dict[bytes, set[int]] = defaultdict(set)
    for r in published.records:
        assert r.key is not None
        relay_partition[r.key].add(r.partition)
    assert all(len(p) == 1 for p in relay_partition.values())
    keys = sorted(relay_partition)
    murmur2 = librdkafka_partitions(published.settings, keys, "murmur2_random")
    wrong = {
        k: (murmur2[k], relay_partition[k]) for k in keys if {murmur2[k]} != relay_partition[k]
    }
    assert not wrong, f"{len(wrong)} of {len(keys)} keys elsewhere: {list(wrong.items())[:5]}"
    # librdkafka's default (consistent_random: CRC32) disagrees: why the docs name the setting.
    default = librdkafka_partitions(published.settings, keys, None)
    agree = sum({default[k]} == relay_partition[k] for k in keys)
    assert agree < len(keys), "librdkafka's default partitioner agreed on every key"
    print(f"\nlibrdkafka default partitioner agrees on {agree} of {len(keys)} keys")


# -- 2. topic configs -------------------------------------------------------------------------
async def described(bootstrap_servers: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """The topics' configs as the broker reports them (DescribeConfigs, read here directly
    from the response rather than through adapters/kafka/client.py)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        )
    finally:
        await admin.close()
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            error_code, _message, _type, name, entries = resource[:5]
            assert error_code == 0, resource
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


def test_topics_are_created_with_explicit_retention(
    kafka_bootstrap: str, kafka_prefix: str
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=kafka_prefix,
        kafka_ingest_retention_ms=3 * DAY_MS,  # a setting, not a constant
    )
    assert asyncio.run(ensure_topics(settings)) == []  # nothing existed: nothing to report
    events = [event_topic(kafka_prefix, f) for f in FAMILIES]
    ingest, dlq = ingest_topic(kafka_prefix), dead_letter_topic(kafka_prefix)
    configs = asyncio.run(described(kafka_bootstrap, [*events, ingest, dlq]))
    for topic in events:  # the event log: kept for good, never compacted
        assert configs[topic].get("retention.ms") == "-1", (topic, configs[topic])
        assert configs[topic].get("cleanup.policy") == "delete", (topic, configs[topic])
    assert configs[ingest].get("retention.ms") == str(3 * DAY_MS)
    assert configs[dlq].get("retention.ms") == str(30 * DAY_MS)  # the default
    assert {configs[t].get("cleanup.policy") for t in (ingest, dlq)} == {"delete"}


def test_an_existing_topic_with_another_retention_is_reported_not_changed(
    kafka_bootstrap: str, kafka_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    content = event_topic(kafka_prefix, "content")
    week = str(7 * DAY_MS)  # Apache Kafka's default retention, as a topic made by hand

    async def create_by_hand() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(content, PARTITIONS, 1, topic_configs={"retention.ms": week})]
            )
        finally:
            await admin.close()

    asyncio.run(create_by_hand())
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=kafka_prefix)
    with caplog.at_level(logging.WARNING, logger="adapters.kafka.client"):
        mismatches = asyncio.run(ensure_topics(settings))
    assert [(m.topic, m.name, m.wanted, m.actual) for m in mismatches] == [
        (content, "retention.ms", "-1", week)
    ]
    assert f"{content} has retention.ms={week}" in caplog.text
    assert "kafka-configs.sh --alter" in caplog.text
    # The other topics were created as usual; the existing one was left as it was.
    configs = asyncio.run(
        described(kafka_bootstrap, [content, event_topic(kafka_prefix, "engagement")])
    )
    assert configs[content].get("retention.ms") == week
    assert configs[event_topic(kafka_prefix, "engagement")].get("retention.ms") == "-1"
