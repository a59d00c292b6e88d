"""VideoEngagementProjection: per-video engagement counters that need only per-video state.

It is the projection that runs from Kafka as a consumer group
(adapters/kafka/projection_consumer.py). There, every event of one video arrives on one
partition in log order, but nothing is ordered across partitions or topics, and each
worker sees only its own partitions. So the projection keeps no state that spans videos
and never needs a video's `Published` event: every counter is a commutative sum per
video, and unique viewers come from the set of (video, viewer) pairs. Since every row is
keyed by one video, two workers never write the same row.
"""

from abc import ABC, abstractmethod
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.engagement import Engagement
from projections.base import Projection


def watch_ms(watch_seconds: float) -> int:
    """Watch time in whole milliseconds: integer sums are exact and order-independent,
    so the counters do not depend on how events were split into batches and workers."""
    return round(watch_seconds * 1000)


class VideoEngagementView(ABC):
    """Transaction-scoped writer for the per-video engagement counters."""

    @abstractmethod
    def add(
        self,
        video_id: UUID,
        viewer_id: UUID,
        *,
        views: int = 0,
        watch_ms: int = 0,
        completions: int = 0,
        likes: int = 0,
        shares: int = 0,
        comments: int = 0,
    ) -> None:
        """Add to the video's counters. A view also records the (video, viewer) pair; the
        first view of a pair counts a unique viewer."""


class VideoEngagementProjection(Projection[VideoEngagementView]):
    name = "video_engagement_kafka"
    partition_by = "video"  # runs on `<prefix>.engagement.v1` with its own tables
    topics = tuple(
        get_topic(cls)
        for cls in (
            Engagement.Viewed, Engagement.Liked, Engagement.Unliked, Engagement.Shared,
            Engagement.Commented, Engagement.CommentDeleted,
        )
    )  # fmt: skip

    def process(self, event: Any, position: int, view: VideoEngagementView) -> None:
        match event:
            case Engagement.Viewed():
                view.add(
                    event.video_id,
                    event.viewer_id,
                    views=1,
                    watch_ms=watch_ms(event.watch_seconds),
                    completions=int(event.completed),
                )
            case Engagement.Liked():
                view.add(event.video_id, event.viewer_id, likes=1)
            case Engagement.Unliked():
                view.add(event.video_id, event.viewer_id, likes=-1)
            case Engagement.Shared():
                view.add(event.video_id, event.viewer_id, shares=1)
            case Engagement.Commented():
                view.add(event.video_id, event.viewer_id, comments=1)
            case Engagement.CommentDeleted():
                view.add(event.video_id, event.viewer_id, comments=-1)
