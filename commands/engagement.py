"""Engagement context: viewer signals (views, likes, shares, comments) and follows.

The hot path of ReelPulse. Every signal, single command or batch item, goes through the
same steps, each a named function below:

    decide   `_decide`: under the write model's lock, the lean pair states
             (domain/pairs.py) apply the aggregates' rules to each signal; accepted
             signals become new events, rejected ones item errors (never stored)
    encode   `_encode`: the events' state in the library's stored format (the mapper's
             codec, comment texts sealed for erasure)
    commit   `Appender.submit`: queued for the group commit, which stores it with the
             commands of other threads in one transaction (adapters/eventstore/committer.py)

A batch is atomic over its accepted items: they are stored in one transaction (all or
none); rejected items are reported and never stored. When the commit refuses a request
(a stream it decided as new exists, a video it read changed, a concurrent writer), the
write model is corrected and the signals are decided again: the rules are always checked
against the state the events are appended to.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, NoReturn
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Mapper

from commands.appending import (
    Appender,
    AppendRequest,
    CommitExpired,
    DependsOnRefused,
    EncodedEvent,
    IdempotencyKeyTaken,
    ReadsChanged,
    StreamsExist,
)
from commands.base import (
    MAX_ATTEMPTS,
    RETRY_BACKOFF_CAP_SECONDS,
    CommandResult,
    Idempotency,
    IdempotencyKeyReused,
    IdempotencyRecord,
    Outcome,
    ReelPulseApplication,
    SharedStore,
    StreamBatchReader,
    back_off_after_conflict,
    utc_now,
)
from commands.content import SNAPSHOT_INTERVALS
from commands.write_model import WriteModel
from domain.engagement import Engagement
from domain.erasure import Erasure
from domain.errors import DomainError, InvalidValue, NotFound, VersionConflict
from domain.following import Following
from domain.pairs import FollowState, NewEvent, PairState

SignalKind = Literal[
    "view", "like", "unlike", "share", "comment", "delete_comment", "follow", "unfollow"
]
FOLLOW_KINDS = ("follow", "unfollow")
PAIR_SNAPSHOT_INTERVAL = SNAPSHOT_INTERVALS[Engagement]
# What one command read from the store, by stream id: the state of a pair stream, or
# None for any stream that is not stored; a video or creator read is in the write model.
Known = dict[UUID, "PairState | FollowState | None"]


@dataclass(frozen=True)
class Signal:
    """One engagement signal, as sent by a client (single command or batch item)."""

    kind: SignalKind
    viewer_id: UUID
    video_id: UUID | None = None  # all kinds but follow/unfollow
    creator_id: UUID | None = None  # follow/unfollow
    occurred_at: datetime | None = None
    client_event_id: str | None = None
    watch_seconds: float = 0.0
    completed: bool = False
    traffic_source: str = "for_you"
    device: str = "other"
    channel: str = "other"
    comment_id: UUID | None = None
    text: str = ""


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 3 us to build, per item
class ItemResult:
    index: int
    status: Literal["recorded", "duplicate", "rejected"]
    id: UUID | None = None
    version: int | None = None
    error: str | None = None
    message: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status,
            "id": str(self.id) if self.id else None,
            "version": self.version,
            "error": self.error,
            "message": self.message,
            "details": self.details,
        }


@dataclass(frozen=True)
class BatchResult:
    items: list[ItemResult]
    position: int
    replayed: bool = False

    @property
    def recorded(self) -> int:
        return sum(1 for i in self.items if i.status == "recorded")

    @property
    def rejected(self) -> int:
        return sum(1 for i in self.items if i.status == "rejected")


class _NeedsRead(Exception):
    """The decision needs streams the write model does not hold (videos, creators, or
    pair streams the commit said exist): read them, then decide again."""

    def __init__(self, stream_ids: set[UUID]) -> None:
        super().__init__(f"{len(stream_ids)} stream(s) to read")
        self.stream_ids = stream_ids


@dataclass
class _Decided:
    """One attempt's decision: the item results and the request that stores them."""

    items: list[ItemResult]
    errors: dict[int, DomainError]  # the rejected items' errors, by index
    streams: dict[UUID, PairState | FollowState]  # the streams it writes, by id
    request: AppendRequest | None = None  # None: nothing to store
    future: "Future[list[int]] | None" = None  # the request's commit
    subject: PairState | FollowState | None = None  # a single command's stream
    # Nothing to store, but the answers read streams whose state is another request's,
    # not committed yet: wait for those; if one is refused, decide again.
    waits: list["Future[list[int]]"] = field(default_factory=list)


class _Prepared(NamedTuple):
    signals: Sequence[Signal]
    whens: list[datetime | DomainError]
    stream_ids: list[UUID | None]


class _Decision:
    """Signals applied to the write model, under its lock (see `_decide`)."""

    def __init__(self, model: WriteModel, now: datetime, known: "Known") -> None:
        self.model = model
        self.now = now
        self.known = known
        self.events: list[NewEvent] = []
        self.new_streams: set[UUID] = set()
        self.reads: dict[UUID, int] = {}
        self.streams: dict[UUID, PairState | FollowState] = {}
        self.pending: dict[UUID, Future[list[int]]] = {}  # streams read with uncommitted state

    def apply(
        self, signal: Signal, stream_id: UUID | None, when: datetime, expected_version: int | None
    ) -> tuple[PairState | FollowState, NewEvent | None, dict[str, str]]:
        """Apply one signal to its stream (`stream_id`, None: the signal names no video or
        creator): the stream, its new event (None: a redelivery) and details. Raises
        DomainError, and leaves no trace then."""
        if signal.kind in FOLLOW_KINDS:
            return self._follow(signal, stream_id, when, expected_version)
        if signal.video_id is None:
            raise _missing("video_id")
        video = self.model.videos.get(signal.video_id)
        if video is None or stream_id is None:
            raise NotFound(f"video {signal.video_id} not found", code="video_not_found")
        pair = self._stream(stream_id)
        started = None
        if pair is None:
            pair, started = PairState.start(stream_id, signal.viewer_id, video, when, self.now)
        else:
            _check_version(pair.version, expected_version)
        assert isinstance(pair, PairState)
        cid, now, details = signal.client_event_id, self.now, {}
        match signal.kind:
            case "view":
                event = pair.view(video, signal.watch_seconds, signal.completed,
                                  signal.traffic_source, signal.device, when, cid, now)  # fmt: skip
            case "like":
                event = pair.like(video, when, cid, now)
            case "unlike":
                event = pair.unlike(video, when, cid, now)
            case "share":
                event = pair.share(video, signal.channel, when, cid, now)
            case "comment":
                comment_id = signal.comment_id or uuid4()
                event = pair.comment(video, comment_id, signal.text, when, cid, now)
                details["comment_id"] = str(comment_id)
            case "delete_comment":
                if signal.comment_id is None:
                    raise _missing("comment_id")
                event = pair.delete_comment(signal.comment_id, when, now)
            case _:
                raise InvalidValue(f"unknown signal kind {signal.kind!r}", code="invalid_kind")
        self.reads[video.id] = video.version
        self._written(pair, started, event)
        return pair, event, details

    def _follow(
        self, signal: Signal, stream_id: UUID | None, when: datetime, expected_version: int | None
    ) -> tuple[PairState | FollowState, NewEvent | None, dict[str, str]]:
        if signal.creator_id is None:
            raise _missing("creator_id")
        if signal.creator_id not in self.model.creators or stream_id is None:
            raise NotFound(f"creator {signal.creator_id} not found", code="creator_not_found")
        pair = self._stream(stream_id)
        started = None
        if pair is None:
            pair, started = FollowState.start(
                stream_id, signal.viewer_id, signal.creator_id, when, self.now
            )
        else:
            _check_version(pair.version, expected_version)
        assert isinstance(pair, FollowState)
        if signal.kind == "follow":
            event = pair.follow(when, signal.client_event_id, self.now)
        else:
            event = pair.unfollow(when, signal.client_event_id, self.now)
        self._written(pair, started, event)
        return pair, event, {}

    def _stream(self, stream_id: UUID) -> PairState | FollowState | None:
        own = self.streams.get(stream_id)
        if own is not None:
            return own
        model = self.model
        pending = model.pending_write(stream_id)
        if pending is not None:  # its state is another request's, not committed yet
            self.pending[stream_id] = pending
        state = model.stream(stream_id)
        if state is None:
            state = self.known.get(stream_id)  # read for this command (the LRU may not
            if state is not None:  # hold a batch's streams): the model holds it again
                model.put(state)
        return state

    def _written(
        self, pair: PairState | FollowState, started: NewEvent | None, event: NewEvent | None
    ) -> None:
        if started is not None:  # a new stream exists only once its first signal passed
            self.new_streams.add(pair.id)
            self.events.append(started)
            self.model.put(pair)
        if started is not None or event is not None:
            self.streams[pair.id] = pair
        if event is not None:
            self.events.append(event)


class EngagementApplication(ReelPulseApplication):
    snapshotting_intervals = SNAPSHOT_INTERVALS

    def __init__(
        self,
        store: SharedStore,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_streams: int | None = None,
    ) -> None:
        super().__init__(store, clock=clock)
        if store.appender is None:
            raise RuntimeError("the engagement write path needs the store's group committer")
        self.appender: Appender = store.appender
        self.model = WriteModel(max_streams) if max_streams else WriteModel()
        store.appender.add_watch_listener(self.model.watched)

    # -- single commands -----------------------------------------------------------------
    def record(
        self,
        signal: Signal,
        *,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
        deadline: float | None = None,
    ) -> CommandResult:
        known: Known = {}
        prepared = self._prepare([signal])
        for attempt in range(MAX_ATTEMPTS):
            try:
                decided = self._decide(prepared, idempotency, expected_version, deadline, known)
            except _NeedsRead as e:
                known.update(self._read(e.stream_ids, deadline))
                continue
            if decided.future is None:
                if not _settled(decided.waits):
                    known.clear()
                    continue  # its answer rested on state that was not stored
                return self._unstored_single(decided, idempotency)
            try:
                ids = decided.future.result()
            except IdempotencyKeyTaken:
                return self._replay_single(idempotency)
            except (StreamsExist, ReadsChanged, DependsOnRefused):
                known.clear()  # the write model drops the refused state: read it again
                continue
            except IntegrityError:
                known.clear()  # what it read is stale: another writer took the version
                if expected_version is not None:
                    raise self._conflict(expected_version) from None
                back_off_after_conflict(attempt)
                continue
            self._after_commit(decided, ids)
            return self._single_result(decided, ids[-1])
        raise VersionConflict("too many concurrent writers on this stream; retry later")

    async def record_async(
        self,
        signal: Signal,
        *,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
        deadline: float | None = None,
    ) -> CommandResult:
        """`record` for an event loop: decides on the loop (no thread hop) and awaits the
        commit; what needs the store (a stream the model does not hold, a replay, a
        snapshot) runs in a thread."""
        if signal.kind == "comment":  # sealing may create the viewer's key: a write
            return await asyncio.to_thread(
                self.record, signal, expected_version=expected_version,
                idempotency=idempotency, deadline=deadline,
            )  # fmt: skip
        known: Known = {}
        prepared = self._prepare([signal])
        for attempt in range(MAX_ATTEMPTS):
            try:
                decided = self._decide(prepared, idempotency, expected_version, deadline, known)
            except _NeedsRead as e:
                known.update(await asyncio.to_thread(self._read, e.stream_ids, deadline))
                continue
            if decided.future is None:
                if not await _settled_async(decided.waits):
                    known.clear()
                    continue  # its answer rested on state that was not stored
                return await asyncio.to_thread(self._unstored_single, decided, idempotency)
            try:
                ids = await asyncio.wrap_future(decided.future)
            except IdempotencyKeyTaken:
                return await asyncio.to_thread(self._replay_single, idempotency)
            except (StreamsExist, ReadsChanged, DependsOnRefused):
                known.clear()  # the write model drops the refused state: read it again
                continue
            except IntegrityError:
                known.clear()
                if expected_version is not None:
                    raise self._conflict(expected_version) from None
                await asyncio.sleep(min(RETRY_BACKOFF_CAP_SECONDS, 0.002 * 2**attempt))
                continue
            if self._needs_snapshot(decided):
                await asyncio.to_thread(self._after_commit, decided, ids)
            else:
                self._after_commit(decided, ids)
            return self._single_result(decided, ids[-1])
        raise VersionConflict("too many concurrent writers on this stream; retry later")

    # -- batch ---------------------------------------------------------------------------
    def ingest(
        self,
        signals: Sequence[Signal],
        *,
        idempotency: Idempotency | None = None,
        deadline: float | None = None,
    ) -> BatchResult:
        known: Known = {}
        prepared = self._prepare(signals)
        for attempt in range(MAX_ATTEMPTS):
            try:
                decided = self._decide(prepared, idempotency, None, deadline, known, batch=True)
            except _NeedsRead as e:
                known.update(self._read(e.stream_ids, deadline))
                continue
            if decided.future is None:
                if not _settled(decided.waits):
                    known.clear()
                    continue  # its answers rested on state that was not stored
                replayed = self._replay_batch(idempotency) if idempotency else None
                return replayed or BatchResult(items=decided.items, position=0)
            try:
                ids = decided.future.result()
            except IdempotencyKeyTaken:
                return self._replay_batch(idempotency) or self._reused()
            except (StreamsExist, ReadsChanged, DependsOnRefused):
                known.clear()  # the write model drops the refused state: read it again
                continue
            except IntegrityError:
                known.clear()
                back_off_after_conflict(attempt)
                continue
            self._after_commit(decided, ids)
            return BatchResult(items=decided.items, position=ids[-1])
        raise VersionConflict("too many concurrent writers on these streams; retry the batch")

    # -- decide -> encode -> commit --------------------------------------------------------
    def _prepare(self, signals: Sequence[Signal]) -> "_Prepared":
        """What a command's attempts share, computed outside the lock once: each signal's
        event time (or its error; the clock is read here), its stream id, and the keys
        its comments are sealed with."""
        self._prepare_keys(signals)
        return _Prepared(signals, [self._when(s) for s in signals],
                         [_stream_id(s) for s in signals])  # fmt: skip

    def _decide(
        self,
        prepared: "_Prepared",
        idempotency: Idempotency | None,
        expected_version: int | None,
        deadline: float | None,
        known: "Known",
        *,
        batch: bool = False,
    ) -> _Decided:
        """Decide every signal, encode the accepted ones and submit them, all under the
        write model's lock, so the commit queue holds requests in the order they were
        decided (a request decided on another's provisional state comes after it).
        Raises _NeedsRead for the streams it must read first (not in `known`, what this
        command read): videos and creators the model lacks, pair streams that may be
        stored though the model does not hold them, and those whose state a refusal
        dropped."""
        signals, whens, stream_ids = prepared
        model = self.model
        with model.lock:
            missing = self._unread(signals, stream_ids, known)
            if missing:
                raise _NeedsRead(missing)
            decision = _Decision(model, datetime.now(UTC), known)
            decided = _Decided([], {}, decision.streams)
            try:
                for index, (signal, stream_id, when) in enumerate(
                    zip(signals, stream_ids, whens, strict=True)
                ):
                    decided.items.append(
                        self._item(
                            decision, decided, index, signal, stream_id, when, expected_version
                        )
                    )
                if len(signals) == 1 and decided.items[0].id is not None:
                    stream_id = decided.items[0].id
                    decided.subject = decision.streams.get(stream_id) or model.stream(stream_id)
                if not decision.events:
                    decided.waits = list(decision.pending.values())
                    return decided
                decided.request = AppendRequest(
                    events=self._encode(decision.events),
                    idempotency=self._idempotency_record(idempotency, decided, batch),
                    new_streams=decision.new_streams,
                    reads=decision.reads,
                    deadline=deadline,
                    depends_on=frozenset(decision.pending),
                    after=tuple(set(decision.pending.values())),
                )
                decided.future = self.appender.submit(decided.request)
                model.wrote(decided.request.streams, decided.future)
                model.trim()
            except BaseException:
                model.forget(decision.streams)  # provisional, and nothing was queued
                raise
            return decided

    def _item(
        self,
        decision: _Decision,
        decided: _Decided,
        index: int,
        signal: Signal,
        stream_id: UUID | None,
        when: datetime | DomainError,
        expected_version: int | None,
    ) -> ItemResult:
        try:
            if isinstance(when, DomainError):
                raise when
            stream, event, details = decision.apply(signal, stream_id, when, expected_version)
        except DomainError as e:
            decided.errors[index] = e
            return ItemResult(index, "rejected", error=e.code, message=e.message)
        return ItemResult(
            index,
            "recorded" if event is not None else "duplicate",
            id=stream.id,
            version=stream.version,
            details=details,
        )

    def _encode(self, events: list[NewEvent]) -> list[EncodedEvent]:
        encode = state_encoder(self.mapper)
        new = tuple.__new__  # EncodedEvent(...) without the namedtuple's Python-level __new__
        return [
            new(
                EncodedEvent,
                (e.originator_id, e.originator_version, e.topic, encode(e.topic, e.state)),
            )
            for e in events
        ]

    def _prepare_keys(self, signals: Sequence[Signal]) -> None:
        """Comment texts are sealed with their viewer's key: create or read the keys of a
        batch's commenters in one go, outside the lock (the mapper's hook, if it has one)."""
        prepare = getattr(self.mapper, "prepare_keys", None)
        if prepare is not None:
            commenters = {s.viewer_id for s in signals if s.kind == "comment"}
            if commenters:
                prepare(commenters)

    def _when(self, signal: Signal) -> datetime | DomainError:
        try:
            return self.event_time(signal.occurred_at)
        except DomainError as e:
            return e

    def _unread(
        self, signals: Sequence[Signal], stream_ids: list[UUID | None], known: "Known"
    ) -> set[UUID]:
        """What the decision must read first (with the model's lock held): videos and
        creators the signals name that the model does not hold, and pair streams it cannot
        use (`WriteModel.usable`); minus what this command read already (`known`)."""
        model = self.model
        videos, creators, usable = model.videos, model.creators, model.usable
        missing = set()
        for s, stream_id in zip(signals, stream_ids, strict=True):
            if s.kind in FOLLOW_KINDS:
                if s.creator_id is not None and s.creator_id not in creators:
                    missing.add(s.creator_id)
            elif s.video_id is not None and s.video_id not in videos:
                missing.add(s.video_id)
            if stream_id is not None and not usable(stream_id):
                missing.add(stream_id)
        return missing.difference(known) if known else missing

    # -- reading the store -----------------------------------------------------------------
    def _read(self, stream_ids: set[UUID], deadline: float | None = None) -> Known:
        """Read streams from the store (one query where the store can: PostgreSQL), each
        from its latest snapshot, into the write model; returns the pair streams' states
        and None for every id without a stream (an unknown video, a new pair). With a
        deadline, the wait for a connection ends there (the database's OperationalError);
        past it, CommitExpired: nothing was stored."""
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise CommitExpired("not stored: the request's deadline passed")
        reader = self.recorder
        aggregates = []
        if isinstance(reader, StreamBatchReader):
            to_domain = self.mapper.to_domain_event
            snapshots = self.snapshots.recorder if self.snapshots is not None else None
            table = getattr(snapshots, "events_table_name", None)
            for stored in reader.select_streams(stream_ids, table, timeout).values():
                aggregate = None
                for stored_event in stored:  # project_aggregate, minus a slow Protocol check
                    aggregate = to_domain(stored_event).mutate(aggregate)  # type: ignore[attr-defined]
                aggregates.append(aggregate)
        else:
            for stream_id in stream_ids:
                with contextlib.suppress(AggregateNotFoundError):
                    aggregates.append(self.repository.get(stream_id))
        known: Known = dict.fromkeys(stream_ids)
        known.update(self.model.learn(aggregates))
        return known

    def _after_commit(self, decided: _Decided, ids: list[int]) -> None:
        """Positions for later duplicates' answers; snapshots every 100 events, as the
        library takes them (reloaded from the store)."""
        request = decided.request
        assert request is not None
        last: dict[UUID, tuple[int, int]] = {}
        for event, position in zip(request.events, ids, strict=True):
            last[event.originator_id] = (event.originator_version, position)  # type: ignore[index]
        with self.model.lock:
            for stream_id, (version, position) in last.items():
                state = decided.streams.get(stream_id)
                if state is not None and state.version == version:
                    state.position = position
            self.model.trim()  # the streams it kept while the request was pending
        for event in request.events:
            if event.originator_version % PAIR_SNAPSHOT_INTERVAL == 0:
                self.take_snapshot(event.originator_id, version=event.originator_version)  # type: ignore[arg-type]

    def _needs_snapshot(self, decided: _Decided) -> bool:
        request = decided.request
        return request is not None and any(
            e.originator_version % PAIR_SNAPSHOT_INTERVAL == 0 for e in request.events
        )

    # -- results ---------------------------------------------------------------------------
    def _single_result(self, decided: _Decided, position: int | None) -> CommandResult:
        """The answer to a single command; a rejection raises its domain error."""
        [item] = decided.items
        if 0 in decided.errors:
            raise decided.errors[0]
        subject = decided.subject
        assert subject is not None and item.id is not None
        if position is None:  # a redelivery: the position of the stream's latest event
            position = subject.position or (
                self._store.extensions.position_of(item.id, subject.version) or 0
            )
        return CommandResult(
            id=item.id, version=subject.version, position=position, details=_details(item)
        )

    def _unstored_single(self, decided: _Decided, idempotency: Idempotency | None) -> CommandResult:
        """A single command with nothing to store (a rejection or a redelivery): a retry
        with a stored Idempotency-Key gets the first answer, not today's."""
        if idempotency is not None:
            stored = self._store.extensions.find_idempotency(idempotency.key)
            if stored is not None:
                return self._replay_single(idempotency)
        return self._single_result(decided, None)

    def _idempotency_record(
        self, idempotency: Idempotency | None, decided: _Decided, batch: bool
    ) -> IdempotencyRecord | None:
        """A single command's result, or a batch's item results (also for a batch of one:
        its retry is answered by _replay_batch, which needs them)."""
        if idempotency is None:
            return None
        if not batch and decided.subject is not None and 0 not in decided.errors:
            item = decided.items[0]
            result = {"id": str(item.id), "version": decided.subject.version,
                      "details": _details(item)}  # fmt: skip
        else:
            result = {"batch": [i.to_json() for i in decided.items]}
        return IdempotencyRecord(idempotency.key, idempotency.fingerprint, result)

    def _replay_single(self, idempotency: Idempotency | None) -> CommandResult:
        assert idempotency is not None
        stored = self._store.extensions.find_idempotency(idempotency.key)
        if stored is None or stored.fingerprint != idempotency.fingerprint:
            self._reused()
        if "id" not in stored.result:  # type: ignore[union-attr]
            self._reused()
        return CommandResult.from_json(stored.result, stored.position)  # type: ignore[union-attr]

    def _replay_batch(self, idempotency: Idempotency | None) -> BatchResult | None:
        """The stored answer to a batch sent with this key before, or None."""
        if idempotency is None:
            return None
        stored = self._store.extensions.find_idempotency(idempotency.key)
        if stored is None:
            return None
        if stored.fingerprint != idempotency.fingerprint or "batch" not in stored.result:
            self._reused()
        items = [
            ItemResult(
                index=i["index"],
                status=i["status"],
                id=UUID(i["id"]) if i["id"] else None,
                version=i["version"],
                error=i["error"],
                message=i["message"],
                details=i.get("details", {}),
            )
            for i in stored.result["batch"]
        ]
        return BatchResult(items=items, position=stored.position, replayed=True)

    @staticmethod
    def _reused() -> NoReturn:
        raise IdempotencyKeyReused("this Idempotency-Key was already used for a different request")

    @staticmethod
    def _conflict(expected_version: int) -> VersionConflict:
        return VersionConflict("the stream was changed concurrently", expected=expected_version)

    # -- erasure -------------------------------------------------------------------------
    def forget_viewer(
        self, viewer_id: UUID, *, occurred_at: datetime | None = None
    ) -> CommandResult:
        """Record that `viewer_id` was forgotten (once: a second call records nothing and
        reports `already_forgotten`). The projections drop what they derived from the
        viewer when they reach this event; the key deletion is the adapter's part."""

        def decide() -> Outcome:
            existing = self.load_or_none(Erasure, Erasure.create_id(viewer_id))
            if existing is not None:
                return Outcome([], existing, {"status": "already_forgotten"})
            erasure = Erasure.forget_viewer(
                viewer_id=viewer_id, occurred_at=self.event_time(occurred_at)
            )
            return Outcome([erasure], erasure, {"status": "forgotten"})

        return self.execute(decide)

    # Convenience for tests and the workload generator.
    def get_engagement(self, viewer_id: UUID, video_id: UUID) -> Engagement:
        return self.load(Engagement, Engagement.create_id(viewer_id, video_id), what="engagement")

    def get_following(self, viewer_id: UUID, creator_id: UUID) -> Following:
        return self.load(Following, Following.create_id(viewer_id, creator_id), what="following")


def state_encoder(mapper: Mapper[Any]) -> Callable[[str, dict[str, Any]], bytes]:
    """What the mapper stores for an event of a topic with a state, without an event object:
    the mapper's own `encode_state` (the erasure mapper seals personal fields), else the
    library mapper's steps (transcoder, compressor, cipher)."""
    own = getattr(mapper, "encode_state", None)
    if own is not None:
        return own  # type: ignore[no-any-return]

    def encode(topic: str, state: dict[str, Any]) -> bytes:
        data = mapper.transcoder.encode(state)
        if mapper.compressor:
            data = mapper.compressor.compress(data)
        if mapper.cipher:
            data = mapper.cipher.encrypt(data)
        return data

    return encode


def _stream_id(signal: Signal) -> UUID | None:
    """The pair stream a signal writes (None: it names no video or creator)."""
    if signal.kind in FOLLOW_KINDS:
        if signal.creator_id is None:
            return None
        return Following.create_id(signal.viewer_id, signal.creator_id)
    if signal.video_id is None:
        return None
    return Engagement.create_id(signal.viewer_id, signal.video_id)


def _settled(commits: list["Future[list[int]]"]) -> bool:
    """Wait for other requests' commits; False if one of them was not stored."""
    for commit in commits:
        try:
            commit.result()
        except Exception:
            return False
    return True


async def _settled_async(commits: list["Future[list[int]]"]) -> bool:
    for commit in commits:
        try:  # shielded: cancelling this wait must never cancel another request's commit
            await asyncio.shield(asyncio.wrap_future(commit))
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
    return True


def _details(item: ItemResult) -> dict[str, str]:
    """A single command's details: the batch item's, and whether it was recorded."""
    return {**item.details, "status": item.status}


def _check_version(version: int, expected_version: int | None) -> None:
    if expected_version is not None and version != expected_version:
        raise VersionConflict(
            f"expected version {expected_version} but the aggregate is at version {version}",
            expected=expected_version,
            actual=version,
        )


def _missing(field_name: str) -> DomainError:
    return InvalidValue(f"{field_name} is required for this signal", code=f"missing_{field_name}")
