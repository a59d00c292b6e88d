"""The relay's topics as a Kafka user who never runs ReelPulse's code sees them.

Given a SQLite store filled with a small seeded workload (~1,800 events of 19 types),
when the relay publishes it and "crashes" once between the broker's acks of a batch and
its tracking write (the batch is then published again by a restarted relay), then:

* every record's timestamp is its event's time in ms (CreateTime), and a duplicate's is
  its original's: stream processors window on event time (read with aiokafka);
* confluent-kafka (librdkafka) reads every message, and each one validates against the
  published JSON Schema of its topic (docs/schemas/kafka/) with `jsonschema`: plain JSON
  values, no eventsourcing transcoding in `data`;
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
import time
import uuid
from collections import defaultdict
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
    dead_letter_topic,
    event_topic,
    family_of,
    ingest_topic,
)
from adapters.kafka.relay import Relay
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]  # each wait is bounded too

WORKLOAD = WorkloadConfig(
    seed=5, creators=8, viewers=120, views_per_day=400, batch_window_seconds=600
)
PARTITIONS = 4
BATCH_SIZE = 300
CRASH_ON_TRACKING_WRITE = 3  # the 3rd batch is acknowledged, then the relay "crashes"
READ_TIMEOUT = 30.0  # seconds for confluent-kafka to read every message
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
    yield Published(settings, stored, read_back(settings, PARTITIONS))


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
def confluent_read_all(settings: Settings, expected: int) -> list[confluent_kafka.Message]:
    """Every message of the event topics from offset 0, with librdkafka, until `expected`
    have arrived (Tansu under-reports the high watermark: counting is exact)."""
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
                confluent_kafka.TopicPartition(
                    event_topic(settings.kafka_topic_prefix, family), p,
                    confluent_kafka.OFFSET_BEGINNING,
                )
                for family in FAMILIES
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
        return messages
    finally:
        consumer.close()


def load_schema(family: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{family}.v1.schema.json").read_text())


def test_confluent_kafka_reads_every_message_valid_against_the_published_schema(
    published: Published,
) -> None:
    validators = {}
    for family in FAMILIES:
        schema = load_schema(family)
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[event_topic(published.settings.kafka_topic_prefix, family)] = (
            jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
        )
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
