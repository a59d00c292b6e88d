"""Engagement context: viewer signals (views, likes, shares, comments) and follows.

Single commands and the batch ingest path share `apply_signal`, so both enforce exactly
the same rules. A batch is atomic over its accepted items: per-item validation decides
which items are accepted, then all accepted items are stored in one transaction (all or
none); rejected items are reported and never stored.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from commands.base import (
    MAX_ATTEMPTS,
    CommandResult,
    Idempotency,
    IdempotencyKeyReused,
    IdempotencyRecord,
    Outcome,
    ReelPulseApplication,
    StreamBatchReader,
    TAggregate,
    back_off_after_conflict,
)
from commands.content import SNAPSHOT_INTERVALS
from domain.creator import Creator
from domain.engagement import Engagement
from domain.erasure import Erasure
from domain.errors import DomainError, InvalidValue, NotFound, VersionConflict
from domain.following import Following
from domain.video import Video

SignalKind = Literal[
    "view", "like", "unlike", "share", "comment", "delete_comment", "follow", "unfollow"
]


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


@dataclass(frozen=True)
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


class _Workspace:
    """Aggregates loaded during one attempt, so a batch loads each stream once.

    `prefetch` reads every stream a batch touches (videos, creators, pair streams) in one
    query when the store can (PostgreSQL); otherwise each is loaded on first use.
    """

    def __init__(self, app: "EngagementApplication") -> None:
        self.app = app
        self.videos: dict[UUID, Video] = {}
        self.creators: dict[UUID, Creator] = {}
        self.streams: dict[UUID, Aggregate] = {}
        self.prefetched: dict[UUID, Aggregate | None] = {}  # None: no such stream

    def prefetch(self, signals: Sequence[Signal]) -> None:
        reader = self.app.recorder
        if not isinstance(reader, StreamBatchReader):
            return
        ids: set[UUID] = set()
        for s in signals:
            if s.kind in ("follow", "unfollow"):
                if s.creator_id is not None:
                    ids.update((s.creator_id, Following.create_id(s.viewer_id, s.creator_id)))
            elif s.video_id is not None:
                ids.update((s.video_id, Engagement.create_id(s.viewer_id, s.video_id)))
        to_domain = self.app.mapper.to_domain_event
        found = reader.select_streams(ids)
        self.prefetched = dict.fromkeys(ids)
        for stream_id, stored in found.items():
            aggregate = None
            for stored_event in stored:  # project_aggregate, minus a slow Protocol check
                aggregate = to_domain(stored_event).mutate(aggregate)  # type: ignore[attr-defined]
            self.prefetched[stream_id] = aggregate

    def get(self, cls: type[TAggregate], aggregate_id: UUID) -> TAggregate | None:
        if aggregate_id in self.prefetched:
            aggregate = self.prefetched[aggregate_id]
            return aggregate if isinstance(aggregate, cls) else None
        return self.app.load_or_none(cls, aggregate_id)

    def video(self, video_id: UUID) -> Video:
        if video_id not in self.videos:
            self.videos[video_id] = self._require(Video, video_id, "video")
        return self.videos[video_id]

    def creator(self, creator_id: UUID) -> Creator:
        if creator_id not in self.creators:
            self.creators[creator_id] = self._require(Creator, creator_id, "creator")
        return self.creators[creator_id]

    def _require(self, cls: type[TAggregate], aggregate_id: UUID, what: str) -> TAggregate:
        if aggregate_id not in self.prefetched:
            return self.app.load(cls, aggregate_id, what=what)
        aggregate = self.get(cls, aggregate_id)
        if aggregate is None:
            raise NotFound(f"{what} {aggregate_id} not found", code=f"{what}_not_found")
        return aggregate

    def pending(self) -> list[Aggregate]:
        return [a for a in self.streams.values() if a.pending_events]


class EngagementApplication(ReelPulseApplication):
    snapshotting_intervals = SNAPSHOT_INTERVALS

    # -- single commands -----------------------------------------------------------------
    def record(
        self,
        signal: Signal,
        *,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            ws = _Workspace(self)
            ws.prefetch([signal])  # the video (or creator) and the pair stream: one query
            stream, recorded, details = self.apply_signal(ws, signal, expected_version)
            details["status"] = "recorded" if recorded else "duplicate"
            return Outcome([stream], stream, details)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    # -- batch ---------------------------------------------------------------------------
    def ingest(
        self, signals: Sequence[Signal], *, idempotency: Idempotency | None = None
    ) -> BatchResult:
        replayed = self._replay_batch(idempotency)
        if replayed is not None:
            return replayed
        for _attempt in range(MAX_ATTEMPTS):
            ws = _Workspace(self)
            ws.prefetch(signals)
            items = [self._apply_item(ws, i, s) for i, s in enumerate(signals)]
            pending = ws.pending()
            if not pending:
                return BatchResult(items=items, position=0)
            kwargs: dict[str, Any] = {}
            if idempotency is not None:
                kwargs["idempotency"] = IdempotencyRecord(
                    idempotency.key,
                    idempotency.fingerprint,
                    {"batch": [i.to_json() for i in items]},
                )
            try:
                recordings = self._save_streams(pending, **kwargs)
            except IntegrityError:
                replayed = self._replay_batch(idempotency)
                if replayed is not None:
                    return replayed
                back_off_after_conflict(_attempt)
                continue
            return BatchResult(items=items, position=max(r.notification.id for r in recordings))
        raise VersionConflict("too many concurrent writers on these streams; retry the batch")

    def _save_streams(self, streams: Sequence[Aggregate], **kwargs: Any) -> list[Any]:
        """`Application.save` for a batch's streams: the same steps (record, snapshots,
        notify), without its per-object runtime Protocol checks (about 60 µs each on
        Python 3.11), which every object here passes by construction."""
        processing = ProcessingEvent[UUID]()
        for stream in streams:
            processing.events.extend(stream.collect_events())
            processing.aggregates[stream.id] = stream
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def _apply_item(self, ws: _Workspace, index: int, signal: Signal) -> ItemResult:
        try:
            stream, recorded, details = self.apply_signal(ws, signal, None)
        except DomainError as e:
            return ItemResult(index, "rejected", error=e.code, message=e.message)
        return ItemResult(
            index,
            "recorded" if recorded else "duplicate",
            id=stream.id,
            version=stream.version,
            details=details,
        )

    def _replay_batch(self, idempotency: Idempotency | None) -> BatchResult | None:
        if idempotency is None:
            return None
        stored = self._store.extensions.find_idempotency(idempotency.key)
        if stored is None:
            return None
        if stored.fingerprint != idempotency.fingerprint or "batch" not in stored.result:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different request"
            )
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

    # -- the rules, shared by both paths -------------------------------------------------
    def apply_signal(
        self, ws: _Workspace, signal: Signal, expected_version: int | None
    ) -> tuple[Aggregate, bool, dict[str, str]]:
        """Apply one signal to its stream in the workspace. Raises DomainError.

        A stream created for a signal that is then rejected is discarded, so a rejected
        item never leaves an empty stream behind.
        """
        when = self.event_time(signal.occurred_at)
        if signal.kind in ("follow", "unfollow"):
            return self._apply_follow(ws, signal, when, expected_version)
        if signal.video_id is None:
            raise _missing("video_id")
        video = ws.video(signal.video_id)
        stream_id = Engagement.create_id(signal.viewer_id, video.id)
        stream = ws.streams.get(stream_id) or ws.get(Engagement, stream_id)
        is_new = stream is None
        if stream is None:
            stream = Engagement.start(viewer_id=signal.viewer_id, video=video, occurred_at=when)
        assert isinstance(stream, Engagement)
        if not is_new:
            self.check_version(stream, expected_version)
        details: dict[str, str] = {}
        cid = signal.client_event_id
        match signal.kind:
            case "view":
                recorded = stream.view(
                    video,
                    watch_seconds=signal.watch_seconds,
                    completed=signal.completed,
                    traffic_source=signal.traffic_source,
                    device=signal.device,
                    occurred_at=when,
                    client_event_id=cid,
                )
            case "like":
                recorded = stream.like(video, occurred_at=when, client_event_id=cid)
            case "unlike":
                recorded = stream.unlike(video, occurred_at=when, client_event_id=cid)
            case "share":
                recorded = stream.share(
                    video, channel=signal.channel, occurred_at=when, client_event_id=cid
                )
            case "comment":
                comment_id = signal.comment_id or uuid4()
                recorded = stream.comment(
                    video,
                    comment_id=comment_id,
                    text=signal.text,
                    occurred_at=when,
                    client_event_id=cid,
                )
                details["comment_id"] = str(comment_id)
            case "delete_comment":
                if signal.comment_id is None:
                    raise _missing("comment_id")
                stream.delete_comment(comment_id=signal.comment_id, occurred_at=when)
                recorded = True
        ws.streams[stream.id] = stream
        return stream, recorded, details

    def _apply_follow(
        self, ws: _Workspace, signal: Signal, when: datetime, expected_version: int | None
    ) -> tuple[Aggregate, bool, dict[str, str]]:
        if signal.creator_id is None:
            raise _missing("creator_id")
        creator = ws.creator(signal.creator_id)
        stream_id = Following.create_id(signal.viewer_id, creator.id)
        stream = ws.streams.get(stream_id) or ws.get(Following, stream_id)
        if stream is None:
            stream = Following.start(
                viewer_id=signal.viewer_id, creator_id=creator.id, occurred_at=when
            )
        else:
            self.check_version(stream, expected_version)
        assert isinstance(stream, Following)
        if signal.kind == "follow":
            recorded = stream.follow(occurred_at=when, client_event_id=signal.client_event_id)
        else:
            recorded = stream.unfollow(occurred_at=when, client_event_id=signal.client_event_id)
        ws.streams[stream.id] = stream
        return stream, recorded, {}

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


def _missing(field_name: str) -> DomainError:
    return InvalidValue(f"{field_name} is required for this signal", code=f"missing_{field_name}")
