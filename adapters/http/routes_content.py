"""Creator and video commands."""

from uuid import UUID

from fastapi import APIRouter, Response

from adapters.http.deps import ContainerDep, IdempotencyDep, respond
from adapters.http.schemas import (
    CommandResponse,
    DeleteVideo,
    EditCaption,
    PublishVideo,
    RegisterCreator,
    SuspensionChange,
    UpdateProfile,
)

router = APIRouter(prefix="/v1", tags=["content"])


@router.post("/creators", status_code=201, response_model=CommandResponse)
def register_creator(
    body: RegisterCreator, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Register a creator account (Creator.Registered)."""
    return respond(
        c.content.register_creator(
            creator_id=body.creator_id,
            handle=body.handle,
            display_name=body.display_name,
            region=body.region,
            occurred_at=body.occurred_at,
            idempotency=idem,
        ),
        response,
    )


@router.patch("/creators/{creator_id}", response_model=CommandResponse)
def update_profile(
    creator_id: UUID, body: UpdateProfile, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Change display name and region (Creator.ProfileUpdated)."""
    return respond(
        c.content.update_profile(
            creator_id,
            display_name=body.display_name,
            region=body.region,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.post("/creators/{creator_id}/suspension", response_model=CommandResponse)
def suspend_creator(
    creator_id: UUID,
    body: SuspensionChange,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
) -> CommandResponse:
    """Suspend a creator by hand (Creator.Suspended). Strikes suspend automatically."""
    return respond(
        c.content.suspend_creator(
            creator_id,
            reason=body.reason,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.post("/creators/{creator_id}/reinstatement", response_model=CommandResponse)
def reinstate_creator(
    creator_id: UUID,
    body: SuspensionChange,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
) -> CommandResponse:
    """Lift a suspension (Creator.Reinstated)."""
    return respond(
        c.content.reinstate_creator(
            creator_id,
            reason=body.reason,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.post("/videos", status_code=201, response_model=CommandResponse)
def publish_video(
    body: PublishVideo, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Publish a video (Video.Published). Suspended creators get 409 creator_suspended."""
    return respond(
        c.content.publish_video(
            video_id=body.video_id,
            creator_id=body.creator_id,
            caption=body.caption,
            hashtags=body.hashtags,
            sound_id=body.sound_id,
            duration_seconds=body.duration_seconds,
            occurred_at=body.occurred_at,
            idempotency=idem,
        ),
        response,
    )


@router.patch("/videos/{video_id}", response_model=CommandResponse)
def edit_caption(
    video_id: UUID, body: EditCaption, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Edit caption and hashtags (Video.CaptionEdited)."""
    return respond(
        c.content.edit_caption(
            video_id,
            caption=body.caption,
            hashtags=body.hashtags,
            actor_id=body.actor_id,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.post("/videos/{video_id}/deletion", response_model=CommandResponse)
def delete_video(
    video_id: UUID, body: DeleteVideo, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """The creator deletes their video (Video.DeletedByCreator)."""
    return respond(
        c.content.delete_video(
            video_id,
            actor_id=body.actor_id,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )
