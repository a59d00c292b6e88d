"""Inbound ingestion: raw client engagement signals from Kafka into the event store.

Topic `<prefix>.ingest.engagement.v1`: one JSON object per message, the schema of an item
of POST /v1/engagement/batch with `client_event_id` required, decoded as strictly as the
REST route decodes it (docs/kafka.md, "Inbound ingestion").

At least once, counted once. Each poll batch is validated message by message; the valid
signals, in event-time order (`apply_order`), are stored in ONE `EngagementApplication.ingest`
call (one transaction); messages that are malformed or that the domain rejects go to the
dead-letter topic; only when the events are stored and every dead letter is acknowledged
are the offsets committed. A
crash before that commit redelivers the batch, and a redelivered signal carries the same
`client_event_id`, which its stream remembers, so it comes back as a duplicate. Nothing
blocks a partition: every message ends up stored, a duplicate, or dead-lettered.
"""

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord
from eventsourcing.persistence import PersistenceError

from adapters.bootstrap import Container
from adapters.http.bodies import decode_items
from adapters.kafka.client import consumer, ensure_topics, producer
from adapters.kafka.envelope import dead_letter_topic, ingest_topic
from adapters.settings import Settings
from commands.engagement import Signal
from domain.errors import VersionConflict

log = logging.getLogger(__name__)

REASON_HEADER = "reelpulse-dlq-reason"
DETAIL_HEADER = "reelpulse-dlq-detail"
SOURCE_HEADER = "reelpulse-source"
MAX_DETAIL_CHARS = 1000
# Failures of the store, not of a message: the batch is not committed (so it is
# redelivered) and the worker stops; nothing is dead-lettered for them.
TRANSIENT_ERRORS = (PersistenceError, VersionConflict, OSError)


