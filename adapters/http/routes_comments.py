"""Comment moderation: viewers' reports, model flags, moderators' decisions, the queue."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from adapters.auth.policy import INGEST, MODERATOR, allow
from adapters.http.deps import ContainerDep, IdempotencyDep, respond
from adapters.http.schemas import Body, Code, CommandResponse, Note, VersionedBody
from adapters.readmodel.comment_reader import MAX_PAGE, CommentCaseDTO, comment_cases
from domain.comment_moderation import COMMENT_REPORT_REASONS

router = APIRouter(prefix="/v1", tags=["moderation"])
CommentReportReason = Literal[tuple(sorted(COMMENT_REPORT_REASONS))]  # type: ignore[valid-type]


class ReportComment(Body):
    video_id: UUID = Field(description="The video the comment was written on")
    reporter_id: UUID
    reason: CommentReportReason


class FlagComment(Body):
    video_id: UUID = Field(description="The video the comment was written on")
    model: Code
    score: Annotated[float, Field(ge=0, le=1)]
    reasons: Annotated[list[Code], Field(max_length=20)] = []


class DecideComment(VersionedBody):
    moderator_id: UUID
    outcome: Literal["keep", "remove"]
    note: Note = ""


class CommentCaseOut(BaseModel):
    case_id: UUID
    comment_id: UUID
    video_id: UUID
    author_id: UUID | None
    text: str | None = Field(description="The comment (null if older than the model's memory)")
    probability: float | None = Field(
        description="The model's probability of removal, predicted when the comment was written"
    )
    status: Literal["open", "decided"]
    reports: int
    reasons: dict[str, int]
    flags: int
    flag_score: float | None
    outcome: str | None
    opened_at: str
    decided_at: str | None
    updated_at: str

    @classmethod
    def of(cls, c: CommentCaseDTO) -> "CommentCaseOut":
        return cls(
            **{k: v for k, v in c.__dict__.items() if not k.endswith("_at")},
            opened_at=c.opened_at.isoformat(),
            decided_at=c.decided_at.isoformat() if c.decided_at else None,
            updated_at=c.updated_at.isoformat(),
        )


@router.post(
    "/comments/{comment_id}/reports",
    response_model=CommandResponse,
    dependencies=[allow(INGEST, MODERATOR)],
)
def report_comment(
    comment_id: UUID, body: ReportComment, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Report a comment; opens its comment case. The id returned is the case id."""
    return respond(
        c.moderation.report_comment(
            comment_id,
            video_id=body.video_id,
            reporter_id=body.reporter_id,
            reason=body.reason,
            occurred_at=body.occurred_at,
            idempotency=idem,
        ),
        response,
    )


@router.post(
    "/comments/{comment_id}/flags",
    response_model=CommandResponse,
    dependencies=[allow(INGEST, MODERATOR)],
)
def flag_comment(
    comment_id: UUID, body: FlagComment, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """An automated classifier flags a comment (CommentCase.AutoFlagged). ReelPulse's own
    model flags through the alert-action worker, not this route."""
    return respond(
        c.moderation.flag_comment(
            comment_id,
            video_id=body.video_id,
            model=body.model,
            score=body.score,
            reasons=body.reasons,
            occurred_at=body.occurred_at,
            idempotency=idem,
        ),
        response,
    )


@router.post(
    "/comment-cases/{case_id}/decision",
    response_model=CommandResponse,
    dependencies=[allow(MODERATOR)],
)
def decide_comment(
    case_id: UUID, body: DecideComment, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Decide an open comment case: keep or remove (final)."""
    return respond(
        c.moderation.decide_comment(
            case_id,
            moderator_id=body.moderator_id,
            outcome=body.outcome,
            note=body.note,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.get("/comment-cases", response_model=list[CommentCaseOut], dependencies=[allow(MODERATOR)])
def list_comment_cases(
    c: ContainerDep,
    status: Literal["open", "decided"] = "open",
    first: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    video_id: UUID | None = None,
) -> list[CommentCaseOut]:
    """The comment moderation queue (read model, eventually consistent): open cases
    flagged by the model first, then by its probability and reports; decided ones newest
    first. Shows comment text and author ids: moderators (and admins) only."""
    with c.read_engine.connect() as conn:
        return [CommentCaseOut.of(x) for x in comment_cases(conn, status, first, video_id)]
