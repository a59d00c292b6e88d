"""The strawberry schema: queries and subscriptions over the read models."""

import logging
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info
from strawberry.utils.logging import StrawberryLogger

from adapters.graphql.access import AccessExtension, check_creator_owns
from adapters.graphql.comment_moderation import CommentModerationQuery
from adapters.graphql.context import GraphQLContext, UserError, call, page_size
from adapters.graphql.cost import DEFAULT_MAX_COST, CostLimitExtension
from adapters.graphql.extensions import ConsistencyExtension, masking
from adapters.graphql.intelligence import IntelligenceQuery, IntelligenceSubscription
from adapters.graphql.moderation_types import (
    ModerationCase,
    ModerationCaseConnection,
    ModerationCaseEdge,
)
from adapters.graphql.sentiment import SentimentQuery
from adapters.graphql.types import (
    Creator,
    PageInfo,
    Summary,
    Video,
    VideoConnection,
    VideoFilterInput,
    VideoOrderBy,
    VideoStatsType,
    video_connection,
)
from queries.stats import VideoFilter, VideoOrder

client_log = logging.getLogger("adapters.graphql.client_errors")

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
MAX_BATCH = 10  # operations per batched HTTP request; each is rate limited


@strawberry.enum
class TrendingKind(Enum):
    VIDEO = "video"
    HASHTAG = "hashtag"
    SOUND = "sound"


@strawberry.enum
class TrendingWindow(Enum):
    HOUR = 60
    DAY = 1440


@strawberry.type
class TrendingItem:
    rank: int
    kind: TrendingKind
    key: str
    score: float
    views: int
    likes: int
    shares: int
    comments: int
    velocity: float = strawberry.field(description="Views per hour in the window")
    acceleration: float = strawberry.field(
        description="Change of velocity vs the previous window, per hour"
    )

    @strawberry.field(description="Views per minute over the last `minutes` (sparklines)")
    async def series(self, info: Info[GraphQLContext, None], minutes: int = 60) -> list[int]:
        if not 1 <= minutes <= 1440:
            raise UserError("`minutes` must be between 1 and 1440")
        points = await call(
            info.context.readers.trending.series, self.kind.value, self.key, minutes
        )
        return [views for _, views in points]

    @strawberry.field(description="A video with its stats and creator (null if unknown)")
    async def video(self, info: Info[GraphQLContext, None]) -> Video | None:
        if self.kind is not TrendingKind.VIDEO:
            return None
        found = await info.context.loaders["video"].load(UUID(self.key))
        return Video.of(found) if found else None


@strawberry.type
class ViralityPrediction:
    video_id: UUID
    predicted_at: datetime = strawberry.field(description="Event time: one hour after publication")
    probability: float = strawberry.field(description="P(views within 24 h >= the viral threshold)")
    features: JSON
    labelled_at: datetime | None
    viral: bool | None = strawberry.field(description="Known once 24 h of event time passed")
    views_24h: int | None


@strawberry.type
class EngagementFeatures:
    id: UUID
    computed_at: datetime = strawberry.field(description="Event time of the last update")
    views: int
    velocity: float = strawberry.field(
        description="Views per hour, EWMA with a 10-minute time constant"
    )
    baseline_velocity: float = strawberry.field(
        description="Views per hour, 60-minute time constant"
    )
    acceleration: float = strawberry.field(description="velocity - baseline_velocity")
    completion_rate: float
    like_rate: float = strawberry.field(description="Net likes per view")
    share_rate: float
    follower_share: float = strawberry.field(
        description="Share of views from the creator's followers"
    )

    @classmethod
    def of(cls, f: Any) -> "EngagementFeatures":
        v = f.values
        return cls(
            id=f.id,
            computed_at=f.computed_at,
            views=int(v["views"]),
            velocity=v["velocity"],
            baseline_velocity=v["baseline_velocity"],
            acceleration=v["acceleration"],
            completion_rate=v["completion_rate"],
            like_rate=v["like_rate"],
            share_rate=v["share_rate"],
            follower_share=v["follower_share"],
        )


