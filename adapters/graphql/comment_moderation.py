"""GraphQL for the comment moderation queue (CommentModerationProjection's read model,
rm_comment_cases): the root field `commentCases`, as `GET /v1/comment-cases` serves it.

It shows comment text and author ids, so only moderators and admins may read it
(adapters/auth/policy.py), and the response cache never keeps it: an erasure clears a
forgotten viewer's comment text outside the projections (adapters/graphql/cache_operations.py).
"""

from datetime import datetime
from enum import Enum
from uuid import UUID

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from adapters.graphql.context import GraphQLContext, page_size, read
from adapters.readmodel import comment_reader
from adapters.readmodel.comment_reader import CommentCaseDTO


@strawberry.enum
class CommentCaseStatus(Enum):
    OPEN = "open"
    DECIDED = "decided"


@strawberry.type(description="A reported or flagged comment and its case")
class CommentCase:
    case_id: UUID
    comment_id: UUID
    video_id: UUID
    author_id: UUID | None = strawberry.field(description="The comment's writer (null: erased)")
    text: str | None = strawberry.field(
        description="The comment (null if erased, or written before the model's memory)"
    )
    probability: float | None = strawberry.field(
        description="The model's probability of removal, predicted when the comment was written"
    )
    status: CommentCaseStatus
    reports: int
    reasons: JSON = strawberry.field(description="Reports per reason")
    flags: int
    flag_score: float | None = strawberry.field(description="The highest model flag score")
    outcome: str | None = strawberry.field(description="keep or remove, once decided")
    opened_at: datetime
    decided_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, c: CommentCaseDTO) -> "CommentCase":
        return cls(
            case_id=c.case_id, comment_id=c.comment_id, video_id=c.video_id,
            author_id=c.author_id, text=c.text, probability=c.probability,
            status=CommentCaseStatus(c.status), reports=c.reports, reasons=dict(c.reasons),
            flags=c.flags, flag_score=c.flag_score, outcome=c.outcome, opened_at=c.opened_at,
            decided_at=c.decided_at, updated_at=c.updated_at,
        )  # fmt: skip


@strawberry.type
class CommentModerationQuery:
    @strawberry.field(
        description="The comment moderation queue: open cases flagged by the model first, then "
        "by its probability and reports; decided ones newest first"
    )
    async def comment_cases(
        self, info: Info[GraphQLContext, None],
        status: CommentCaseStatus = CommentCaseStatus.OPEN, first: int = 20,
        video_id: UUID | None = None,
    ) -> list[CommentCase]:  # fmt: skip
        rows = await read(
            info, comment_reader.comment_cases, status.value, page_size(first), video_id
        )
        return [CommentCase.of(r) for r in rows]
