"""KafkaProjectionWorker: projections run from Kafka by a consumer group.

N workers in one consumer group split the partitions of a topic; each applies the events
of its partitions to the read model. Two uses:
* the keyed projections (`keyed_specs`, docs/scaling.md): a group per projection feed
  (`<prefix>.feed.video.v1`: stats, moderation and trending, whose state is per video or
  per creator; `<prefix>.feed.viewer.v1`: sessions, per viewer). Every event of a key is on
  one partition in the store's global order; the projections' read models do not depend on
  the order across keys (tests/integration/test_keyed_interleaving.py; trending's global
  watermark is stamped on the feed by the relay), so N workers build the same tables as
  the single-process runner. The relay's watermark markers give the group a
  position (`complete_through`, the least over partitions) written to
  `projection_tracking` like the runner's, so read-your-writes tokens work unchanged.
* the per-video engagement counters (VideoEngagementProjection) on
  `<prefix>.engagement.v1`, its own tables (the first Kafka-run projection).

Exactly once per event:
* Each `getmany` batch is applied in ONE read-model transaction that also writes each
  partition's next offset to `kafka_offsets`; Kafka's own committed offsets are only
  informational (for lag tooling). Stored offset and read model cannot disagree.
* On assignment a worker seeks every assigned partition to its stored offset (or to the
  beginning when nothing is stored yet).
* On revocation the listener waits for the in-flight batch: its transaction commits (or
  rolls back) before the partitions go, so the next owner reads the offset it left.
* A worker that keeps a batch past losing its partitions (stalled past the session
  timeout) is fenced: the offset write is a compare-and-set done first in the
  transaction, so of two workers applying the same messages only the first commits.
* The relay publishes at least once; a re-published event carries its old event-store
  position, lower than the partition's highest position seen (kept in `kafka_offsets`),
  and is dropped. This relies on one relay publishing in global order (it does).
A batch that fails is rolled back and re-read from the stored offset after a pause:
an event is never skipped (as in adapters/projections/runner.py).
"""

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from eventsourcing.persistence import Mapper, Notification, StoredEvent

from adapters.kafka.client import consumer, ensure_topics, partition_count
from adapters.kafka.envelope import (
    FEEDS,
    Envelope,
    event_topic,
    feed_topic,
    trending_watermark_of,
    watermark_of,
)
from adapters.projections.quarantine import MAX_STREAK, check_recent, quarantinable, record
from adapters.projections.rebuild import KafkaRun
from adapters.projections.registry import projection_specs
from adapters.projections.runner import FlushableView, ProjectionSpec
from adapters.readmodel.kafka_view import (
    OffsetConflict,
    StoredOffset,
    claim_offsets,
    group_position,
    load_offsets,
    make_video_engagement_view,
    record_progress,
    track_group_position,
)
from adapters.settings import Settings
from projections.base import Projection
from projections.video_engagement import VideoEngagementProjection

if TYPE_CHECKING:
    from adapters.bootstrap import Container

log = logging.getLogger(__name__)

DEFAULT_GROUP = "reelpulse-video-engagement"
FEED_GROUP = "reelpulse-feed-{feed}"  # the consumer group of a projection feed's workers
POLL_MS = 200  # longest wait in getmany: how fast stop() and idle checks are noticed
RETRY_SECONDS = 1.0  # pause after a failed batch before re-reading it
KAFKA_COMMIT_TIMEOUT = 5.0
KAFKA_COMMIT_SECONDS = 1.0  # the informational Kafka commit, at most this often
IDLE_TRACK_SECONDS = 5.0  # while idle, the group's position is written this often


@dataclass
class WorkerStats:
    messages: int = 0  # consumed in committed transactions (offsets advanced over them)
    applied: int = 0  # events applied to the projection
    duplicates: int = 0  # re-published events dropped by position
    ignored: int = 0  # events of types the projection does not read
    position: int = 0  # the group's position (feeds: least watermark over partitions)
    batches: int = 0  # committed read-model transactions
    conflicts: int = 0  # batches rolled back: another worker had moved the stored offset
    errors: int = 0  # batches rolled back by an error (retried)
    rebalances: int = 0  # assignments received
    waited_on_revoke: int = 0  # revocations that waited for an in-flight batch
    partitions: tuple[int, ...] = ()  # owned now
    last_error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class _Applied:
    next_offsets: dict[int, int]
    messages: int
    applied: int
    duplicates: int
    ignored: int
    position: int


OnBatch = Callable[[WorkerStats], Any]  # may return an awaitable
# (position, event, (stamped, trending watermark), stored event) of one message
_Item = tuple[int, Any, tuple[bool, int | None], StoredEvent]


def _processed(spec: ProjectionSpec, conn: sa.Connection, items: Sequence[_Item]) -> Any:
    """A view of `spec` on `conn` with `items` processed (not flushed yet)."""
    view = spec.make_view(conn)
    prefetch = getattr(view, "prefetch", None)
    if prefetch is not None:  # a view may read what the whole batch needs
        prefetch([event for _, event, _, _ in items])
    process = spec.projection.process
    stamp = getattr(view, "stamp", None)  # the relay's global watermarks
    for at, event, (stamped, minute), _ in items:
        if stamped and stamp is not None:
            stamp(minute)
        process(event, at, view)
    return view


def keyed_specs(feed: str, names: Sequence[str] | None = None) -> list[ProjectionSpec]:
    """The projections that partition by `feed`'s key (`Projection.partition_by`), or the
    named ones among them. A projection with in-memory state (an online model) is never
    keyed: its model learns from every key in global order."""
    if feed not in FEEDS:
        raise ValueError(f"unknown feed {feed!r}: one of {', '.join(FEEDS)}")
    specs = [s for s in projection_specs() if s.projection.partition_by == feed]
    stateful = [s.name for s in specs if hasattr(s.projection, "dump_state")]
    if stateful:  # a worker holds a batch's view only: in-memory state would be per worker
        raise ValueError(f"keyed projections cannot keep in-memory state: {stateful}")
    if names is not None:
        unknown = set(names) - {s.name for s in specs}
        if unknown:
            raise ValueError(
                f"not keyed by {feed}: {', '.join(sorted(unknown))} "
                f"(keyed: {', '.join(s.name for s in specs) or 'none'})"
            )
        specs = [s for s in specs if s.name in names]
    return specs


_T = TypeVar("_T")


