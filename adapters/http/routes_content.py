"""Creator and video commands."""

from uuid import UUID

from fastapi import APIRouter, Response

from adapters.auth.policy import CREATOR, MODERATOR, CallerDep, allow
from adapters.auth.principal import Principal, Role
from adapters.bootstrap import Container
from adapters.http.deps import (
    ContainerDep,
    IdempotencyDep,
    act_as_creator,
    ensure_video_owner,
    respond,
)
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


def _video_actor(
    who: Principal, c: Container, video_id: UUID, actor_id: UUID | None
) -> UUID | None:
    """The actor to record on a video command. A creator key acts only on its own video
    and only as itself (its creator id when the body names no actor)."""
    ensure_video_owner(who, c, video_id)
    if who.role is not Role.CREATOR:
        return actor_id
    actor_id = actor_id or who.subject_id
    act_as_creator(who, actor_id)
    return actor_id


@router.post(
    "/creators",
    status_code=201,
    response_model=CommandResponse,
    dependencies=[allow(CREATOR, own=True)],
)
def register_creator(
    body: RegisterCreator,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
    who: CallerDep,
) -> CommandResponse:
    """Register a creator account (Creator.Registered). A creator key registers only its
    own creator id."""
    act_as_creator(who, body.creator_id)
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


@router.patch(
    "/creators/{creator_id}",
    response_model=CommandResponse,
    dependencies=[allow(CREATOR, own=True)],
)
def update_profile(
    creator_id: UUID,
    body: UpdateProfile,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
    who: CallerDep,
) -> CommandResponse:
    """Change display name and region (Creator.ProfileUpdated): one's own profile."""
    act_as_creator(who, creator_id)
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


@router.post(
    "/creators/{creator_id}/suspension",
    response_model=CommandResponse,
    dependencies=[allow(MODERATOR)],
)
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


@router.post(
    "/creators/{creator_id}/reinstatement",
    response_model=CommandResponse,
    dependencies=[allow(MODERATOR)],
)
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


@router.post(
    "/videos",
    status_code=201,
    response_model=CommandResponse,
    dependencies=[allow(CREATOR, own=True)],
)
def publish_video(
    body: PublishVideo,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
    who: CallerDep,
) -> CommandResponse:
    """Publish a video (Video.Published). Suspended creators get 409 creator_suspended.
    A creator key publishes only as itself."""
    act_as_creator(who, body.creator_id)
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


@router.patch(
    "/videos/{video_id}", response_model=CommandResponse, dependencies=[allow(CREATOR, own=True)]
)
def edit_caption(
    video_id: UUID,
    body: EditCaption,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
    who: CallerDep,
) -> CommandResponse:
    """Edit caption and hashtags (Video.CaptionEdited). A creator key: its own videos."""
    actor_id = _video_actor(who, c, video_id, body.actor_id)
    return respond(
        c.content.edit_caption(
            video_id,
            caption=body.caption,
            hashtags=body.hashtags,
            actor_id=actor_id,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )


@router.post(
    "/videos/{video_id}/deletion",
    response_model=CommandResponse,
    dependencies=[allow(CREATOR, own=True)],
)
def delete_video(
    video_id: UUID,
    body: DeleteVideo,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
    who: CallerDep,
) -> CommandResponse:
    """The creator deletes their video (Video.DeletedByCreator). A creator key: its own."""
    actor_id = _video_actor(who, c, video_id, body.actor_id)
    return respond(
        c.content.delete_video(
            video_id,
            actor_id=actor_id,
            occurred_at=body.occurred_at,
            expected_version=body.expected_version,
            idempotency=idem,
        ),
        response,
    )
