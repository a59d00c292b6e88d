"""Engagement commands: single signals and the batch ingest endpoint."""

from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter, ValidationError

from adapters.auth.policy import INGEST, allow
from adapters.http.deps import ContainerDep, IdempotencyDep, respond
from adapters.http.errors import ApiError
from adapters.http.schemas import (
    BatchItem,
    BatchResponse,
    CommandResponse,
    FollowBody,
    ItemResponse,
    RecordComment,
    RecordShare,
    RecordView,
    ViewerBody,
    item_to_signal,
)
from commands.engagement import BatchResult, ItemResult, Signal

router = APIRouter(prefix="/v1", tags=["engagement"], dependencies=[allow(INGEST)])
_item_adapter: TypeAdapter[Any] = TypeAdapter(BatchItem)


def _record(
    c: ContainerDep, signal: Signal, body: Any, idem: Any, response: Response
) -> CommandResponse:
    result = c.engagement.record(signal, expected_version=body.expected_version, idempotency=idem)
    return respond(result, response)


@router.post("/videos/{video_id}/views", response_model=CommandResponse)
def record_view(
    video_id: UUID, body: RecordView, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """A viewer watched the video (Engagement.Viewed). Watch time is bounded by the video's
    duration times the replay factor (5)."""
    signal = Signal(
        "view",
        body.viewer_id,
        video_id,
        occurred_at=body.occurred_at,
        client_event_id=body.client_event_id,
        watch_seconds=body.watch_seconds,
        completed=body.completed,
        traffic_source=body.traffic_source,
        device=body.device,
    )
    return _record(c, signal, body, idem, response)


@router.post("/videos/{video_id}/likes", response_model=CommandResponse)
def like(
    video_id: UUID, body: ViewerBody, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Like a video; a viewer likes a video at most once (409 already_liked)."""
    signal = Signal(
        "like",
        body.viewer_id,
        video_id,
        occurred_at=body.occurred_at,
        client_event_id=body.client_event_id,
    )
    return _record(c, signal, body, idem, response)


@router.post("/videos/{video_id}/unlikes", response_model=CommandResponse)
def unlike(
    video_id: UUID, body: ViewerBody, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Take back a like (409 not_liked if there is none)."""
    signal = Signal(
        "unlike",
        body.viewer_id,
        video_id,
        occurred_at=body.occurred_at,
        client_event_id=body.client_event_id,
    )
    return _record(c, signal, body, idem, response)


@router.post("/videos/{video_id}/shares", response_model=CommandResponse)
def share(
    video_id: UUID, body: RecordShare, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Share a video on a channel (Engagement.Shared)."""
    signal = Signal(
        "share",
        body.viewer_id,
        video_id,
        occurred_at=body.occurred_at,
        client_event_id=body.client_event_id,
        channel=body.channel,
    )
    return _record(c, signal, body, idem, response)


@router.post("/videos/{video_id}/comments", status_code=201, response_model=CommandResponse)
def comment(
    video_id: UUID, body: RecordComment, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """Comment on a video; details.comment_id names the new comment."""
    signal = Signal(
        "comment",
        body.viewer_id,
        video_id,
        occurred_at=body.occurred_at,
        client_event_id=body.client_event_id,
        text=body.text,
        comment_id=body.comment_id,
    )
    return _record(c, signal, body, idem, response)


@router.post("/videos/{video_id}/comments/{comment_id}/deletion", response_model=CommandResponse)
def delete_comment(
    video_id: UUID,
    comment_id: UUID,
    body: ViewerBody,
    c: ContainerDep,
    idem: IdempotencyDep,
    response: Response,
) -> CommandResponse:
    """Delete one of the viewer's own comments (404 comment_not_found otherwise)."""
    signal = Signal(
        "delete_comment",
        body.viewer_id,
        video_id,
        occurred_at=body.occurred_at,
        comment_id=comment_id,
    )
    return _record(c, signal, body, idem, response)


@router.post("/creators/{creator_id}/followers", response_model=CommandResponse)
def follow(
    creator_id: UUID, body: FollowBody, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """A viewer follows a creator (not themselves: 409 self_follow)."""
    signal = Signal(
        "follow",
        body.viewer_id,
        creator_id=creator_id,
        occurred_at=body.occurred_at,
        client_event_id=body.client_event_id,
    )
    return _record(c, signal, body, idem, response)


@router.post("/creators/{creator_id}/unfollows", response_model=CommandResponse)
def unfollow(
    creator_id: UUID, body: FollowBody, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> CommandResponse:
    """A viewer stops following a creator."""
    signal = Signal(
        "unfollow",
        body.viewer_id,
        creator_id=creator_id,
        occurred_at=body.occurred_at,
        client_event_id=body.client_event_id,
    )
    return _record(c, signal, body, idem, response)


BATCH_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/BatchItem"},
                        }
                    },
                    "required": ["items"],
                }
            },
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "one item per line"}
            },
        },
    }
}