@strawberry.type
class ModelMetric:
    model: str
    metric: str
    value: float
    samples: int


@strawberry.type
class SeriesPoint:
    minute: datetime
    views: int


async def _summary(info: Info[GraphQLContext, None]) -> Summary:
    container = info.context.container
    s = await call(info.context.readers.stats.summary)
    positions = await call(container.projections.positions)
    return Summary(
        creators=s.creators,
        suspended_creators=s.suspended_creators,
        videos=s.videos,
        removed_videos=s.removed_videos,
        views=s.views,
        likes=s.likes,
        shares=s.shares,
        comments=s.comments,
        watch_hours=s.watch_seconds / 3600,
        open_cases=s.open_cases,
        head_position=await call(lambda: container.head_position),
        projection_positions=positions,
    )


@strawberry.type
class ViewerSession:
    session_no: int
    started_at: datetime
    ended_at: datetime
    views: int
    videos_watched: int
    watch_seconds: float


def _trending_item(item: Any) -> TrendingItem:
    return TrendingItem(
        rank=item.rank,
        kind=TrendingKind(item.kind),
        key=item.key,
        score=item.score,
        views=item.views,
        likes=item.likes,
        shares=item.shares,
        comments=item.comments,
        velocity=item.velocity,
        acceleration=item.acceleration,
    )


async def _queue(
    info: Info[GraphQLContext, None], status: str | None, first: int, after: str | None
) -> ModerationCaseConnection:
    try:
        items, end, has_next = await call(
            info.context.readers.moderation.queue, status, page_size(first), after
        )
    except ValueError as e:
        raise UserError(f"invalid `after` cursor: {e}") from None
    edges = [ModerationCaseEdge(cursor=end or "", node=ModerationCase.of(c)) for c in items]
    return ModerationCaseConnection(
        edges=edges, page_info=PageInfo(has_next_page=has_next, end_cursor=end)
    )


