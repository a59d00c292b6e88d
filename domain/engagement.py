"""Engagement: everything one viewer does to one video (one stream per viewer x video pair).

Why this boundary: a viral video receives thousands of engagement events per second from
many ingest workers. A stream per video would serialise all of them behind one version
counter; a stream per (viewer, video) pair keeps the only real invariants (like at most
once, unlike only what was liked, delete only own comments) local to one small stream, so
concurrent writers practically never touch the same stream. See docs/architecture.md.
"""

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue, InvariantViolation, NotFound
from domain.values import MAX_COMMENT_LENGTH, check_event_time, check_text, derived_id
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
        if not 0 <= watch_seconds <= video.max_watch_seconds:
            raise InvalidValue(
                f"watch time must be between 0 and {video.max_watch_seconds:g} seconds "
                f"(duration x replay factor)",
                code="invalid_watch_time",
            )
        self._viewed(
            **self._pair,
            watch_seconds=float(watch_seconds),
            completed=bool(completed),
            traffic_source=_one_of("traffic_source", traffic_source, TRAFFIC_SOURCES),
            device=_one_of("device", device, DEVICES),
            client_event_id=check_client_id(client_event_id),
            occurred_at=check_event_time(occurred_at),
        )
        return True

    def like(
        self, video: Video, *, occurred_at: datetime, client_event_id: str | None = None
    ) -> bool:
        if self.has_seen(client_event_id):
            return False
        self._check_video(video)
        if self.liked:
            raise InvariantViolation("viewer already likes this video", code="already_liked")
        self._liked(
            **self._pair,
            client_event_id=check_client_id(client_event_id),
            occurred_at=check_event_time(occurred_at),
        )
        return True

    def unlike(
        self, video: Video, *, occurred_at: datetime, client_event_id: str | None = None
    ) -> bool:
        if self.has_seen(client_event_id):
            return False
        self._check_video(video)
        if not self.liked:
            raise InvariantViolation("viewer does not like this video", code="not_liked")
        self._unliked(
            **self._pair,
            client_event_id=check_client_id(client_event_id),
            occurred_at=check_event_time(occurred_at),
        )
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
        self._shared(
            **self._pair,
            channel=_one_of("channel", channel, SHARE_CHANNELS),
            client_event_id=check_client_id(client_event_id),
            occurred_at=check_event_time(occurred_at),
        )
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
        if comment_id in self.comments or comment_id in self.deleted_comments:
            raise InvariantViolation("comment id already used", code="duplicate_comment")
        self._commented(
            **self._pair,
            comment_id=comment_id,
            text=check_text("text", text, max_length=MAX_COMMENT_LENGTH),
            client_event_id=check_client_id(client_event_id),
            occurred_at=check_event_time(occurred_at),
        )
        return True

    def delete_comment(self, *, comment_id: UUID, occurred_at: datetime) -> None:
        if comment_id not in self.comments:
            raise NotFound("no such comment by this viewer on this video", code="comment_not_found")
        self._comment_deleted(
            **self._pair, comment_id=comment_id, occurred_at=check_event_time(occurred_at)
        )

    def _check_video(self, video: Video) -> None:
        if video.id != self.video_id:  # a programming error, not user input
            raise ValueError("engagement stream belongs to another video")
        video.ensure_accepts_engagement()

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


def _one_of(name: str, value: str, allowed: frozenset[str]) -> str:
    if value not in allowed:
        raise InvalidValue(
            f"{name} must be one of {', '.join(sorted(allowed))}", code=f"invalid_{name}"
        )
    return value


def check_client_id(client_event_id: str | None) -> str | None:
    if client_event_id is not None and not 0 < len(client_event_id) <= 64:
        raise InvalidValue(
            "client_event_id must be 1-64 characters", code="invalid_client_event_id"
        )
    return client_event_id
