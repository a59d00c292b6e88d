"""StatsProjection: counters per video, creator, hashtag and sound."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.creator import Creator
from domain.engagement import Engagement
from domain.following import Following
from domain.video import Video
from projections.base import Projection


class StatsView(ABC):
    """Transaction-scoped writer for the stats read models."""

    @abstractmethod
    def creator_registered(
        self, creator_id: UUID, handle: str, display_name: str, region: str, at: datetime
    ) -> None: ...

    @abstractmethod
    def creator_profile(self, creator_id: UUID, display_name: str, region: str) -> None: ...

    @abstractmethod
    def creator_strikes(self, creator_id: UUID, delta: int) -> None: ...

    @abstractmethod
    def creator_status(self, creator_id: UUID, status: str) -> None: ...

    @abstractmethod
    def video_published(
        self,
        video_id: UUID,
        creator_id: UUID,
        caption: str,
        hashtags: list[str],
        sound_id: str | None,
        duration_seconds: float,
        at: datetime,
    ) -> None: ...

    @abstractmethod
    def video_caption(self, video_id: UUID, caption: str, hashtags: list[str]) -> None: ...

    @abstractmethod
    def video_status(self, video_id: UUID, status: str) -> None: ...

    @abstractmethod
    def engagement(
        self,
        video_id: UUID,
        viewer_id: UUID,
        at: datetime,
        *,
        views: int = 0,
        watch_seconds: float = 0.0,
        completions: int = 0,
        likes: int = 0,
        shares: int = 0,
        comments: int = 0,
    ) -> None:
        """Add to a video's counters (and, through it, its creator's, hashtags', sound's).
        The first view of a viewer on a video also counts a unique viewer."""

    def viewed(
        self, video_id: UUID, viewer_id: UUID, at: datetime, watch_seconds: float, completed: bool
    ) -> None:
        """One view: `engagement` with views=1, its watch time and completion (a view may
        do the same in fewer steps)."""
        self.engagement(video_id, viewer_id, at, views=1, watch_seconds=watch_seconds,
                        completions=int(completed))  # fmt: skip

    @abstractmethod
    def follow_pair(self, pair_id: UUID, viewer_id: UUID, creator_id: UUID) -> None: ...

    @abstractmethod
    def follow(self, pair_id: UUID, delta: int) -> None: ...


VIDEO_STATUS = {
    Video.Restricted: "restricted",
    Video.Removed: "removed",
    Video.Restored: "active",
    Video.DeletedByCreator: "deleted",
}


class StatsProjection(Projection[StatsView]):
    name = "stats"
    partition_by = "video"
    topics = tuple(
        get_topic(cls)
        for cls in (
            Creator.Registered, Creator.ProfileUpdated, Creator.StrikeIssued,
            Creator.StrikeWithdrawn, Creator.Suspended, Creator.Reinstated,
            Video.Published, Video.CaptionEdited, *VIDEO_STATUS,
            Engagement.Viewed, Engagement.Liked, Engagement.Unliked, Engagement.Shared,
            Engagement.Commented, Engagement.CommentDeleted,
            Following.Started, Following.Followed, Following.Unfollowed,
        )
    )  # fmt: skip

    def __init__(self) -> None:
        # One dict lookup per event for the usual types, and the view's one-call `viewed`
        # for views (most events); `process_reference` is the plain version beside it
        # (tests/unit/test_stats_projection.py feeds both the same events).
        self._handlers: dict[type, Callable[[Any, StatsView], None]] = {
            Engagement.Viewed: _viewed,
            Engagement.Liked: _engaged(likes=1),
            Engagement.Unliked: _engaged(likes=-1),
            Engagement.Shared: _engaged(shares=1),
            Engagement.Commented: _engaged(comments=1),
            Engagement.CommentDeleted: _engaged(comments=-1),
            Following.Started: _follow_started,
            Following.Followed: _follow(+1),
            Following.Unfollowed: _follow(-1),
        }

    def process(self, event: Any, position: int, view: StatsView) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event, view)
        else:
            self.process_reference(event, position, view)

    def process_reference(self, event: Any, position: int, view: StatsView) -> None:
        match event:
            case Engagement.Viewed():
                view.engagement(
                    event.video_id,
                    event.viewer_id,
                    event.occurred_at,
                    views=1,
                    watch_seconds=event.watch_seconds,
                    completions=int(event.completed),
                )
            case Engagement.Liked():
                view.engagement(event.video_id, event.viewer_id, event.occurred_at, likes=1)
            case Engagement.Unliked():
                view.engagement(event.video_id, event.viewer_id, event.occurred_at, likes=-1)
            case Engagement.Shared():
                view.engagement(event.video_id, event.viewer_id, event.occurred_at, shares=1)
            case Engagement.Commented():
                view.engagement(event.video_id, event.viewer_id, event.occurred_at, comments=1)
            case Engagement.CommentDeleted():
                view.engagement(event.video_id, event.viewer_id, event.occurred_at, comments=-1)
            case Following.Started():
                view.follow_pair(event.originator_id, event.viewer_id, event.creator_id)
            case Following.Followed():
                view.follow(event.originator_id, +1)
            case Following.Unfollowed():
                view.follow(event.originator_id, -1)
            case Video.Published():
                view.video_published(
                    event.originator_id,
                    event.creator_id,
                    event.caption,
                    list(event.hashtags),
                    event.sound_id,
                    event.duration_seconds,
                    event.occurred_at,
                )
            case Video.CaptionEdited():
                view.video_caption(event.originator_id, event.caption, list(event.hashtags))
            case Video.Restricted() | Video.Removed() | Video.Restored() | Video.DeletedByCreator():
                view.video_status(event.originator_id, VIDEO_STATUS[type(event)])
            case Creator.Registered():
                view.creator_registered(
                    event.originator_id,
                    event.handle,
                    event.display_name,
                    event.region,
                    event.occurred_at,
                )
            case Creator.ProfileUpdated():
                view.creator_profile(event.originator_id, event.display_name, event.region)
            case Creator.StrikeIssued():
                view.creator_strikes(event.originator_id, +1)
            case Creator.StrikeWithdrawn():
                view.creator_strikes(event.originator_id, -1)
            case Creator.Suspended():
                view.creator_status(event.originator_id, "suspended")
            case Creator.Reinstated():
                view.creator_status(event.originator_id, "active")


def _viewed(event: Any, view: StatsView) -> None:
    view.viewed(
        event.video_id, event.viewer_id, event.occurred_at, event.watch_seconds, event.completed
    )


def _engaged(**counts: int) -> Callable[[Any, StatsView], None]:
    def engaged(event: Any, view: StatsView) -> None:
        view.engagement(event.video_id, event.viewer_id, event.occurred_at, **counts)

    return engaged


def _follow_started(event: Any, view: StatsView) -> None:
    view.follow_pair(event.originator_id, event.viewer_id, event.creator_id)


def _follow(delta: int) -> Callable[[Any, StatsView], None]:
    def follow(event: Any, view: StatsView) -> None:
        view.follow(event.originator_id, delta)

    return follow
