"""Moderation commands: reports, flags, escalation, decisions, appeals."""

from uuid import UUID

from fastapi import APIRouter, Response

from adapters.auth.policy import CREATOR, INGEST, MODERATOR, CallerDep, allow
from adapters.auth.principal import Role
from adapters.http.deps import (
    ContainerDep,
    IdempotencyDep,
    act_as_creator,
    ensure_case_owner,
    respond,
)
from adapters.http.schemas import Appeal as AppealBody
from adapters.http.schemas import (
    AutoFlag,
    CommandResponse,
    Decide,
    Escalate,
    ReportVideo,
    ResolveAppeal,
)

router = APIRouter(prefix="/v1", tags=["moderation"])


@router.post(
    "/videos/{video_id}/reports",
    response_model=CommandResponse,
    dependencies=[allow(INGEST, MODERATOR)],
)
def report_video(
    video_id: UUID, body: ReportVideo, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Report a video; opens (or reopens) its moderation case. The id returned is the case id."""
    return respond(
        c.moderation.report_video(
            video_id,
            reporter_id=body.reporter_id,
            reason=body.reason,
            occurred_at=body.occurred_at,
            idempotency=idem,
        ),
        response,
    )


@router.post(
    "/videos/{video_id}/flags",
    response_model=CommandResponse,
    dependencies=[allow(INGEST, MODERATOR)],
)
def auto_flag_video(
    video_id: UUID, body: AutoFlag, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """An automated classifier flags a video (ModerationCase.AutoFlagged)."""
    return respond(
        c.moderation.auto_flag_video(
            video_id,
            model=body.model,
            score=body.score,
            reasons=body.reasons,
            occurred_at=body.occurred_at,
            idempotency=idem,
        ),
        response,
    )


@router.post(
    "/cases/{case_id}/escalation", response_model=CommandResponse, dependencies=[allow(MODERATOR)]
)
def escalate_case(
    case_id: UUID, body: Escalate, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Raise an open case's priority (ModerationCase.Escalated)."""
    return respond(
        c.moderation.escalate_case(
            case_id,
            priority=body.priority,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.post(
    "/cases/{case_id}/decision", response_model=CommandResponse, dependencies=[allow(MODERATOR)]
)
def decide_case(
    case_id: UUID, body: Decide, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Decide an open case: keep, restrict or remove. Effects on the video and the creator's
    strikes follow asynchronously through the moderation policy."""
    return respond(
        c.moderation.decide_case(
            case_id,
            moderator_id=body.moderator_id,
            outcome=body.outcome,
            policy=body.policy,
            note=body.note,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.post(
    "/cases/{case_id}/appeal",
    response_model=CommandResponse,
    dependencies=[allow(CREATOR, own=True)],
)
def appeal_case(
    case_id: UUID,
    body: AppealBody,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
    who: CallerDep,
) -> CommandResponse:
    """The video's creator appeals a restrict/remove decision, once. A creator key
    appeals only cases of its own videos, as itself."""
    ensure_case_owner(who, c, case_id)
    if who.role is Role.CREATOR:
        act_as_creator(who, body.appellant_id)
    return respond(
        c.moderation.appeal_case(
            case_id,
            appellant_id=body.appellant_id,
            statement=body.statement,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.post(
    "/cases/{case_id}/appeal-resolution",
    response_model=CommandResponse,
    dependencies=[allow(MODERATOR)],
)
def resolve_appeal(
    case_id: UUID, body: ResolveAppeal, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Uphold or overturn an appeal; overturning restores the video and withdraws the strike."""
    return respond(
        c.moderation.resolve_appeal(
            case_id,
            moderator_id=body.moderator_id,
            resolution=body.resolution,
            note=body.note,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )
