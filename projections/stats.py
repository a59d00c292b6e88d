"""StatsProjection: counters per video, creator, hashtag and sound."""

from abc import ABC, abstractmethod
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

    def process(self, event: Any, position: int, view: StatsView) -> None:
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
