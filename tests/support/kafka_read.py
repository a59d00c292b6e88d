"""Read the relay's event topics back from offset 0 with aiokafka (the relay tests' reader)."""

import asyncio
import uuid
from dataclasses import dataclass

from aiokafka import TopicPartition

from adapters.kafka.client import consumer
from adapters.kafka.envelope import FAMILIES, event_topic
from adapters.settings import Settings

CONSUME_TIMEOUT = 30.0  # seconds to read every topic back


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp: int  # ms
    timestamp_type: int  # 0: CreateTime (the producer's), 1: LogAppendTime (the broker's)


def read_back(settings: Settings, partitions: int, topics: list[str] | None = None) -> list[Record]:
    """Every message of `topics` (default: the three event topics)."""
    return asyncio.run(asyncio.wait_for(_read_back(settings, partitions, topics), CONSUME_TIMEOUT))


async def _read_back(settings: Settings, partitions: int, topics: list[str] | None) -> list[Record]:
    """Every message of the three event topics, from offset 0 to the end, per partition in
    offset order. A fresh group with no committed offsets; partitions are assigned by hand
    (no group join, so no rebalance delay) and nothing is committed.

    The end is the larger of ListOffsets and the high watermark of the fetches: Tansu
    0.6 answers ListOffsets(latest) with the base offset of the last record batch + 1,
    short of the real end whenever that batch holds more than one record."""
    topics = topics or [event_topic(settings.kafka_topic_prefix, f) for f in FAMILIES]
    kafka = consumer(settings, group_id=f"check-{uuid.uuid4().hex}")
    await kafka.start()
    try:
        await kafka.topics()  # metadata for partitions_for_topic
        tps = [TopicPartition(t, p) for t in topics for p in sorted(kafka.partitions_for_topic(t))]
        assert len(tps) == len(topics) * partitions
        kafka.assign(tps)
        await kafka.seek_to_beginning(*tps)
        end = await kafka.end_offsets(tps)
        records: list[Record] = []
        pending = {tp for tp in tps if end[tp] > 0}
        while pending:
            batches = await kafka.getmany(*pending, timeout_ms=500)
            for messages in batches.values():
                records.extend(
                    Record(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.key,
                        m.value,
                        dict(m.headers),
                        m.timestamp,
                        m.timestamp_type,
                    )
                    for m in messages
                )
            pending = {
                tp
                for tp in pending
                if await kafka.position(tp) < max(end[tp], kafka.highwater(tp) or 0)
            }
        return records
    finally:
        await kafka.stop()