class InvalidMessage(ValueError):
    """A message that can never become a signal; `reason` is the DLQ reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_signal(value: bytes | None) -> Signal:
    """A message value -> a Signal. Raises InvalidMessage (invalid_json / invalid_input).

    Decoded by the REST batch route's own decoder (`decode_items`, msgspec): the same
    strict rules, so a string is not a number and 1 is not true, and the same messages,
    naming the field ("watch_seconds: Expected `float`, got `str`")."""
    if value is None:
        raise InvalidMessage("invalid_json", "the message has no value (tombstone)")
    try:
        _, signals, invalid = decode_items([value])
    except msgspec.DecodeError as e:  # not UTF-8 JSON (a ValidationError is caught inside)
        raise InvalidMessage("invalid_json", f"the value is not UTF-8 JSON: {e}") from None
    if invalid:
        raise InvalidMessage("invalid_input", invalid[0])
    signal = signals[0]
    if signal.client_event_id is None:
        raise InvalidMessage(
            "invalid_input", "client_event_id: required on the ingest topic (it is the dedup key)"
        )
    return signal


def apply_order(item: "tuple[ConsumerRecord[Any, Any], Signal]") -> tuple[float, int, int]:
    """Where a valid message goes in its batch's apply order: by event time (its
    `occurred_at`, else the record's timestamp; neither: last, as the worker stamps it
    now), then partition and offset.

    A video's signals sent to several partitions (a producer with another partitioner,
    or none) reach one poll in partition order, not in the order they happened: a `like`
    on partition 4 came after the `unlike` on partition 0 that undid it. Only the
    relative order of one stream's signals matters (each viewer-video or viewer-creator
    pair is its own stream), so one sort of the whole batch orders every stream. Within
    one partition the offsets decide among equal times (docs/kafka.md, "Order")."""
    record, signal = item
    if signal.occurred_at is not None:
        at = signal.occurred_at.timestamp()
    elif record.timestamp is not None and record.timestamp >= 0:
        at = record.timestamp / 1000
    else:
        at = math.inf
    return at, record.partition, record.offset


def source_of(record: ConsumerRecord[Any, Any]) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


def dead_letter_headers(
    record: ConsumerRecord[Any, Any], reason: str, detail: str
) -> list[tuple[str, bytes]]:
    """The original headers (minus any earlier DLQ headers) plus reason, detail, source."""
    own = (REASON_HEADER, DETAIL_HEADER, SOURCE_HEADER)
    kept = [(k, v) for k, v in (record.headers or ()) if k not in own]
    return [
        *kept,
        (REASON_HEADER, reason.encode()),
        (DETAIL_HEADER, detail[:MAX_DETAIL_CHARS].encode()),
        (SOURCE_HEADER, source_of(record).encode()),
    ]


@dataclass(frozen=True)
class _Fate:
    """What became of one message of a batch."""

    status: Literal["recorded", "duplicate", "dead_lettered"]
    reason: str = ""
    detail: str = ""


@dataclass
class IngestStats:
    consumed: int = 0
    recorded: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0  # batches stored AND committed
    seconds: float = 0.0  # wall time of run() so far, group join and idle wait included
    busy_seconds: float = 0.0  # time spent handling batches: parse, store, DLQ acks, commit
    position: int = 0  # event-store position of the last batch that recorded events
    commit_failures: int = 0  # lost a partition in a rebalance: its batch is redelivered
    by_reason: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.consumed / self.busy_seconds if self.busy_seconds else 0.0
        return (
            f"consumed {self.consumed} messages in {self.batches} batches: "
            f"{self.recorded} recorded, {self.duplicates} duplicates, "
            f"{self.dead_lettered} dead-lettered ({rate:,.0f} msg/s while busy)"
        )


MIN_RATE_SECONDS = 1.0  # a rate over less says nothing (the first batch: a few ms in)


def progress_rate(consumed: int, seconds: float) -> str:
    """The rate a progress display shows: messages per second of run time, "" until
    MIN_RATE_SECONDS have passed (a tiny interval would show billions per second)."""
    if seconds < MIN_RATE_SECONDS:
        return ""
    return f"{consumed / seconds:,.0f} msg/s"


BeforeCommit = Callable[[Mapping[TopicPartition, int]], None]


class IngestWorker:
    """A member of consumer group `group_id` on the ingest topic; run several for scale."""

    def __init__(
        self,
        settings: Settings,
        container: Container,
        group_id: str = "reelpulse-ingest",
        *,
        before_commit: BeforeCommit | None = None,
    ) -> None:
        self.settings = settings
        self.container = container
        self.group_id = group_id
        self.topic = ingest_topic(settings.kafka_topic_prefix)
        self.dlq_topic = dead_letter_topic(settings.kafka_topic_prefix)
        self.stats = IngestStats()
        # Called after a batch is stored and its dead letters acked, just before its
        # offsets are committed: the point where a crash makes a redelivery (tests).
        self._before_commit = before_commit
        self._stopping = False
        self._handling = asyncio.Lock()  # held while a batch is in hand, up to its commit
        self._joined = asyncio.Event()  # the group assigned partitions (possibly none)
        self.partitions: frozenset[int] = frozenset()  # ingest partitions assigned now

    def stop(self) -> None:
        """Stop after the batch in hand is committed (within one poll timeout)."""
        self._stopping = True

    async def run(
        self,
        *,
        until_idle: bool = False,
        idle_timeout_ms: int = 1000,
        on_batch: Callable[[IngestStats], None] | None = None,
    ) -> IngestStats:
        """Consume until stop() or, with until_idle, until every assigned partition is
        read to its end offset and a poll of idle_timeout_ms brought nothing."""
        started = time.perf_counter()
        # Fresh per run: asyncio primitives belong to the loop they are first used on.
        self._handling, self._joined = asyncio.Lock(), asyncio.Event()
        await ensure_topics(self.settings, [self.topic, self.dlq_topic])
        kafka_out = producer(self.settings)
        kafka_in = consumer(
            self.settings,
            group_id=self.group_id,
            max_poll_records=self.settings.kafka_ingest_batch_size,
        )
        await kafka_out.start()
        try:
            await kafka_in.start()
            try:
                kafka_in.subscribe([self.topic], listener=_Rebalance(self))
                while not self._stopping:
                    records = await kafka_in.getmany(
                        timeout_ms=idle_timeout_ms,
                        max_records=self.settings.kafka_ingest_batch_size,
                    )
                    if records:
                        async with self._handling:
                            await self._handle_batch(kafka_in, kafka_out, records)
                        self.stats.seconds = time.perf_counter() - started
                        if on_batch is not None:
                            on_batch(self.stats)
                    elif until_idle and await self._caught_up(kafka_in):
                        break
            finally:
                await kafka_in.stop()
        finally:
            await kafka_out.stop()
            self.stats.seconds = time.perf_counter() - started
        return self.stats

    async def _handle_batch(
        self,
        kafka_in: AIOKafkaConsumer,
        kafka_out: AIOKafkaProducer,
        records: Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]],
    ) -> None:
        """Store the valid signals in one call, dead-letter the rest, then commit."""
        began = time.perf_counter()
        assigned = kafka_in.assignment()
        # Records of a partition lost in a rebalance meanwhile belong to its new owner.
        records = {tp: rs for tp, rs in records.items() if tp in assigned and rs}
        batch = [r for rs in records.values() for r in rs]
        if not batch:
            return
        self.stats.consumed += len(batch)
        valid: list[tuple[ConsumerRecord[Any, Any], Signal]] = []
        acks, reasons = [], Counter[str]()
        for record in batch:
            try:
                valid.append((record, parse_signal(record.value)))
            except InvalidMessage as e:
                reasons[e.reason] += 1
                acks.append(await self._dead_letter(kafka_out, record, e.reason, e.detail))
        valid.sort(key=apply_order)
        fates, position = await asyncio.to_thread(self._store, [s for _, s in valid])
        self.stats.position = max(self.stats.position, position)
        for (record, _), fate in zip(valid, fates, strict=True):
            if fate.status == "dead_lettered":
                reasons[fate.reason] += 1
                acks.append(await self._dead_letter(kafka_out, record, fate.reason, fate.detail))
            elif fate.status == "recorded":
                self.stats.recorded += 1
            else:
                self.stats.duplicates += 1
        await asyncio.gather(*acks)  # raises if the broker did not take a dead letter
        self.stats.dead_lettered += len(acks)
        offsets = {tp: rs[-1].offset + 1 for tp, rs in records.items()}
        if self._before_commit is not None:
            self._before_commit(offsets)
        try:
            await kafka_in.commit(offsets)
        except (CommitFailedError, IllegalStateError) as e:
            # The group moved these partitions meanwhile: their new owner gets the batch
            # again and finds every signal already stored (duplicates), so nothing is lost.
            self.stats.commit_failures += 1
            log.warning("offset commit failed, the batch will be redelivered: %s", e)
        else:
            self.stats.batches += 1
        self.stats.busy_seconds += time.perf_counter() - began
        if reasons:
            log.warning("dead-lettered %d of %d messages: %s", len(acks), len(batch), dict(reasons))

    def _store(self, signals: list[Signal]) -> tuple[list[_Fate], int]:
        """Store the signals in one transaction; return each one's fate and the position.

        Blocking (call in a thread). Should the batch fail with an unexpected error (a
        bug that a message triggers), the signals are stored one by one so that only the
        poison ones are dead-lettered (reason error:<exception>) and the partition moves on.
        """
        if not signals:
            return [], 0
        app = self.container.engagement
        try:
            result = app.ingest(signals)
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            log.exception("a batch of %d signals failed; storing one by one", len(signals))
        else:
            return [_fate(i.status, i.error, i.message) for i in result.items], result.position
        fates, position = [], 0
        for signal in signals:
            try:
                one = app.ingest([signal])
            except TRANSIENT_ERRORS:
                raise
            except Exception as e:
                fates.append(_Fate("dead_lettered", f"error:{type(e).__name__}", str(e)))
            else:
                item = one.items[0]
                fates.append(_fate(item.status, item.error, item.message))
                position = max(position, one.position)
        return fates, position

    async def _dead_letter(
        self,
        kafka_out: AIOKafkaProducer,
        record: ConsumerRecord[Any, Any],
        reason: str,
        detail: str,
    ) -> "asyncio.Future[Any]":
        """Send one message to the DLQ; returns the ack future (awaited before commit)."""
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        log.info("dead letter %s: %s: %s", source_of(record), reason, detail)
        future: asyncio.Future[Any] = await kafka_out.send(
            self.dlq_topic,
            value=record.value,
            key=record.key,
            headers=dead_letter_headers(record, reason, detail),
        )
        return future

    async def _caught_up(self, kafka_in: AIOKafkaConsumer) -> bool:
        """Joined the group and read every assigned partition up to its end offset."""
        if not self._joined.is_set():
            return False
        assigned = list(kafka_in.assignment())
        if not assigned:
            return True
        try:
            ends = await kafka_in.end_offsets(assigned)
            for tp in assigned:
                # The fetch's high watermark too: some Kafka-protocol brokers (Tansu)
                # answer ListOffsets with the last record batch's base offset + 1.
                end = max(ends[tp], kafka_in.highwater(tp) or 0)
                if await kafka_in.position(tp) < end:
                    return False
        except IllegalStateError:  # a rebalance took the partition meanwhile
            return False
        return True


def _fate(status: str, error: str | None, message: str | None) -> _Fate:
    if status == "recorded":
        return _Fate("recorded")
    if status == "duplicate":
        return _Fate("duplicate")
    return _Fate("dead_lettered", f"rejected:{error}", message or "")


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.worker._joined.clear()
        self.worker.partitions = frozenset()
        # Let the batch in hand be stored and committed before the partitions move on,
        # so that a rebalance costs no redelivery.
        async with self.worker._handling:
            pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.worker.partitions = frozenset(tp.partition for tp in assigned)
        self.worker._joined.set()
