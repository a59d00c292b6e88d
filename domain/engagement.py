"""Engagement: everything one viewer does to one video (one stream per viewer x video pair).

Why this boundary: a viral video receives thousands of engagement events per second from
many ingest workers. A stream per video would serialise all of them behind one version
counter; a stream per (viewer, video) pair keeps the only real invariants (like at most
once, unlike only what was liked, delete only own comments) local to one small stream, so
concurrent writers practically never touch the same stream. See docs/architecture.md.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue, InvariantViolation, NotFound
from domain.values import (
    MAX_COMMENT_LENGTH,
    check_event_time,
    check_storable,
    check_text,
    derived_id,
)
from domain.video import Video

# Client event ids remembered per stream to drop redelivered signals (streams are small).
MAX_REMEMBERED_CLIENT_IDS = 256
SHARE_CHANNELS = frozenset(
    {"copy_link", "whatsapp", "instagram", "messenger", "sms", "email", "x", "other"}
)
TRAFFIC_SOURCES = frozenset({"for_you", "following", "search", "profile", "share", "other"})
DEVICES = frozenset({"ios", "android", "web", "tv", "other"})


class Engagement(Aggregate):
    class Started(Aggregate.Created):
        viewer_id: UUID
        video_id: UUID
        creator_id: UUID
        occurred_at: datetime

    class Viewed(Aggregate.Event):
        video_id: UUID
        viewer_id: UUID
        watch_seconds: float
        completed: bool
        traffic_source: str
        device: str
        client_event_id: str | None
        occurred_at: datetime

    class Liked(Aggregate.Event):
        video_id: UUID
        viewer_id: UUID
        client_event_id: str | None
        occurred_at: datetime

    class Unliked(Aggregate.Event):
        video_id: UUID
        viewer_id: UUID
        client_event_id: str | None
        occurred_at: datetime

    class Shared(Aggregate.Event):
        video_id: UUID
        viewer_id: UUID
        channel: str
        client_event_id: str | None
        occurred_at: datetime

    class Commented(Aggregate.Event):
        video_id: UUID
        viewer_id: UUID
        comment_id: UUID
        text: str
        client_event_id: str | None
        occurred_at: datetime

    class CommentDeleted(Aggregate.Event):
        video_id: UUID
        viewer_id: UUID
        comment_id: UUID
        occurred_at: datetime

    @staticmethod
    def create_id(viewer_id: UUID, video_id: UUID) -> UUID:
        return derived_id("engagement", viewer_id, video_id)

    @event(Started)
    def __init__(
        self, viewer_id: UUID, video_id: UUID, creator_id: UUID, occurred_at: datetime
    ) -> None:
        self.viewer_id = viewer_id
        self.video_id = video_id
        self.creator_id = creator_id
        self.liked = False
        self.views = 0
        self.comments: list[UUID] = []  # live (not deleted) comment ids
        self.deleted_comments: list[UUID] = []  # ids stay used after deletion
        self.client_event_ids: list[str] = []

    @classmethod
    def start(cls, *, viewer_id: UUID, video: Video, occurred_at: datetime) -> "Engagement":
        video.ensure_accepts_engagement()
        return cls(
            viewer_id=viewer_id,
            video_id=video.id,
            creator_id=video.creator_id,
            occurred_at=check_event_time(occurred_at),
        )

    # -- queries -------------------------------------------------------------------------
    @property
    def _pair(self) -> dict[str, UUID]:
        # Every engagement event names its video and viewer, so consumers (projections,
        # the Kafka relay keyed by video) need no lookup of the pair stream.
        return {"video_id": self.video_id, "viewer_id": self.viewer_id}

    def has_seen(self, client_event_id: str | None) -> bool:
        """True when this client event was already recorded (a redelivery)."""
        return client_event_id is not None and client_event_id in self.client_event_ids

    # -- commands ------------------------------------------------------------------------
    def view(
        self,
        video: Video,
        *,
        watch_seconds: float,
        completed: bool,
        traffic_source: str,
        device: str,
        occurred_at: datetime,
        client_event_id: str | None = None,
    ) -> bool:
        """Record a view. Returns False for a redelivered client event (nothing recorded)."""
        if self.has_seen(client_event_id):
            return False
        self._check_video(video)
        self._viewed(
            **self._pair,
            **view_fields(
                video, watch_seconds, completed, traffic_source, device, client_event_id,
                occurred_at,
            ),
        )  # fmt: skip
        return True

    def like(
        self, video: Video, *, occurred_at: datetime, client_event_id: str | None = None
    ) -> bool:
        if self.has_seen(client_event_id):
            return False
        self._check_video(video)
        self._liked(**self._pair, **like_fields(self.liked, client_event_id, occurred_at))
        return True

    def unlike(
        self, video: Video, *, occurred_at: datetime, client_event_id: str | None = None
    ) -> bool:
        if self.has_seen(client_event_id):
            return False
        self._check_video(video)
        self._unliked(**self._pair, **unlike_fields(self.liked, client_event_id, occurred_at))
        return True

    def share(
        self,
        video: Video,
        *,
        channel: str,
        occurred_at: datetime,
        client_event_id: str | None = None,
    ) -> bool:
        if self.has_seen(client_event_id):
            return False
        self._check_video(video)
        self._shared(**self._pair, **share_fields(channel, client_event_id, occurred_at))
        return True

    def comment(
        self,
        video: Video,
        *,
        comment_id: UUID,
        text: str,
        occurred_at: datetime,
        client_event_id: str | None = None,
    ) -> bool:
        if self.has_seen(client_event_id):
            return False
        self._check_video(video)
        fields = comment_fields(
            self.comments, self.deleted_comments, comment_id, text, client_event_id, occurred_at
        )
        self._commented(**self._pair, **fields)
        return True

    def delete_comment(self, *, comment_id: UUID, occurred_at: datetime) -> None:
        self._comment_deleted(
            **self._pair, **delete_comment_fields(self.comments, comment_id, occurred_at)
        )

    def _check_video(self, video: Video) -> None:
        check_video(self.video_id, video)

    # -- state changes -------------------------------------------------------------------
    def _remember(self, client_event_id: str | None) -> None:
        if client_event_id is not None:
            self.client_event_ids.append(client_event_id)
            del self.client_event_ids[:-MAX_REMEMBERED_CLIENT_IDS]

    @event(Viewed)
    def _viewed(
        self,
        video_id: UUID,
        viewer_id: UUID,
        watch_seconds: float,
        completed: bool,
        traffic_source: str,
        device: str,
        client_event_id: str | None,
        occurred_at: datetime,
    ) -> None:
        self.views += 1
        self._remember(client_event_id)

    @event(Liked)
    def _liked(
        self, video_id: UUID, viewer_id: UUID, client_event_id: str | None, occurred_at: datetime
    ) -> None:
        self.liked = True
        self._remember(client_event_id)

    @event(Unliked)
    def _unliked(
        self, video_id: UUID, viewer_id: UUID, client_event_id: str | None, occurred_at: datetime
    ) -> None:
        self.liked = False
        self._remember(client_event_id)

    @event(Shared)
    def _shared(
        self,
        video_id: UUID,
        viewer_id: UUID,
        channel: str,
        client_event_id: str | None,
        occurred_at: datetime,
    ) -> None:
        self._remember(client_event_id)

    @event(Commented)
    def _commented(
        self,
        video_id: UUID,
        viewer_id: UUID,
        comment_id: UUID,
        text: str,
        client_event_id: str | None,
        occurred_at: datetime,
    ) -> None:
        self.comments.append(comment_id)
        self._remember(client_event_id)

    @event(CommentDeleted)
    def _comment_deleted(
        self, video_id: UUID, viewer_id: UUID, comment_id: UUID, occurred_at: datetime
    ) -> None:
        self.comments.remove(comment_id)
        self.deleted_comments.append(comment_id)


# -- the rules, shared with the lean write model (domain/pairs.py) ---------------------------
# Each returns the new event's fields (the pair's video and viewer ids aside) or raises
# a DomainError, checking in the same order for both, so both report the same error.
class VideoLike(Protocol):
    """What the rules read of a video: the Video aggregate or the lean VideoFacts."""

    id: UUID
    creator_id: UUID

    @property
    def max_watch_seconds(self) -> float: ...

    def ensure_accepts_engagement(self) -> None: ...


def check_video(stream_video_id: UUID, video: VideoLike) -> None:
    # (identity first: UUID equality is Python code, and it is nearly always the same id)
    if video.id is not stream_video_id and video.id != stream_video_id:  # a bug, not input
        raise ValueError("engagement stream belongs to another video")
    video.ensure_accepts_engagement()


def view_fields(
    video: VideoLike,
    watch_seconds: float,
    completed: bool,
    traffic_source: str,
    device: str,
    client_event_id: str | None,
    occurred_at: datetime,
) -> dict[str, Any]:
    if not 0 <= watch_seconds <= video.max_watch_seconds:
        raise InvalidValue(
            f"watch time must be between 0 and {video.max_watch_seconds:g} seconds "
            f"(duration x replay factor)",
            code="invalid_watch_time",
        )
    return {
        "watch_seconds": float(watch_seconds),
        "completed": bool(completed),
        "traffic_source": _one_of("traffic_source", traffic_source, TRAFFIC_SOURCES),
        "device": _one_of("device", device, DEVICES),
        "client_event_id": check_client_id(client_event_id),
        "occurred_at": check_event_time(occurred_at),
    }


def like_fields(liked: bool, client_event_id: str | None, occurred_at: datetime) -> dict[str, Any]:
    if liked:
        raise InvariantViolation("viewer already likes this video", code="already_liked")
    return {
        "client_event_id": check_client_id(client_event_id),
        "occurred_at": check_event_time(occurred_at),
    }


def unlike_fields(
    liked: bool, client_event_id: str | None, occurred_at: datetime
) -> dict[str, Any]:
    if not liked:
        raise InvariantViolation("viewer does not like this video", code="not_liked")
    return {
        "client_event_id": check_client_id(client_event_id),
        "occurred_at": check_event_time(occurred_at),
    }


def share_fields(
    channel: str, client_event_id: str | None, occurred_at: datetime
) -> dict[str, Any]:
    return {
        "channel": _one_of("channel", channel, SHARE_CHANNELS),
        "client_event_id": check_client_id(client_event_id),
        "occurred_at": check_event_time(occurred_at),
    }


def comment_fields(
    comments: Sequence[UUID],
    deleted_comments: Sequence[UUID],
    comment_id: UUID,
    text: str,
    client_event_id: str | None,
    occurred_at: datetime,
) -> dict[str, Any]:
    if comment_id in comments or comment_id in deleted_comments:
        raise InvariantViolation("comment id already used", code="duplicate_comment")
    return {
        "comment_id": comment_id,
        "text": check_text("text", text, max_length=MAX_COMMENT_LENGTH, multiline=True),
        "client_event_id": check_client_id(client_event_id),
        "occurred_at": check_event_time(occurred_at),
    }


def delete_comment_fields(
    comments: Sequence[UUID], comment_id: UUID, occurred_at: datetime
) -> dict[str, Any]:
    if comment_id not in comments:
        raise NotFound("no such comment by this viewer on this video", code="comment_not_found")
    return {"comment_id": comment_id, "occurred_at": check_event_time(occurred_at)}


def _one_of(name: str, value: str, allowed: frozenset[str]) -> str:
    if value not in allowed:
        raise InvalidValue(
            f"{name} must be one of {', '.join(sorted(allowed))}", code=f"invalid_{name}"
        )
    return value


def check_client_id(client_event_id: str | None) -> str | None:
    if client_event_id is not None:
        if not 0 < len(client_event_id) <= 64:
            raise InvalidValue(
                "client_event_id must be 1-64 characters", code="invalid_client_event_id"
            )
        check_storable("client_event_id", client_event_id)
    return client_event_id
