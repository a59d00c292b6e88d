"""Content context: creators and their videos."""

from datetime import datetime
from uuid import UUID, uuid4

from commands.base import CommandResult, Idempotency, Outcome, ReelPulseApplication
from domain.creator import Creator
from domain.engagement import Engagement
from domain.errors import InvariantViolation
from domain.following import Following
from domain.moderation import ModerationCase
from domain.video import Video

SNAPSHOT_INTERVALS = {Creator: 50, Video: 50, Engagement: 100, Following: 100, ModerationCase: 100}


class ContentApplication(ReelPulseApplication):
    snapshotting_intervals = SNAPSHOT_INTERVALS

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
        new_id = creator_id or uuid4()

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
            return Outcome([creator], creator)

        return self.execute(decide, idempotency=idempotency)

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
