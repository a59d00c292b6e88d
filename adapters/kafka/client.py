"""aiokafka clients configured from Settings, and topic creation."""

import contextlib
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from adapters.kafka.envelope import FAMILIES, dead_letter_topic, event_topic, ingest_topic
from adapters.settings import Settings


class KafkaNotConfigured(RuntimeError):
    pass


def bootstrap_servers(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        raise KafkaNotConfigured("set REELPULSE_KAFKA_BOOTSTRAP_SERVERS to use Kafka")
    return settings.kafka_bootstrap_servers


def all_topics(settings: Settings) -> list[str]:
    prefix = settings.kafka_topic_prefix
    return [
        *(event_topic(prefix, f) for f in FAMILIES),
        ingest_topic(prefix),
        dead_letter_topic(prefix),
    ]


async def ensure_topics(settings: Settings, topics: list[str] | None = None) -> None:
    """Create ReelPulse's topics with the configured partitions if they do not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in (topics or all_topics(settings)) if t not in existing]
        if wanted:
            # Another worker may create them at the same moment: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(t, settings.kafka_partitions, settings.kafka_replication_factor)
                        for t in wanted
                    ]
                )
    finally:
        await admin.close()


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
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)