async def _finish_in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """Run a transaction in a thread. If the caller is cancelled meanwhile, wait for the
    thread's commit or rollback before passing the cancellation on, so that no batch is
    still in flight once the worker has let go of its lock."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


async def kafka_runs(settings: Settings) -> tuple[KafkaRun, ...]:
    """The keyed projections' consumer groups (default group ids), for a rebuild that
    coordinates with them (adapters/projections/rebuild.py, Kafka mode)."""
    runs = []
    for feed in FEEDS:
        names = tuple(s.name for s in keyed_specs(feed))
        if names:
            topic = feed_topic(settings.kafka_topic_prefix, feed)
            partitions = await partition_count(settings, topic)
            runs.append(KafkaRun(FEED_GROUP.format(feed=feed), topic, partitions, names))
    return tuple(runs)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, worker: "KafkaProjectionWorker") -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker._revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.worker._assigned(assigned)


class KafkaProjectionWorker:
    """One member of a consumer group running a projection from the engagement topic."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        mapper: Mapper[Any],
        group_id: str = DEFAULT_GROUP,
        *,
        projection: Projection[Any] | None = None,
        make_view: Callable[[sa.Connection], FlushableView] = make_video_engagement_view,
        specs: Sequence[ProjectionSpec] | None = None,
        topic: str | None = None,
        batch_size: int | None = None,
        commit_to_kafka: bool = True,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.mapper = mapper
        self.group_id = group_id
        # `specs` (with `topic`, a feed): projections tracked in projection_tracking.
        # Else one projection on the engagement topic with its own tables (no tracking).
        self.tracked = specs is not None
        self.specs = list(specs or [ProjectionSpec(projection or VideoEngagementProjection(),
                                                   make_view)])  # fmt: skip
        self.batch_size = batch_size or settings.projection_batch_size
        self.commit_to_kafka = commit_to_kafka
        self.consumer_options = consumer_options or {}
        self.topic = topic or event_topic(settings.kafka_topic_prefix, "engagement")
        self.stats = WorkerStats()
        self._spec_topics = [frozenset(s.projection.topics) for s in self.specs]
        self._topics = frozenset().union(*self._spec_topics)
        self._partition_count = 0
        self._consumer: Any = None
        self._lock = asyncio.Lock()  # held by a batch in flight and by rebalance callbacks
        self._owned: set[TopicPartition] = set()  # seeked to the stored offset
        self._unseeked: set[TopicPartition] = set()  # assigned, stored offset not loaded yet
        self._expected: dict[int, int | None] = {}  # stored next offset per owned partition
        self._active = False  # between an assignment and the next revocation
        self._last_activity = time.monotonic()
        self._stopping = asyncio.Event()
        self._untracked: dict[str, int] = {}  # events applied, not yet in projection_tracking
        self._kafka_offsets: dict[int, int] = {}  # to commit to Kafka (informational)
        self._kafka_committed_at = 0.0
        self._tracked_at = 0.0  # the last position write (projection_tracking)

    @classmethod
    def for_container(
        cls, container: "Container", group_id: str = DEFAULT_GROUP, **kwargs: Any
    ) -> "KafkaProjectionWorker":
        """A worker writing through the container's read-model write engine."""
        return cls(
            container.settings,
            container.write_engine,
            container.content.mapper,
            group_id,
            **kwargs,
        )

    @classmethod
    def for_feed(
        cls,
        container: "Container",
        feed: str,
        group_id: str | None = None,
        names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> "KafkaProjectionWorker":
        """A worker of the keyed projections of a projection feed (`video` or `viewer`)."""
        settings = container.settings
        return cls(
            settings,
            container.write_engine,
            container.content.mapper,
            group_id or FEED_GROUP.format(feed=feed),
            specs=keyed_specs(feed, names),
            topic=feed_topic(settings.kafka_topic_prefix, feed),
            **kwargs,
        )

    def stop(self) -> None:
        """Ask run() to finish its current batch, leave the group and return (call it on
        the event loop's thread, e.g. from a signal handler added to the loop)."""
        self._stopping.set()

    async def run(
        self, *, until_idle: bool = False, idle_ms: int = 2000, on_batch: OnBatch | None = None
    ) -> WorkerStats:
        """Consume until stop() (or, with until_idle, until every owned partition is
        consumed to its end and nothing arrived for idle_ms). `on_batch` is called after
        every committed batch, outside the batch lock; it may be a coroutine function."""
        await ensure_topics(self.settings, [self.topic])
        options = {"max_poll_records": self.batch_size, **self.consumer_options}
        kafka = consumer(self.settings, group_id=self.group_id, **options)
        kafka.subscribe([self.topic], listener=_Listener(self))
        self._consumer = kafka
        started = time.perf_counter()
        await kafka.start()
        self._partition_count = len(kafka.partitions_for_topic(self.topic) or ())
        try:
            while not self._stopping.is_set():
                if self._unseeked:
                    async with self._lock:
                        await self._take_over()
                records = await kafka.getmany(timeout_ms=POLL_MS)
                if records:
                    self._last_activity = time.monotonic()
                    if await self._process(records) and on_batch is not None:
                        result = on_batch(self.stats)
                        if inspect.isawaitable(result):
                            await result
                else:
                    await self._track_when_idle()
                    if until_idle and await self._caught_up(idle_ms):
                        break
        finally:
            self.stats.seconds = time.perf_counter() - started
            async with self._lock:  # no batch in flight: leaving the group is safe
                self._owned.clear()
                self.stats.partitions = ()
            await kafka.stop()
            self._consumer = None
        return self.stats

    # -- batches ----------------------------------------------------------------------------
    async def _process(self, records: dict[TopicPartition, list[Any]]) -> bool:
        """Apply one getmany result; True when a transaction committed."""
        done: _Applied | None = None
        # The group's position needs every partition (metadata may load late, partitions
        # may be added): a lookup in the consumer's metadata, per batch.
        known = self._consumer.partitions_for_topic(self.topic)
        if known:
            self._partition_count = len(known)
        async with self._lock:
            batch = self._fresh(records)
            if not batch:
                return False
            expected = {p: self._expected[p] for p in batch}
            try:
                try:
                    done = await _finish_in_thread(self._apply, batch, expected)
                except Exception as e:
                    if not self.tracked or isinstance(e, OffsetConflict) or not quarantinable(e):
                        raise
                    # An event's data broke the batch: again, each event alone (quarantine).
                    log.warning("%s: batch failed (%s); applying it event by event",
                                self.group_id, e)  # fmt: skip
                    done = await _finish_in_thread(self._apply, batch, expected, True)
            except OffsetConflict as e:
                self.stats.conflicts += 1
                log.warning("%s: %s; re-reading from the stored offsets", self.group_id, e)
                await self._reseek(batch)
                return False
            except Exception as e:  # never skip an event: roll back, pause, re-read
                self.stats.errors += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                log.exception("%s: batch failed; will retry", self.group_id)
                await self._reseek(batch)
            else:
                self._expected.update(done.next_offsets)
                self.stats.messages += done.messages
                self.stats.applied += done.applied
                self.stats.duplicates += done.duplicates
                self.stats.ignored += done.ignored
                self.stats.position = max(self.stats.position, done.position)
                self.stats.batches += 1
        if done is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RETRY_SECONDS)
            return False
        if self.commit_to_kafka:  # informational (lag tooling): at most once a second
            self._kafka_offsets.update(done.next_offsets)
            if time.monotonic() - self._kafka_committed_at >= KAFKA_COMMIT_SECONDS:
                await self._commit_to_kafka(self._kafka_offsets)
                self._kafka_offsets = {}
                self._kafka_committed_at = time.monotonic()
        return True

    def _fresh(self, records: dict[TopicPartition, list[Any]]) -> dict[int, list[Any]]:
        """The records of owned partitions from their stored offsets on, by partition."""
        batch: dict[int, list[Any]] = {}
        for tp, messages in records.items():
            if tp not in self._owned:  # revoked meanwhile: the new owner reads them
                continue
            stored = self._expected[tp.partition]
            fresh = [m for m in messages if stored is None or m.offset >= stored]
            if fresh:
                batch[tp.partition] = fresh
        return batch

    def _apply(
        self, batch: dict[int, list[Any]], expected: dict[int, int | None], careful: bool = False
    ) -> _Applied:
        """One read-model transaction: claim the offsets, apply the events, record.
        `careful`: each event alone in a savepoint, per projection; one that fails alone
        with an error of its data is quarantined for that projection (as the runner does,
        adapters/projections/quarantine.py) and the batch goes on."""
        new = {p: messages[-1].offset + 1 for p, messages in batch.items()}
        applied = {p: 0 for p in batch}
        marks: dict[int, int] = {}
        per_spec: list[list[_Item]] = [[] for _ in self.specs]
        wanted_by_topic: dict[str, list[int]] = {}
        duplicates = ignored = 0
        position = 0
        with self.engine.begin() as conn:
            last = claim_offsets(conn, self.group_id, self.topic, expected, new)
            for p, messages in batch.items():
                high = last.get(p, 0)
                for message in messages:
                    mark = watermark_of(message.headers)
                    if mark is not None:  # the relay's marker: not an event
                        marks[p] = max(marks.get(p, 0), mark)
                        continue
                    envelope = Envelope.from_bytes(message.value)
                    if envelope.position <= high:
                        duplicates += 1
                        continue
                    high = envelope.position
                    wanted = wanted_by_topic.get(envelope.topic)
                    if wanted is None:
                        wanted = [i for i, t in enumerate(self._spec_topics) if envelope.topic in t]
                        wanted_by_topic[envelope.topic] = wanted
                    if not wanted:
                        ignored += 1
                        continue
                    stored = envelope.stored_event()
                    try:
                        event = self.mapper.to_domain_event(stored)
                    except Exception as e:  # an event the store holds but nobody can read
                        if not careful or not quarantinable(e):
                            raise
                        notification = Notification(id=envelope.position, **vars(stored))
                        for i in wanted:
                            check_recent(conn, self.specs[i].name, e)
                            record(conn, self.specs[i].name, notification, e)
                        continue
                    stamp = trending_watermark_of(message.headers)
                    for i in wanted:
                        per_spec[i].append((envelope.position, event, stamp, stored))
                    applied[p] += 1
                last[p] = high
            counts, views = {}, []
            for spec, items in zip(self.specs, per_spec, strict=True):
                counts[spec.name] = len(items)
                if not items and self.tracked:
                    continue
                if careful:
                    counts[spec.name] -= self._one_by_one(conn, spec, items)
                    continue
                views.append(_processed(spec, conn, items))
            # Every view writes at the end, after all of the batch's Python work: rows
            # that other workers write too (a hashtag's totals) stay locked only from
            # these statements to the commit.
            for view in views:
                view.flush()
            record_progress(conn, self.group_id, self.topic, last, applied, marks)
        if self.tracked:
            for name, n in counts.items():
                self._untracked[name] = self._untracked.get(name, 0) + n
            if marks:  # only a relay watermark can move the group's position
                position = self._track() or 0
        messages_in_batch = sum(len(m) for m in batch.values())
        return _Applied(
            new, messages_in_batch, sum(applied.values()), duplicates, ignored, position
        )

    def _one_by_one(self, conn: sa.Connection, spec: ProjectionSpec, items: list[_Item]) -> int:
        """Each event alone in a savepoint; quarantine those that fail alone. Returns how
        many were quarantined. An error that is not an event's (or past the limits) is
        raised: the batch rolls back and is retried."""
        quarantined = 0
        for item in items:
            try:
                with conn.begin_nested():
                    _processed(spec, conn, [item]).flush()
            except Exception as e:
                if not quarantinable(e) or quarantined >= MAX_STREAK:
                    raise
                check_recent(conn, spec.name, e)
                position, _, _, stored = item
                record(conn, spec.name, Notification(id=position, **vars(stored)), e)
                quarantined += 1
        return quarantined

    async def _track_when_idle(self) -> None:
        """Nothing to read: write the group's position now and then (a batch writes it only
        when it read a watermark; one whose write was lost, e.g. to a crash just after its
        commit, is written here) with the counts not written yet."""
        if not self.tracked or time.monotonic() - self._tracked_at < IDLE_TRACK_SECONDS:
            return
        async with self._lock:
            tracked = await asyncio.to_thread(self._track)
            if tracked is not None:
                self.stats.position = max(self.stats.position, tracked)

    def _track(self) -> int | None:
        """The group's position (and the events applied since the last write) into
        projection_tracking, in a transaction of its own after the batch's: the rows are
        shared by every worker of the group, and holding their locks through a batch
        would make the workers wait for each other. The position
        only follows committed data; one lost here (a crash between the two) is written
        by the next batch that reads a watermark, or while idle (`_track_when_idle`)."""
        try:
            with self.engine.begin() as conn:
                position = group_position(conn, self.group_id, self.topic, self._partition_count)
                track_group_position(conn, position, self._untracked)
            self._untracked, self._tracked_at = {}, time.monotonic()
            return position
        except Exception as e:
            self.stats.last_error = f"{type(e).__name__}: {e}"
            log.warning("%s: position not written (the next batch writes it): %s", self.group_id, e)
            return None

    async def _commit_to_kafka(self, next_offsets: dict[int, int]) -> None:
        """Informational only (lag tooling): the stored offsets are the truth."""
        offsets = {TopicPartition(self.topic, p): o for p, o in next_offsets.items()}
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), KAFKA_COMMIT_TIMEOUT)
        except (KafkaError, TimeoutError) as e:  # e.g. a rebalance started meanwhile
            log.debug("%s: informational Kafka commit skipped: %s", self.group_id, e)

    # -- rebalances -------------------------------------------------------------------------
    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        if self._lock.locked():
            self.stats.waited_on_revoke += 1
        async with self._lock:  # the batch in flight commits or rolls back first
            self._owned -= revoked
            self._unseeked -= revoked
            for tp in revoked:
                self._expected.pop(tp.partition, None)
            self._active = False
            self._last_activity = time.monotonic()
            self.stats.partitions = tuple(sorted(tp.partition for tp in self._owned))

    async def _assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            self.stats.rebalances += 1
            self._owned = set()
            self._expected = {}
            self._unseeked = set(assigned)
            self._active = True
            self._last_activity = time.monotonic()
            await self._take_over()

    async def _take_over(self) -> None:
        """Seek unseeked partitions to their stored offsets. Call with the lock held.
        If the database is unreachable they stay unseeked (their records are dropped
        unprocessed) and run() retries."""
        tps = sorted(self._unseeked)
        if not tps:
            return
        try:
            stored = await asyncio.to_thread(self._load, [tp.partition for tp in tps])
            for tp in tps:
                await self._seek(tp, stored.get(tp.partition))
        except IllegalStateError:  # revoked while we were loading: the next owner seeks
            return
        except Exception as e:
            self.stats.last_error = f"{type(e).__name__}: {e}"
            log.exception("%s: could not load stored offsets; will retry", self.group_id)
            return
        self._owned |= set(tps)
        self._unseeked -= set(tps)
        self.stats.partitions = tuple(sorted(tp.partition for tp in self._owned))

    async def _reseek(self, partitions: dict[int, Any]) -> None:
        """After a rolled-back batch: back to the stored offsets. Call with the lock held."""
        tps = {TopicPartition(self.topic, p) for p in partitions} & self._owned
        self._owned -= tps
        self._unseeked |= tps
        await self._take_over()

    async def _seek(self, tp: TopicPartition, stored: StoredOffset | None) -> None:
        if stored is None:
            await self._consumer.seek_to_beginning(tp)
            self._expected[tp.partition] = None
        else:
            self._consumer.seek(tp, stored.next_offset)
            self._expected[tp.partition] = stored.next_offset

    def _load(self, partitions: list[int]) -> dict[int, StoredOffset]:
        with self.engine.connect() as conn:
            return load_offsets(conn, self.group_id, self.topic, partitions)

    async def _caught_up(self, idle_ms: int) -> bool:
        """Idle for idle_ms while holding a settled assignment, and every owned partition
        consumed to its end offset."""
        if not self._active or self._unseeked:
            return False
        if time.monotonic() - self._last_activity < idle_ms / 1000:
            return False
        owned = sorted(self._owned)
        if not owned:
            return True
        try:
            ends = await self._consumer.end_offsets(owned)
            positions = [await self._consumer.position(tp) for tp in owned]
        except (KafkaError, IllegalStateError):  # a rebalance began meanwhile
            return False
        # The high watermark of the last fetch counts too: some brokers (Tansu 0.6) answer
        # ListOffsets(latest) with the base offset of the last record batch.
        return all(
            pos >= max(ends[tp], self._consumer.highwater(tp) or 0)
            for tp, pos in zip(owned, positions, strict=True)
        )
