"""GraphQL for the online models and alerts: recommendations, emerging trends, bot-detector
scores, moderation risk, alerts (paged) and the alerts subscription."""

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from adapters.graphql.context import GraphQLContext, UserError, call, page_size
from adapters.graphql.types import PageInfo, Video
from adapters.readmodel import alerts_reader, anomaly_reader, emerging_reader, reco_reader
from adapters.readmodel.alerts_reader import AlertFeed, AlertItem

ALERT_PROJECTIONS = (
    "alert_rules",
    "bot_detector",
    "comment_moderation",
    "emerging_trends",
    "sentiment",
)


def _read(engine: sa.Engine, fn: Any, *args: Any) -> Any:
    with engine.connect() as conn:
        return fn(conn, *args)


async def _query(info: Info[GraphQLContext, None], fn: Any, *args: Any) -> Any:
    """Run a reader function on a read-model connection; bad input becomes a UserError."""
    try:
        return await call(_read, info.context.container.read_engine, fn, *args)
    except ValueError as e:  # the readers' InvalidValue errors are ValueErrors too
        raise UserError(str(e)) from None


@strawberry.enum
class RecommendationSource(Enum):
    PERSONAL = "personal"
    TRENDING = "trending"
    FOLLOWING = "following"


@strawberry.type
class Recommendation:
    video_id: UUID
    score: float = strawberry.field(description="Views per hour as the viewer's taste weighs them")
    source: RecommendationSource = strawberry.field(
        description="What lifted it: the viewer's taste, a followed creator, or popularity"
    )

    @strawberry.field
    async def video(self, info: Info[GraphQLContext, None]) -> Video | None:
        found = await info.context.loaders["video"].load(self.video_id)
        return Video.of(found) if found else None


@strawberry.enum
class TrendKind(Enum):
    HASHTAG = "hashtag"
    SOUND = "sound"


@strawberry.type
class EmergingTrend:
    kind: TrendKind
    key: str
    status: str = strawberry.field(description="emerging | steady")
    velocity: float = strawberry.field(description="Views per hour (event time)")
    baseline: float = strawberry.field(description="Views per hour its usual share would give")
    lift: float
    detections: int
    detected_at: datetime | None
    updated_at: datetime


@strawberry.type
class VideoAnomaly:
    video_id: UUID
    scored_at: datetime = strawberry.field(description="Start of the last scored minute")
    score: float = strawberry.field(description="Anomaly score of that minute, 0..1")
    max_score: float
    max_score_at: datetime
    minutes: int = strawberry.field(description="Active minutes scored so far")
    vector: JSON = strawberry.field(description="The last minute's features")


@strawberry.type(name="Alert")
class AlertType:
    id: UUID
    rule: str = strawberry.field(
        description="bot_burst | report_spike | emerging_trend | strike_threshold"
    )
    source: str = strawberry.field(description="The projection that raised it")
    subject_type: str
    subject_id: str
    severity: str
    score: float
    summary: str
    details: JSON
    raised_at: datetime = strawberry.field(description="Event time")
    position: int = strawberry.field(description="The event that raised it")
    action: str | None
    action_status: str | None = strawberry.field(
        description="pending | done | skipped | failed | abandoned"
    )
    action_result: str | None
    acted_at: datetime | None

    @classmethod
    def of(cls, a: AlertItem) -> "AlertType":
        return cls(
            id=a.id, rule=a.rule, source=a.source, subject_type=a.subject_type,
            subject_id=a.subject_id, severity=a.severity, score=a.score, summary=a.summary,
            details=a.details, raised_at=a.raised_at, position=a.position, action=a.action,
            action_status=a.action_status, action_result=a.action_result, acted_at=a.acted_at,
        )  # fmt: skip


@strawberry.type
class AlertEdge:
    cursor: str
    node: AlertType


@strawberry.type
class AlertConnection:
    edges: list[AlertEdge]
    page_info: PageInfo


@strawberry.type
class IntelligenceQuery:
    @strawberry.field(
        description="Videos for a viewer, unseen and active only, ordered by one score "
        "(views per hour as the viewer's taste weighs them); `explore` lets the bandit "
        "draw the taste weight"
    )
    async def recommendations(
        self,
        info: Info[GraphQLContext, None],
        viewer_id: UUID,
        first: int = 10,
        explore: bool = False,
    ) -> list[Recommendation]:
        rows = await _query(info, reco_reader.recommendations, viewer_id, page_size(first), explore)
        return [
            Recommendation(
                video_id=r.video_id, score=r.score, source=RecommendationSource(r.source)
            )
            for r in rows
        ]

    @strawberry.field(description="Hashtags and sounds by lift, emerging ones first")
    async def emerging_trends(
        self, info: Info[GraphQLContext, None], kind: TrendKind | None = None, first: int = 20
    ) -> list[EmergingTrend]:
        rows = await _query(
            info, emerging_reader.emerging_trends, kind.value if kind else None, page_size(first)
        )
        return [
            EmergingTrend(
                kind=TrendKind(r.kind),
                key=r.key,
                status=r.status,
                velocity=r.velocity,
                baseline=r.baseline,
                lift=r.lift,
                detections=r.detections,
                detected_at=r.detected_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]

    @strawberry.field(description="The bot detector's per-minute anomaly scores of a video")
    async def video_anomaly(
        self, info: Info[GraphQLContext, None], video_id: UUID
    ) -> VideoAnomaly | None:
        a = await _query(info, anomaly_reader.video_anomaly, video_id)
        if a is None:
            return None
        return VideoAnomaly(
            video_id=a.video_id, scored_at=a.scored_at, score=a.score, max_score=a.max_score,
            max_score_at=a.max_score_at, minutes=a.minutes, vector=a.vector,
        )  # fmt: skip

    @strawberry.field(description="Alerts, newest first (by the event that raised them)")
    async def alerts(
        self,
        info: Info[GraphQLContext, None],
        first: int = 20,
        after: str | None = None,
        rule: str | None = None,
    ) -> AlertConnection:
        page = await _query(info, alerts_reader.alerts, page_size(first), after, rule)
        return AlertConnection(
            edges=[AlertEdge(cursor=a.cursor, node=AlertType.of(a)) for a in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


def _feed(engine: sa.Engine, feed: AlertFeed, start: bool) -> list[AlertItem]:
    with engine.connect() as conn:
        if start:
            feed.start(conn)
            return []
        return feed.poll(conn)


@strawberry.type
class IntelligenceSubscription:
    @strawberry.subscription(description="Alerts as they are raised, each once, in log order")
    async def alerts(self, info: Info[GraphQLContext, None]) -> AsyncGenerator[AlertType, None]:
        container = info.context.container
        feed = AlertFeed([n for n in ALERT_PROJECTIONS if n in container.projections.names])
        changes = container.projections.hub.subscribe()
        await call(_feed, container.read_engine, feed, True)
        async for changed in changes:
            if "alerts" in changed:
                for a in await call(_feed, container.read_engine, feed, False):
                    yield AlertType.of(a)