@strawberry.type
class Query(IntelligenceQuery, SentimentQuery, CommentModerationQuery):
    @strawberry.field(
        description="A video with its stats, creator and moderation case (null if unknown)"
    )
    async def video(self, info: Info[GraphQLContext, None], id: UUID) -> Video | None:
        found = await info.context.loaders["video"].load(id)
        return Video.of(found) if found else None

    @strawberry.field(description="Videos as a Relay connection (at most 100 per page)")
    async def videos(
        self,
        info: Info[GraphQLContext, None],
        filter: VideoFilterInput | None = None,
        order_by: VideoOrderBy = VideoOrderBy.NEWEST,
        first: int = 20,
        after: str | None = None,
    ) -> VideoConnection:
        f = filter or VideoFilterInput()
        flt = VideoFilter(
            creator_id=f.creator_id, status=f.status, hashtag=f.hashtag, sound_id=f.sound_id
        )
        return await video_connection(info, flt, VideoOrder(order_by.value), first, after)

    @strawberry.field(description="A creator with their totals and videos (null if unknown)")
    async def creator(self, info: Info[GraphQLContext, None], id: UUID) -> Creator | None:
        found = await info.context.loaders["creator"].load(id)
        return Creator.of(found) if found else None

    @strawberry.field(
        description="Top items in an event-time sliding window ending at the newest event"
    )
    async def trending(
        self,
        info: Info[GraphQLContext, None],
        kind: TrendingKind = TrendingKind.VIDEO,
        window: TrendingWindow = TrendingWindow.HOUR,
        first: int = 20,
    ) -> list[TrendingItem]:
        items = await call(
            info.context.readers.trending.trending, kind.value, window.value, page_size(first)
        )
        return [_trending_item(i) for i in items]

    @strawberry.field(description="Cases by priority (open cases by default)")
    async def moderation_queue(
        self,
        info: Info[GraphQLContext, None],
        status: str | None = "open",
        first: int = 20,
        after: str | None = None,
    ) -> ModerationCaseConnection:
        return await _queue(info, status, first, after)

    @strawberry.field(
        description="A moderation case: status, priority, reports, flag score, reach, "
        "outcome (null if unknown)"
    )
    async def moderation_case(
        self, info: Info[GraphQLContext, None], id: UUID
    ) -> ModerationCase | None:
        found = await info.context.loaders["case"].load(id)
        if found is not None:
            check_creator_owns(info, found.creator_id)
        return ModerationCase.of(found) if found else None

    @strawberry.field(description="A viewer's sessions (30-minute inactivity gap), newest first")
    async def viewer_sessions(
        self, info: Info[GraphQLContext, None], viewer_id: UUID, first: int = 20
    ) -> list[ViewerSession]:
        sessions = await call(
            info.context.readers.sessions.viewer_sessions, viewer_id, page_size(first)
        )
        return [
            ViewerSession(
                session_no=s.session_no,
                started_at=s.started_at,
                ended_at=s.ended_at,
                views=s.views,
                videos_watched=s.videos_watched,
                watch_seconds=s.watch_seconds,
            )
            for s in sessions
        ]

    @strawberry.field(
        description="Platform totals (creators, videos, engagement, watch hours, "
        "open cases) and the store head"
    )
    async def summary(self, info: Info[GraphQLContext, None]) -> Summary:
        return await _summary(info)

    @strawberry.field(description="Online engagement features of a video")
    async def features(
        self, info: Info[GraphQLContext, None], video_id: UUID
    ) -> EngagementFeatures | None:
        f = await call(info.context.readers.models.video_features, video_id)
        return EngagementFeatures.of(f) if f else None

    @strawberry.field(description="Online engagement features of a creator (all their videos)")
    async def creator_features(
        self, info: Info[GraphQLContext, None], creator_id: UUID
    ) -> EngagementFeatures | None:
        f = await call(info.context.readers.models.creator_features, creator_id)
        return EngagementFeatures.of(f) if f else None

    @strawberry.field(description="The virality predictor's output for a video")
    async def virality(
        self, info: Info[GraphQLContext, None], video_id: UUID
    ) -> ViralityPrediction | None:
        p = await call(info.context.readers.models.virality, video_id)
        if p is None:
            return None
        return ViralityPrediction(
            video_id=p.video_id,
            predicted_at=p.predicted_at,
            probability=p.probability,
            features=p.features,
            labelled_at=p.labelled_at,
            viral=p.viral,
            views_24h=p.views_24h,
        )

    @strawberry.field(description="Progressive-validation metrics of the online models")
    async def model_metrics(self, info: Info[GraphQLContext, None]) -> list[ModelMetric]:
        rows = await call(info.context.readers.models.metrics)
        return [
            ModelMetric(model=m.model, metric=m.metric, value=m.value, samples=m.samples)
            for m in rows
        ]

    @strawberry.field(description="Views per minute of one trending key (e.g. a video id)")
    async def trending_series(
        self,
        info: Info[GraphQLContext, None],
        kind: TrendingKind,
        key: str,
        minutes: int = 120,
    ) -> list[SeriesPoint]:
        if not 1 <= minutes <= 2880:
            raise UserError("`minutes` must be between 1 and 2880")
        points = await call(info.context.readers.trending.series, kind.value, key, minutes)
        return [SeriesPoint(minute=datetime.fromtimestamp(m * 60, UTC), views=v) for m, v in points]


