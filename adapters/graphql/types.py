"""GraphQL object types, built from the query side's frozen DTOs."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from adapters.graphql.context import GraphQLContext, call, page_size, read
from adapters.graphql.sentiment import (
    Sentiment,
    SentimentWindow,
    VideoSentiment,
    sentiment_of,
)
from adapters.readmodel import sentiment_reader
from queries.stats import CreatorStats, VideoFilter, VideoOrder, VideoStats

if TYPE_CHECKING:
    from adapters.graphql.moderation_types import ModerationCase


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class VideoStatsType:
    views: int
    unique_viewers: int
    likes: int
    shares: int
    comments: int
    total_watch_seconds: float
    average_watch_seconds: float
    completion_rate: float
    engagement_rate: float

    @classmethod
    def of(cls, v: VideoStats) -> "VideoStatsType":
        return cls(
            views=v.views,
            unique_viewers=v.unique_viewers,
            likes=v.likes,
            shares=v.shares,
            comments=v.comments,
            total_watch_seconds=v.watch_seconds,
            average_watch_seconds=v.average_watch_seconds,
            completion_rate=v.completion_rate,
            engagement_rate=v.engagement_rate,
        )


@strawberry.type
class Video:
    id: UUID
    creator_id: strawberry.Private[UUID]
    caption: str
    hashtags: list[str]
    sound_id: str | None
    duration_seconds: float
    status: str
    published_at: datetime
    stats: VideoStatsType

    @classmethod
    def of(cls, v: VideoStats) -> "Video":
        return cls(
            id=v.video_id,
            creator_id=v.creator_id,
            caption=v.caption,
            hashtags=list(v.hashtags),
            sound_id=v.sound_id,
            duration_seconds=v.duration_seconds,
            status=v.status,
            published_at=v.published_at,
            stats=VideoStatsType.of(v),
        )

    @strawberry.field
    async def creator(self, info: Info[GraphQLContext, None]) -> "Creator | None":
        found = await info.context.loaders["creator"].load(self.creator_id)
        return Creator.of(found) if found else None

    @strawberry.field
    async def moderation_case(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated["ModerationCase", strawberry.lazy("adapters.graphql.moderation_types")] | None:
        from adapters.graphql.moderation_types import ModerationCase
        from domain.moderation import ModerationCase as CaseAggregate

        found = await info.context.loaders["case"].load(CaseAggregate.create_id(self.id))
        if found is not None:
            from adapters.graphql.access import check_creator_owns

            check_creator_owns(info, found.creator_id)
        return ModerationCase.of(found) if found else None

    @strawberry.field(description="Audience sentiment of its comments over an event-time window")
    async def sentiment(
        self, info: Info[GraphQLContext, None], window: SentimentWindow = SentimentWindow.DAY
    ) -> Sentiment:
        return await sentiment_of(info, "video", str(self.id), window)

    @strawberry.field(description="Whether its audience is turning negative (null: no comment)")
    async def sentiment_status(self, info: Info[GraphQLContext, None]) -> VideoSentiment | None:
        found = await read(info, sentiment_reader.video_state, self.id)
        return VideoSentiment.of(found) if found else None


@strawberry.type
class VideoEdge:
    cursor: str
    node: Video


@strawberry.type
class VideoConnection:
    edges: list[VideoEdge]
    page_info: PageInfo


@strawberry.enum
class VideoOrderBy(Enum):
    NEWEST = "newest"
    MOST_VIEWED = "most_viewed"
    MOST_LIKED = "most_liked"


@strawberry.input
class VideoFilterInput:
    creator_id: UUID | None = None
    status: str | None = None
    hashtag: str | None = None
    sound_id: str | None = None


async def video_connection(
    info: Info[GraphQLContext, None],
    flt: VideoFilter,
    order: VideoOrder,
    first: int,
    after: str | None,
) -> VideoConnection:
    from adapters.graphql.context import UserError

    try:
        page = await call(info.context.readers.stats.videos, flt, order, page_size(first), after)
    except ValueError as e:
        raise UserError(f"invalid `after` cursor: {e}") from None
    edges = []
    for item in page.items:
        # Prime the loader so `video(id)` lookups in the same request cost nothing.
        info.context.loaders["video"].prime(item.video_id, item)
        edges.append(VideoEdge(cursor=page.end_cursor or "", node=Video.of(item)))
    # Every edge gets its own cursor: re-derive from the reader's encoding.
    from queries.stats import encode_cursor

    col = {
        VideoOrder.NEWEST: "published_at",
        VideoOrder.MOST_VIEWED: "views",
        VideoOrder.MOST_LIKED: "likes",
    }[order]
    for edge, item in zip(edges, page.items, strict=True):
        value: Any = getattr(item, col)
        edge.cursor = encode_cursor(
            value.isoformat() if isinstance(value, datetime) else value, str(item.video_id)
        )
    return VideoConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


@strawberry.type
class Creator:
    id: UUID
    handle: str
    display_name: str
    region: str
    status: str
    registered_at: datetime
    followers: int
    video_count: int
    views: int
    likes: int
    shares: int
    comments: int
    strikes: int
    engagement_rate: float

    @classmethod
    def of(cls, c: CreatorStats) -> "Creator":
        return cls(
            id=c.creator_id,
            handle=c.handle,
            display_name=c.display_name,
            region=c.region,
            status=c.status,
            registered_at=c.registered_at,
            followers=c.followers,
            video_count=c.videos,
            views=c.views,
            likes=c.likes,
            shares=c.shares,
            comments=c.comments,
            strikes=c.strikes,
            engagement_rate=c.engagement_rate,
        )

    @strawberry.field
    async def videos(
        self, info: Info[GraphQLContext, None], first: int = 20, after: str | None = None
    ) -> VideoConnection:
        return await video_connection(
            info, VideoFilter(creator_id=self.id), VideoOrder.NEWEST, first, after
        )

    @strawberry.field(description="Audience sentiment of comments on their videos")
    async def sentiment(
        self, info: Info[GraphQLContext, None], window: SentimentWindow = SentimentWindow.DAY
    ) -> Sentiment:
        return await sentiment_of(info, "creator", str(self.id), window)


@strawberry.type
class Summary:
    creators: int
    suspended_creators: int
    videos: int
    removed_videos: int
    views: int
    likes: int
    shares: int
    comments: int
    watch_hours: float
    open_cases: int
    head_position: int
    projection_positions: JSON