@router.post("/engagement/batch", response_model=BatchResponse, openapi_extra=BATCH_DOC)
async def ingest_batch(
    request: Request, c: ContainerDep, idem: IdempotencyDep, response: Response
) -> BatchResponse:
    """Ingest many engagement signals in one request: `{"items": [...]}` (or a bare JSON
    array) as application/json, or one item per line as application/x-ndjson.

    Each item is validated on its own and gets its own result (recorded, duplicate or
    rejected with an error code). The batch is atomic over its accepted items: they are
    stored in one transaction, all or none. Rejected items are never stored. At most
    REELPULSE_BATCH_MAX_ITEMS items (default 1000) per request; more gives 413.
    """
    raw = _parse_items(await request.body(), request.headers.get("content-type", ""))
    limit = c.settings.batch_max_items
    if len(raw) > limit:
        raise ApiError(
            413, "batch_too_large", f"a batch holds at most {limit} items, got {len(raw)}"
        )
    if not raw:
        raise ApiError(422, "empty_batch", "the batch has no items")
    signals: dict[int, Signal] = {}
    invalid: dict[int, ItemResult] = {}
    for index, item in enumerate(raw):
        try:
            signals[index] = item_to_signal(_item_adapter.validate_python(item))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "type"
            invalid[index] = ItemResult(
                index, "rejected", error="invalid_input", message=f"{where}: {first['msg']}"
            )
    order = sorted(signals)
    result: BatchResult = await run_in_threadpool(
        c.engagement.ingest, [signals[i] for i in order], idempotency=idem
    )
    items = {order[r.index]: r for r in result.items} | invalid
    merged = [ItemResponse(**{**items[i].to_json(), "index": i}) for i in range(len(raw))]
    response.headers["X-Consistency-Token"] = str(result.position)
    if result.replayed:
        response.headers["Idempotency-Replayed"] = "true"
    return BatchResponse(
        position=result.position,
        replayed=result.replayed,
        recorded=sum(1 for m in merged if m.status == "recorded"),
        duplicates=sum(1 for m in merged if m.status == "duplicate"),
        rejected=sum(1 for m in merged if m.status == "rejected"),
        items=merged,
    )


def _parse_items(body: bytes, content_type: str) -> list[Any]:
    try:
        if "ndjson" in content_type or "jsonl" in content_type:
            items = [orjson.loads(line) for line in body.splitlines() if line.strip()]
        else:
            doc = orjson.loads(body)
            items = doc.get("items") if isinstance(doc, dict) else doc
    except orjson.JSONDecodeError as e:
        raise ApiError(422, "invalid_json", f"body is not valid JSON: {e}") from None
    if not isinstance(items, list):
        raise ApiError(
            422, "invalid_input", 'expected {"items": [...]}, a JSON array, or NDJSON lines'
        )
    return items
