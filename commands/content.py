"""Content context: creators and their videos."""

import contextlib
import logging
import threading
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.utils import get_topic

from commands.base import CommandResult, Idempotency, Outcome, ReelPulseApplication
from domain.creator import Creator
from domain.engagement import Engagement
from domain.errors import InvalidValue, InvariantViolation
from domain.following import Following
from domain.handle import HandleReservation
from domain.moderation import ModerationCase
from domain.values import check_handle
from domain.video import Video

SNAPSHOT_INTERVALS = {Creator: 50, Video: 50, Engagement: 100, Following: 100, ModerationCase: 100}
# The tracking record of the one-off reservation of handles registered before handles
# were reserved: its position is the head the backfill read up to (docs/architecture.md).
HANDLES_BACKFILL = "ReelPulse->HandleReservations"
BACKFILL_PAGE = 1_000

log = logging.getLogger("reelpulse.commands.content")


class ContentApplication(ReelPulseApplication):
    snapshotting_intervals = SNAPSHOT_INTERVALS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handles_backfilled = False
        self._backfill_lock = threading.Lock()

    def register_creator(
        self,
        *,
        handle: str,
        display_name: str,
        region: str,
        creator_id: UUID | None = None,
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Register a creator and reserve their handle, both in one transaction: the
        handle's stream (HandleReservation) is created at version 1, so of two
        registrations of one handle, in any processes, the store commits one; the other
        decides again and is refused `handle_taken`."""
        new_id = creator_id or uuid4()
        self.reserve_existing_handles()

        def decide() -> Outcome:
            if self.load_or_none(Creator, new_id) is not None:
                raise InvariantViolation(f"creator {new_id} already exists", code="creator_exists")
            creator = Creator.register(
                creator_id=new_id,
                handle=handle,
                display_name=display_name,
                region=region,
                occurred_at=self.event_time(occurred_at),
            )
            reservation = HandleReservation.reserve(
                handle=creator.handle,
                creator_id=new_id,
                occurred_at=creator.registered_at,
                held=self.load_or_none(
                    HandleReservation, HandleReservation.create_id(creator.handle)
                ),
            )
            # The creator's event last: the command's position (and an idempotent
            # replay's) is the position of its Registered event.
            return Outcome([reservation, creator], creator)

        try:
            return self.execute(decide, idempotency=idempotency)
        except InvariantViolation:
            # A retry overtaken by its twin (same key) finds the twin's creator or handle:
            # it answers the twin's result, as a retry that conflicts at commit does.
            replay = self._replay(idempotency)
            if replay is None:
                raise
            return replay

    def reserve_existing_handles(self) -> int:
        """Reserve the handles of creators registered before handles were reserved; once
        per store, before this process's first registration. Returns how many it reserved.

        It reads every Creator.Registered up to the head, reserves each handle not yet
        reserved for its earliest creator (an older duplicate keeps its handle, unreserved)
        and records the head as the tracking record HANDLES_BACKFILL, which later
        processes find and skip. Safe to run in several processes at once: each
        reservation is created at most once (the store's unique stream version)."""
        if self._handles_backfilled:
            return 0
        with self._backfill_lock:
            if self._handles_backfilled:
                return 0
            reserved = 0
            if self.recorder.max_tracking_id(HANDLES_BACKFILL) is None:
                head = self.recorder.max_notification_id() or 0
                reserved = self._reserve_handles_up_to(head)
                # IntegrityError: another process finished the same backfill first.
                with contextlib.suppress(IntegrityError):
                    self.recorder.insert_tracking(Tracking(HANDLES_BACKFILL, head))
                log.info("reserved %d handles of creators registered up to %d", reserved, head)
            self._handles_backfilled = True
            return reserved

    def _reserve_handles_up_to(self, head: int) -> int:
        reserved, duplicates, start = 0, 0, 1
        topics = [get_topic(Creator.Registered)]
        while start <= head:
            page = self.recorder.select_notifications(
                start=start, limit=BACKFILL_PAGE, stop=head, topics=topics
            )
            for notification in page:
                registered = self.mapper.to_domain_event(notification)
                assert isinstance(registered, Creator.Registered)
                try:
                    reservation_id = HandleReservation.create_id(registered.handle)
                except InvalidValue:
                    continue  # a handle today's rules refuse cannot be registered again
                held = self.load_or_none(HandleReservation, reservation_id)
                if held is not None:
                    duplicates += held.creator_id != registered.originator_id
                    continue
                # Built directly, not through reserve(): the registration's stored time is
                # a fact, and stores older than today's event-time bound hold times before
                # 2000 that check_event_time would refuse (failing serve at startup).
                reservation = HandleReservation(
                    handle=check_handle(registered.handle),
                    creator_id=registered.originator_id,
                    occurred_at=registered.occurred_at,
                )
                try:
                    self.save(reservation)
                except IntegrityError:
                    continue  # reserved meanwhile, by another process's backfill
                reserved += 1
            if not page:
                break
            start = page[-1].id + 1
        if duplicates:
            log.warning(
                "%d creators share a handle with an earlier creator (registered before "
                "handles were unique); the earliest keeps it",
                duplicates,
            )
        return reserved

    def update_profile(
        self,
        creator_id: UUID,
        *,
        display_name: str,
        region: str,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            creator = self.load(Creator, creator_id, what="creator")
            self.check_version(creator, expected_version)
            creator.update_profile(
                display_name=display_name, region=region, occurred_at=self.event_time(occurred_at)
            )
            return Outcome([creator], creator)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def suspend_creator(
        self,
        creator_id: UUID,
        *,
        reason: str,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            creator = self.load(Creator, creator_id, what="creator")
            self.check_version(creator, expected_version)
            creator.suspend(reason=reason, occurred_at=self.event_time(occurred_at))
            return Outcome([creator], creator)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def reinstate_creator(
        self,
        creator_id: UUID,
        *,
        reason: str,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            creator = self.load(Creator, creator_id, what="creator")
            self.check_version(creator, expected_version)
            creator.reinstate(reason=reason, occurred_at=self.event_time(occurred_at))
            return Outcome([creator], creator)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def publish_video(
        self,
        *,
        creator_id: UUID,
        caption: str,
        hashtags: list[str],
        sound_id: str | None,
        duration_seconds: float,
        video_id: UUID | None = None,
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        new_id = video_id or uuid4()

        def decide() -> Outcome:
            creator = self.load(Creator, creator_id, what="creator")
            if self.load_or_none(Video, new_id) is not None:
                raise InvariantViolation(f"video {new_id} already exists", code="video_exists")
            video = Video.publish(
                video_id=new_id,
                creator=creator,
                caption=caption,
                hashtags=hashtags,
                sound_id=sound_id,
                duration_seconds=duration_seconds,
                occurred_at=self.event_time(occurred_at),
            )
            return Outcome([video], video)

        return self.execute(decide, idempotency=idempotency)

    def edit_caption(
        self,
        video_id: UUID,
        *,
        caption: str,
        hashtags: list[str],
        actor_id: UUID | None = None,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            video = self.load(Video, video_id, what="video")
            _ensure_owner(video, actor_id)
            self.check_version(video, expected_version)
            video.edit_caption(
                caption=caption, hashtags=hashtags, occurred_at=self.event_time(occurred_at)
            )
            return Outcome([video], video)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def delete_video(
        self,
        video_id: UUID,
        *,
        actor_id: UUID | None = None,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            video = self.load(Video, video_id, what="video")
            _ensure_owner(video, actor_id)
            self.check_version(video, expected_version)
            video.delete_by_creator(occurred_at=self.event_time(occurred_at))
            return Outcome([video], video)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    # Used by tests and by the command side's own checks (never by list queries).
    def get_creator(self, creator_id: UUID) -> Creator:
        return self.load(Creator, creator_id, what="creator")

    def get_video(self, video_id: UUID) -> Video:
        return self.load(Video, video_id, what="video")


def _ensure_owner(video: Video, actor_id: UUID | None) -> None:
    """When a creator acts on a video (actor given), it must be their own video."""
    if actor_id is not None and actor_id != video.creator_id:
        raise InvariantViolation("only the video's creator may do this", code="not_video_creator")