@strawberry.type
class Subscription(IntelligenceSubscription):
    @strawberry.subscription(description="The platform summary, after every stats commit")
    async def summary(self, info: Info[GraphQLContext, None]) -> AsyncGenerator[Summary, None]:
        changes = info.context.container.projections.hub.subscribe()
        yield await _summary(info)
        async for changed in changes:
            if "summary" in changed:
                yield await _summary(info)

    @strawberry.subscription(description="A video's stats, now and after every change")
    async def video_stats(
        self, info: Info[GraphQLContext, None], id: UUID
    ) -> AsyncGenerator[VideoStatsType, None]:
        stats = info.context.readers.stats
        key = f"video:{id}"
        changes = info.context.container.projections.hub.subscribe()
        current = await call(stats.video, id)
        if current is not None:
            yield VideoStatsType.of(current)
        async for changed in changes:
            if key in changed:
                current = await call(stats.video, id)
                if current is not None:
                    yield VideoStatsType.of(current)

    @strawberry.subscription(
        description="The trending list, pushed when trending read models change"
    )
    async def trending(
        self,
        info: Info[GraphQLContext, None],
        kind: TrendingKind = TrendingKind.VIDEO,
        window: TrendingWindow = TrendingWindow.HOUR,
        first: int = 10,
    ) -> AsyncGenerator[list[TrendingItem], None]:
        reader = info.context.readers.trending
        n = page_size(first)
        changes = info.context.container.projections.hub.subscribe()
        yield [_trending_item(i) for i in await call(reader.trending, kind.value, window.value, n)]
        async for changed in changes:
            if "trending" in changed:
                yield [
                    _trending_item(i)
                    for i in await call(reader.trending, kind.value, window.value, n)
                ]

    @strawberry.subscription(
        description="The first page of the open moderation queue, on every change"
    )
    async def moderation_queue(
        self, info: Info[GraphQLContext, None], first: int = 20
    ) -> AsyncGenerator[ModerationCaseConnection, None]:
        changes = info.context.container.projections.hub.subscribe()
        yield await _queue(info, "open", first, None)
        async for changed in changes:
            if "moderation" in changed:
                yield await _queue(info, "open", first, None)


# Parsing and validating a query cost more than executing a typical one (a profile of the
# video page: 42 % of the server's busy time in graphql-core's validation). Clients send
# the same query texts again and again, so both are cached (bounded LRU, keyed by the
# text; a query over the token limit raises and is never cached). The limit rules are
# built once per schema: the limiter extensions build new rule classes per request, which
# would make every request a validation-cache miss.
QUERY_CACHE_SIZE = 512
LIMIT_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]


class Schema(strawberry.Schema):
    """strawberry's Schema, logging client mistakes as such: an error that is not a
    fault of the server (a validation error: depth, cost, no such field; a UserError:
    page size, cursor; refused tokens and access) is logged at INFO without a traceback;
    anything else at ERROR with its traceback, as strawberry does (and masked for the
    client by `masking`)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, UserError | GraphQLError):
                client_log.info("graphql client error: %s", error.message.splitlines()[0])
            else:
                StrawberryLogger.error(error, execution_context)


def build_schema(
    *, development: bool, max_cost: int = DEFAULT_MAX_COST, introspection: bool | None = None
) -> strawberry.Schema:
    """The schema with its limits. `max_cost`: the cost limit of one operation (cost.py;
    batches are summed by the router). `introspection`: None follows `development`
    (production answers no __schema/__type queries; __typename stays)."""
    rules = list(LIMIT_RULES)
    if not (development if introspection is None else introspection):
        rules.append(NoSchemaIntrospectionCustomRule)
    return Schema(
        query=Query,
        subscription=Subscription,
        config=StrawberryConfig(
            disable_field_suggestions=not development,
            batching_config={"max_operations": MAX_BATCH},
        ),
        extensions=[
            AccessExtension,  # first: nothing runs for a caller who may not run it
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: ParserCache(maxsize=QUERY_CACHE_SIZE),
            lambda: AddValidationRules(rules),
            lambda: ValidationCache(maxsize=QUERY_CACHE_SIZE),
            lambda: CostLimitExtension(max_cost=max_cost),  # after validation, before SQL
            ConsistencyExtension,
            masking,
        ],
    )
