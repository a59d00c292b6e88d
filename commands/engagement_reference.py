"""The reference engagement write path: aggregates, the library's repository and save.

Every signal loads its pair stream as an Engagement / Following aggregate, runs the
aggregate's command and saves it with `Application.save` (one transaction per command
or batch, the recorder's own insert). It is slow (the library's event machinery per
signal) and kept on purpose: it is the obvious version of what commands/engagement.py
does with lean states and group commit, and the differential tests
(tests/integration/test_bulk_ingest.py) feed both the same signals and require the same
results, the same stored events and the same aggregates. Nothing in production calls it.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
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
from commands.engagement import BatchResult, ItemResult, Signal
from domain.creator import Creator
from domain.engagement import Engagement
from domain.errors import DomainError, InvalidValue, NotFound, VersionConflict
from domain.following import Following
from domain.video import Video


class _Workspace:
    """Aggregates loaded during one attempt, so a batch loads each stream once.

    `prefetch` reads every stream a batch touches (videos, creators, pair streams) in one
    query when the store can (PostgreSQL); otherwise each is loaded on first use.
    """

    def __init__(self, app: "ReferenceEngagement") -> None:
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


class ReferenceEngagement(ReelPulseApplication):
    """The engagement use cases on the aggregates and the library's save (the write path
    before group commit): the reference that tests hold the fast path to."""

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


def _missing(field_name: str) -> DomainError:
    return InvalidValue(f"{field_name} is required for this signal", code=f"missing_{field_name}")
