"""Video: a published clip and its moderation status."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.creator import Creator
from domain.errors import InvalidValue, InvariantViolation
from domain.values import check_caption, check_event_time, check_storable, normalise_hashtags

MAX_DURATION_SECONDS = 600.0
# A view may replay the clip: watch time is bounded by duration x this factor.
REPLAY_FACTOR = 5.0


class VideoStatus(StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"
    REMOVED = "removed"
    DELETED = "deleted"


class Video(Aggregate):
    class Published(Aggregate.Created):
        creator_id: UUID
        caption: str
        hashtags: list[str]
        sound_id: str | None
        duration_seconds: float
        occurred_at: datetime

    class CaptionEdited(Aggregate.Event):
        caption: str
        hashtags: list[str]
        occurred_at: datetime

    class Restricted(Aggregate.Event):
        case_id: UUID
        occurred_at: datetime

    class Removed(Aggregate.Event):
        case_id: UUID
        occurred_at: datetime

    class Restored(Aggregate.Event):
        case_id: UUID
        occurred_at: datetime

    class DeletedByCreator(Aggregate.Event):
        occurred_at: datetime

    @event(Published)
    def __init__(
        self,
        creator_id: UUID,
        caption: str,
        hashtags: list[str],
        sound_id: str | None,
        duration_seconds: float,
        occurred_at: datetime,
    ) -> None:
        self.creator_id = creator_id
        self.caption = caption
        self.hashtags = list(hashtags)
        self.sound_id = sound_id
        self.duration_seconds = duration_seconds
        self.published_at = occurred_at
        self.status = VideoStatus.ACTIVE

    @classmethod
    def publish(
        cls,
        *,
        video_id: UUID,
        creator: Creator,
        caption: str,
        hashtags: list[str],
        sound_id: str | None,
        duration_seconds: float,
        occurred_at: datetime,
    ) -> "Video":
        creator.ensure_can_publish()
        if not 0 < duration_seconds <= MAX_DURATION_SECONDS:
            raise InvalidValue(
                f"duration must be in (0, {MAX_DURATION_SECONDS:g}] seconds",
                code="invalid_duration",
            )
        if sound_id is not None and not 0 < len(sound_id) <= 64:
            raise InvalidValue("sound_id must be 1-64 characters", code="invalid_sound_id")
        if sound_id is not None:
            check_storable("sound_id", sound_id)
        return cls._create(
            cls.Published,
            id=video_id,
            creator_id=creator.id,
            caption=check_caption(caption),
            hashtags=normalise_hashtags(hashtags),
            sound_id=sound_id,
            duration_seconds=float(duration_seconds),
            occurred_at=check_event_time(occurred_at),
        )

    # -- queries -------------------------------------------------------------------------
    @property
    def accepts_engagement(self) -> bool:
        return accepts_engagement(self.status)

    @property
    def max_watch_seconds(self) -> float:
        return self.duration_seconds * REPLAY_FACTOR

    def ensure_accepts_engagement(self) -> None:
        ensure_accepts_engagement(self.status)

    # -- commands ------------------------------------------------------------------------
    def edit_caption(self, *, caption: str, hashtags: list[str], occurred_at: datetime) -> None:
        if self.status in (VideoStatus.REMOVED, VideoStatus.DELETED):
            raise InvariantViolation(
                f"a {self.status} video cannot be edited", code="video_unavailable"
            )
        self._caption_edited(
            caption=check_caption(caption),
            hashtags=normalise_hashtags(hashtags),
            occurred_at=check_event_time(occurred_at),
        )

    def delete_by_creator(self, *, occurred_at: datetime) -> None:
        if self.status == VideoStatus.DELETED:
            raise InvariantViolation("video is already deleted", code="already_deleted")
        self._deleted(occurred_at=check_event_time(occurred_at))

    # Moderation outcomes (called by the moderation policy). They are no-ops when the
    # video is already in the target state, so a redelivered decision changes nothing.
    def restrict(self, *, case_id: UUID, occurred_at: datetime) -> bool:
        if self.status != VideoStatus.ACTIVE:
            return False
        self._restricted(case_id=case_id, occurred_at=check_event_time(occurred_at))
        return True

    def remove(self, *, case_id: UUID, occurred_at: datetime) -> bool:
        if self.status not in (VideoStatus.ACTIVE, VideoStatus.RESTRICTED):
            return False
        self._removed(case_id=case_id, occurred_at=check_event_time(occurred_at))
        return True

    def restore(self, *, case_id: UUID, occurred_at: datetime) -> bool:
        if self.status not in (VideoStatus.RESTRICTED, VideoStatus.REMOVED):
            return False
        self._restored(case_id=case_id, occurred_at=check_event_time(occurred_at))
        return True

    # -- state changes -------------------------------------------------------------------
    @event(CaptionEdited)
    def _caption_edited(self, caption: str, hashtags: list[str], occurred_at: datetime) -> None:
        self.caption = caption
        self.hashtags = list(hashtags)

    @event(Restricted)
    def _restricted(self, case_id: UUID, occurred_at: datetime) -> None:
        self.status = VideoStatus.RESTRICTED

    @event(Removed)
    def _removed(self, case_id: UUID, occurred_at: datetime) -> None:
        self.status = VideoStatus.REMOVED

    @event(Restored)
    def _restored(self, case_id: UUID, occurred_at: datetime) -> None:
        self.status = VideoStatus.ACTIVE

    @event(DeletedByCreator)
    def _deleted(self, occurred_at: datetime) -> None:
        self.status = VideoStatus.DELETED


# Shared with the lean write model's VideoFacts (domain/pairs.py).
_ACCEPTING = frozenset({VideoStatus.ACTIVE.value, VideoStatus.RESTRICTED.value})


def accepts_engagement(status: str) -> bool:
    return status in _ACCEPTING  # a VideoStatus is a str: it hashes as its value


def ensure_accepts_engagement(status: str) -> None:
    if not accepts_engagement(status):
        raise InvariantViolation(
            f"video is {status} and accepts no new engagement", code="video_unavailable"
        )
