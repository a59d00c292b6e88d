"""GraphQL types of the moderation read side."""

from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from adapters.graphql.access import field_permission
from adapters.graphql.context import GraphQLContext, call
from adapters.graphql.types import Creator, PageInfo, Video


@strawberry.type
class TimelineEntry:
    position: int
    event_type: str
    occurred_at: datetime
    actor_id: UUID | None
    details: JSON


@strawberry.type
class ModerationCase:
    id: UUID
    video_id: UUID
    creator_id: UUID
    status: str
    priority: str
    priority_score: float
    risk: float | None = strawberry.field(
        description="Predicted probability that the case ends in restrict/remove "
        "(moderation_risk model); null until predicted"
    )
    effective_priority: float = strawberry.field(
        description="The queue's order: priorityScore + 4 * (risk - 0.5) while open"
    )
    reports: int
    max_flag_score: float
    reach: int
    outcome: str | None
    appealed: bool
    opened_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Any) -> "ModerationCase":
        return cls(
            id=c.case_id,
            video_id=c.video_id,
            creator_id=c.creator_id,
            status=c.status,
            priority=c.priority,
            priority_score=c.priority_score,
            risk=getattr(c, "risk", None),
            effective_priority=getattr(c, "effective_priority", c.priority_score),
            reports=c.reports,
            max_flag_score=c.max_flag_score,
            reach=c.reach,
            outcome=c.outcome,
            appealed=c.appealed,
            opened_at=c.opened_at,
            updated_at=c.updated_at,
        )

    @strawberry.field
    async def video(self, info: Info[GraphQLContext, None]) -> Video | None:
        found = await info.context.loaders["video"].load(self.video_id)
        return Video.of(found) if found else None

    @strawberry.field
    async def creator(self, info: Info[GraphQLContext, None]) -> Creator | None:
        found = await info.context.loaders["creator"].load(self.creator_id)
        return Creator.of(found) if found else None

    @strawberry.field(
        description="Every event of the case, oldest first: the audit trail (reporter ids, "
        "reasons, notes, appeal statements: moderator and admin only)",
        permission_classes=[field_permission("ModerationCase.timeline")],
    )
    async def timeline(self, info: Info[GraphQLContext, None]) -> list[TimelineEntry]:
        entries = await call(info.context.readers.moderation.timeline, self.id)
        return [
            TimelineEntry(
                position=e.position,
                event_type=e.event_type,
                occurred_at=e.occurred_at,
                actor_id=e.actor_id,
                details=e.details,
            )
            for e in entries
        ]


@strawberry.type
class ModerationCaseEdge:
    cursor: str
    node: ModerationCase


@strawberry.type
class ModerationCaseConnection:
    edges: list[ModerationCaseEdge]
    page_info: PageInfo
