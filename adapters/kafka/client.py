"""aiokafka clients configured from Settings, and topic creation with explicit configs.

Topic configs (set at creation, checked on every start; see docs/kafka.md "Topic configs"):
* event topics (`<prefix>.<family>.v1`): `retention.ms=-1`, `cleanup.policy=delete`. They
  are the event log that readers replay from offset 0, so nothing may age out. Not
  compacted: keys are videos (or creators), not entities, and compaction would keep only
  the last event of each video. The projection feeds (`<prefix>.feed.<feed>.v1`) are kept
  the same way: a Kafka-mode rebuild reads them from offset 0.
* the ingest topic: `REELPULSE_KAFKA_INGEST_RETENTION_MS` (7 days): raw signals are in the
  event store once ingested; the retention is how long an ingest outage may last.
* the dead-letter topic: `REELPULSE_KAFKA_DEAD_LETTER_RETENTION_MS` (30 days): time for an
  operator to inspect and replay rejects.
A topic that already exists is never altered: a config that differs is logged as a
warning naming the command that fixes it (operators may have chosen otherwise on purpose).
"""

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from adapters.kafka.envelope import (
    FAMILIES,
    FEEDS,
    dead_letter_topic,
    event_topic,
    feed_topic,
    ingest_topic,
)
from adapters.settings import Settings

log = logging.getLogger(__name__)
KEEP_FOREVER = "-1"
# What Apache Kafka applies to a topic config that is not set (a broker's own defaults may
# differ): how an unreported config is compared (Tansu reports only configs that were set).
KAFKA_DEFAULTS = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}


class KafkaNotConfigured(RuntimeError):
    pass


@dataclass(frozen=True)
class ConfigMismatch:
    """A config of an existing topic that differs from what ReelPulse would create."""

    topic: str
    name: str
    wanted: str
    actual: str | None  # None: the broker did not report it

    def __str__(self) -> str:
        actual = self.actual or f"unset (Kafka's default: {KAFKA_DEFAULTS[self.name]})"
        return (
            f"topic {self.topic} has {self.name}={actual} (ReelPulse creates it with "
            f"{self.wanted}); to change it: kafka-configs.sh --alter --entity-type topics "
            f"--entity-name {self.topic} --add-config {self.name}={self.wanted}"
        )


def bootstrap_servers(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        raise KafkaNotConfigured("set REELPULSE_KAFKA_BOOTSTRAP_SERVERS to use Kafka")
    return settings.kafka_bootstrap_servers


def all_topics(settings: Settings) -> list[str]:
    prefix = settings.kafka_topic_prefix
    return [
        *(event_topic(prefix, f) for f in FAMILIES),
        *(feed_topic(prefix, f) for f in FEEDS if settings.kafka_projection_feeds),
        ingest_topic(prefix),
        dead_letter_topic(prefix),
    ]


def topic_configs(settings: Settings, topic: str) -> dict[str, str]:
    """The configs ReelPulse creates `topic` with (see the module docstring for why)."""
    prefix = settings.kafka_topic_prefix
    if topic == ingest_topic(prefix):
        retention = str(settings.kafka_ingest_retention_ms)
    elif topic == dead_letter_topic(prefix):
        retention = str(settings.kafka_dead_letter_retention_ms)
    else:
        retention = KEEP_FOREVER
    return {"cleanup.policy": "delete", "retention.ms": retention}


async def ensure_topics(
    settings: Settings, topics: list[str] | None = None
) -> list[ConfigMismatch]:
    """Create ReelPulse's topics that do not exist, with their partitions and configs;
    check the configs of those that do and log (and return) every difference."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    await admin.start()
    try:
        names = topics or all_topics(settings)
        existing = set(await admin.list_topics())
        wanted = [t for t in names if t not in existing]
        if wanted:
            # Another worker may create them at the same moment: that is fine (checked below
            # on its next start, like any existing topic).
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            t,
                            settings.kafka_partitions,
                            settings.kafka_replication_factor,
                            topic_configs=topic_configs(settings, t),
                        )
                        for t in wanted
                    ]
                )
        mismatches = await _check_existing(admin, settings, [t for t in names if t in existing])
    finally:
        await admin.close()
    for mismatch in mismatches:
        log.warning("kafka topic config differs: %s", mismatch)
    return mismatches


async def describe_topic_configs(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> dict[str, dict[str, str | None]]:
    """Every config the broker reports for each topic (DescribeConfigs)."""
    if not topics:
        return {}
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
    )
    found: dict[str, dict[str, str | None]] = {}
    for response in responses:
        for error_code, message, _type, name, entries in (r[:5] for r in response.resources):
            if error_code:
                raise KafkaError(f"DescribeConfigs {name}: error {error_code} {message}")
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


async def _check_existing(
    admin: AIOKafkaAdminClient, settings: Settings, topics: list[str]
) -> list[ConfigMismatch]:
    try:
        described = await describe_topic_configs(admin, topics)
    except KafkaError as e:  # a broker without DescribeConfigs: say so, do not fail
        log.warning("kafka topic configs not checked (DescribeConfigs failed: %s)", e)
        return []
    mismatches = []
    for topic in topics:
        reported = described.get(topic, {})
        for name, wanted in topic_configs(settings, topic).items():
            actual = reported.get(name)
            if (actual or KAFKA_DEFAULTS[name]) != wanted:
                mismatches.append(ConfigMismatch(topic, name, wanted, actual))
    return mismatches


async def partition_count(settings: Settings, topic: str) -> int:
    """How many partitions `topic` has (created first, with ReelPulse's configs, if absent)."""
    await ensure_topics(settings, [topic])
    kafka = producer(settings)
    await kafka.start()
    try:
        return len(await kafka.partitions_for(topic))
    finally:
        await kafka.stop()


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "enable_idempotence": settings.kafka_idempotent_producer,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def consumer(settings: Settings, *topics: str, group_id: str, **overrides: Any) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 1000,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": min(3_000, settings.kafka_session_timeout_ms // 3),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)
