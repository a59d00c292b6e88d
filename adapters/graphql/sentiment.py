"""GraphQL for audience sentiment (SentimentProjection's read models): `Video.sentiment`,
`Video.sentimentStatus`, `Creator.sentiment`, and the root fields `sentiment` (any video,
creator, hashtag or sound), `platformSentiment`, `sentimentRanking` and
`turningNegativeVideos`. Windows are event-time: the newest comment's 15-minute bucket
and the ones before it (HOUR: 4 buckets, DAY: 96).

This module imports nothing from types.py at import time (types.py imports it for the
Video and Creator fields)."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from adapters.graphql.context import GraphQLContext, page_size, read
from adapters.readmodel import sentiment_reader
from adapters.readmodel.sentiment_reader import SentimentDTO, VideoSentimentDTO

if TYPE_CHECKING:
    from adapters.graphql.types import Video


@strawberry.enum
class SentimentWindow(Enum):
    HOUR = 60
    DAY = 1440


@strawberry.enum
class SentimentKind(Enum):
    VIDEO = "video"
    CREATOR = "creator"
    HASHTAG = "hashtag"
    SOUND = "sound"


@strawberry.enum
class SentimentOrder(Enum):
    MOST_NEGATIVE = "most_negative"
    MOST_POSITIVE = "most_positive"


@strawberry.type
class Sentiment:
    kind: str = strawberry.field(description="video | creator | hashtag | sound | platform")
    key: str
    window_minutes: int
    since: datetime | None = strawberry.field(description="Start of the window's first bucket")
    until: datetime | None = strawberry.field(description="The newest comment (event time)")
    comments: int
    scored: int = strawberry.field(
        description="Comments in a language the scorer reads (English); the rest are counted"
    )
    positive: int
    negative: int
    neutral: int
    mean: float | None = strawberry.field(
        description="Mean VADER compound of the scored comments, -1..1 (null: none scored)"
    )
    positive_share: float
    negative_share: float

    @classmethod
    def of(cls, s: SentimentDTO) -> "Sentiment":
        return cls(
            kind=s.kind, key=s.key, window_minutes=s.window_minutes, since=s.since,
            until=s.until, comments=s.comments, scored=s.scored, positive=s.positive,
            negative=s.negative, neutral=s.neutral, mean=s.mean,
            positive_share=s.positive_share, negative_share=s.negative_share,
        )  # fmt: skip


@strawberry.type
class VideoSentiment:
    video_id: UUID
    status: str = strawberry.field(description="turning_negative | steady")
    recent_comments: int = strawberry.field(description="Scored comments of the last 3 hours")
    recent_mean: float = strawberry.field(
        description="Their mean polarity (+1 positive, 0 neutral, -1 negative)"
    )
    baseline: float = strawberry.field(description="The video's earlier mean polarity")
    turns: int
    turned_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, v: VideoSentimentDTO) -> "VideoSentiment":
        return cls(
            video_id=v.video_id, status=v.status, recent_comments=v.recent_comments,
            recent_mean=v.recent_mean, baseline=v.baseline, turns=v.turns,
            turned_at=v.turned_at, updated_at=v.updated_at,
        )  # fmt: skip

    @strawberry.field
    async def video(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated["Video", strawberry.lazy("adapters.graphql.types")] | None:
        from adapters.graphql.types import Video

        found = await info.context.loaders["video"].load(self.video_id)
        return Video.of(found) if found else None


async def sentiment_of(
    info: Info[GraphQLContext, None], kind: str, key: str, window: SentimentWindow
) -> Sentiment:
    return Sentiment.of(await read(info, sentiment_reader.sentiment, kind, key, window.value))


@strawberry.type
class SentimentQuery:
    @strawberry.field(description="Audience sentiment of a video, creator, hashtag or sound")
    async def sentiment(
        self, info: Info[GraphQLContext, None], kind: SentimentKind, key: str,
        window: SentimentWindow = SentimentWindow.DAY,
    ) -> Sentiment:  # fmt: skip
        return await sentiment_of(info, kind.value, key, window)

    @strawberry.field(description="Audience sentiment of every comment on the platform")
    async def platform_sentiment(
        self, info: Info[GraphQLContext, None], window: SentimentWindow = SentimentWindow.DAY
    ) -> Sentiment:
        return Sentiment.of(await read(info, sentiment_reader.overall, window.value))

    @strawberry.field(
        description="Videos, creators, hashtags or sounds by mean sentiment (most negative first "
        "by default), with at least `minScored` scored comments in the window"
    )
    async def sentiment_ranking(
        self, info: Info[GraphQLContext, None], kind: SentimentKind,
        window: SentimentWindow = SentimentWindow.DAY,
        order: SentimentOrder = SentimentOrder.MOST_NEGATIVE, first: int = 10,
        min_scored: int = 3,
    ) -> list[Sentiment]:  # fmt: skip
        rows = await read(info, sentiment_reader.ranking, kind.value, window.value,
                           order.value, page_size(first), min_scored)  # fmt: skip
        return [Sentiment.of(r) for r in rows]

    @strawberry.field(
        description="Videos whose audience turned negative: turning now first, then by turn"
    )
    async def turning_negative_videos(
        self, info: Info[GraphQLContext, None], first: int = 10
    ) -> list[VideoSentiment]:
        rows = await read(info, sentiment_reader.turning_negative, page_size(first))
        return [VideoSentiment.of(r) for r in rows]
