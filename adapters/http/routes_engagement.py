"""Engagement commands: single signals and the batch ingest endpoint. The hot path.

Each request takes these steps, every one on the event loop but the batch's decision:

    auth      the route's policy: cached key lookups, no thread hop (adapters/auth/policy.py)
    decode    the body straight into msgspec Structs (bodies.py); 422s name the field
    command   record_async (decides on the loop, awaits the group commit) or, for a batch,
              ingest in a worker thread (it decides 1000 signals in milliseconds)
    answer    orjson bytes (answers.py)

The routes own their deadline (deadline.py): it goes to the application, which stores
nothing once it passed before the commit began and says so (CommitExpired -> 503
not_stored_timeout); any other outcome is awaited and answered. The pydantic models of
schemas.py document the bodies in OpenAPI (`body_doc`) and stay the reference.
"""

import asyncio
import functools
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from adapters.auth.policy import INGEST, allow
from adapters.bootstrap import Container
from adapters.http import bodies
from adapters.http.answers import batch_response, command_response
from adapters.http.deadline import DeadlineRoute, request_deadline
from adapters.http.deps import IdempotencyKeyHeader, request_idempotency
from adapters.http.errors import ApiError
from adapters.http.schemas import BatchResponse, CommandResponse, ErrorResponse
from commands.appending import CommitExpired
from commands.base import Idempotency
from commands.engagement import BatchResult, Signal

router = APIRouter(
    prefix="/v1",
    tags=["engagement"],
    dependencies=[allow(INGEST)],
    route_class=DeadlineRoute,
    # Documented: these routes answer 503 not_stored_timeout when nothing was stored.
    responses={503: {"model": ErrorResponse, "description": "Not stored: retry"}},
)

# Batches decide in these threads, not in the 40-thread pool shared with every sync route
# and dependency; a thread mostly waits for its group commit, so 32 keep 32 batches in
# flight (the committer groups them) at no CPU cost.
INGEST_THREADS = 32
_ingest_pool = ThreadPoolExecutor(INGEST_THREADS, thread_name_prefix="http-ingest")

B = TypeVar("B", bound=msgspec.Struct)


def body_doc(model: str) -> dict[str, Any]:
    """openapi_extra: the request body is the schemas.py model `model` (app.py registers
    the models the routes no longer declare as parameters)."""
    ref = {"$ref": f"#/components/schemas/{model}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def decoder(body_type: type[B]) -> Callable[[bytes], B]:
    """bytes -> a validated body, or ApiError 422 (invalid_json / invalid_input naming the
    field, in the shape of FastAPI's validation errors)."""
    decode = msgspec.json.Decoder(body_type).decode

    def parse(raw: bytes) -> B:
        if not raw:
            raise _invalid("", "field required", "missing")
        try:
            return decode(raw)
        except msgspec.ValidationError as e:
            field, message = bodies.field_error(e)
            raise _invalid(field, message, "value_error") from None
        except msgspec.DecodeError as e:
            raise not_json(raw, e) from None

    return parse


def not_json(body: bytes, error: Exception) -> ApiError:
    """The answer to a body msgspec cannot decode: invalid JSON, or JSON whose strings
    hold an escaped lone surrogate (\\ud800 without its pair), which is not text: msgspec
    refuses it, the standard library reads it, and no read model could store it."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return ApiError(422, "invalid_json", f"body is not valid JSON: {error}")
    field = _lone_surrogate_at(doc, "")
    message = "a lone surrogate escape (\\ud800-\\udfff without its pair) is not text"
    named = [{"field": field or "body", "message": message, "type": "invalid_text"}]
    return ApiError(422, "invalid_text", f"{field or 'body'}: {message}", fields=named)


def _lone_surrogate_at(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if any("\ud800" <= c <= "\udfff" for c in value) else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _lone_surrogate_at(key, path) if isinstance(key, str) else None
        found = found or _lone_surrogate_at(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _invalid(field: str, message: str, kind: str) -> ApiError:
    where = f"body.{field}" if field else "body"
    return ApiError(
        422, "invalid_input", f"{where}: {message}",
        fields=[{"field": where, "message": message, "type": kind}],
    )  # fmt: skip


async def _record(
    request: Request,
    key: str | None,
    signal: Signal,
    expected_version: int | None,
    raw: bytes,
    status: int = 200,
) -> Response:
    container: Container = request.app.state.container
    idem = request_idempotency(request, key, raw)
    result = await container.engagement.record_async(
        signal,
        expected_version=expected_version,
        idempotency=idem,
        deadline=request_deadline(request),
    )
    return command_response(result, status)


_view = decoder(bodies.RecordView)
_viewer = decoder(bodies.ViewerBody)
_share = decoder(bodies.RecordShare)
_comment = decoder(bodies.RecordComment)


@router.post(
    "/videos/{video_id}/views", response_model=CommandResponse, openapi_extra=body_doc("RecordView")
)
async def record_view(
    video_id: UUID, request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """A viewer watched the video (Engagement.Viewed). Watch time is bounded by the video's
    duration times the replay factor (5)."""
    raw = await request.body()
    b = _view(raw)
    signal = Signal(
        "view", b.viewer_id, video_id, None, b.occurred_at, b.client_event_id,
        b.watch_seconds, b.completed, b.traffic_source, b.device,
    )  # fmt: skip
    return await _record(request, idempotency_key, signal, b.expected_version, raw)


@router.post(
    "/videos/{video_id}/likes", response_model=CommandResponse, openapi_extra=body_doc("ViewerBody")
)
async def like(
    video_id: UUID, request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Like a video; a viewer likes a video at most once (409 already_liked)."""
    raw = await request.body()
    b = _viewer(raw)
    signal = Signal("like", b.viewer_id, video_id, None, b.occurred_at, b.client_event_id)
    return await _record(request, idempotency_key, signal, b.expected_version, raw)


@router.post(
    "/videos/{video_id}/unlikes",
    response_model=CommandResponse,
    openapi_extra=body_doc("ViewerBody"),
)
async def unlike(
    video_id: UUID, request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Take back a like (409 not_liked if there is none)."""
    raw = await request.body()
    b = _viewer(raw)
    signal = Signal("unlike", b.viewer_id, video_id, None, b.occurred_at, b.client_event_id)
    return await _record(request, idempotency_key, signal, b.expected_version, raw)


@router.post(
    "/videos/{video_id}/shares",
    response_model=CommandResponse,
    openapi_extra=body_doc("RecordShare"),
)
async def share(
    video_id: UUID, request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Share a video on a channel (Engagement.Shared)."""
    raw = await request.body()
    b = _share(raw)
    signal = Signal(
        "share", b.viewer_id, video_id, occurred_at=b.occurred_at,
        client_event_id=b.client_event_id, channel=b.channel,
    )  # fmt: skip
    return await _record(request, idempotency_key, signal, b.expected_version, raw)


@router.post(
    "/videos/{video_id}/comments",
    status_code=201,
    response_model=CommandResponse,
    openapi_extra=body_doc("RecordComment"),
)
async def comment(
    video_id: UUID, request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Comment on a video; details.comment_id names the new comment."""
    raw = await request.body()
    b = _comment(raw)
    signal = Signal(
        "comment", b.viewer_id, video_id, occurred_at=b.occurred_at,
        client_event_id=b.client_event_id, text=b.text, comment_id=b.comment_id,
    )  # fmt: skip
    return await _record(request, idempotency_key, signal, b.expected_version, raw, 201)


@router.post(
    "/videos/{video_id}/comments/{comment_id}/deletion",
    response_model=CommandResponse,
    openapi_extra=body_doc("ViewerBody"),
)
async def delete_comment(
    video_id: UUID,
    comment_id: UUID,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Delete one of the viewer's own comments (404 comment_not_found otherwise)."""
    raw = await request.body()
    b = _viewer(raw)
    signal = Signal(
        "delete_comment", b.viewer_id, video_id, occurred_at=b.occurred_at,
        comment_id=comment_id,
    )  # fmt: skip
    return await _record(request, idempotency_key, signal, b.expected_version, raw)


@router.post(
    "/creators/{creator_id}/followers",
    response_model=CommandResponse,
    openapi_extra=body_doc("FollowBody"),
)
async def follow(
    creator_id: UUID, request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """A viewer follows a creator (not themselves: 409 self_follow)."""
    raw = await request.body()
    b = _viewer(raw)
    signal = Signal("follow", b.viewer_id, None, creator_id, b.occurred_at, b.client_event_id)
    return await _record(request, idempotency_key, signal, b.expected_version, raw)


@router.post(
    "/creators/{creator_id}/unfollows",
    response_model=CommandResponse,
    openapi_extra=body_doc("FollowBody"),
)
async def unfollow(
    creator_id: UUID, request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """A viewer stops following a creator."""
    raw = await request.body()
    b = _viewer(raw)
    signal = Signal("unfollow", b.viewer_id, None, creator_id, b.occurred_at, b.client_event_id)
    return await _record(request, idempotency_key, signal, b.expected_version, raw)


# -- batch -----------------------------------------------------------------------------------
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


class _Envelope(msgspec.Struct):
    items: list[msgspec.Raw]


# `{"items": [...]}` or a bare array; each item kept as its raw JSON, decoded on its own.
_batch_body = msgspec.json.Decoder(_Envelope | list[msgspec.Raw]).decode


@router.post("/engagement/batch", response_model=BatchResponse, openapi_extra=BATCH_DOC)
async def ingest_batch(request: Request, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    """Ingest many engagement signals in one request: `{"items": [...]}` (or a bare JSON
    array) as application/json, or one item per line as application/x-ndjson.

    Each item is validated on its own and gets its own result (recorded, duplicate or
    rejected with an error code). The batch is atomic over its accepted items: they are
    stored in one transaction, all or none. Rejected items are never stored. At most
    REELPULSE_BATCH_MAX_ITEMS items (default 1000) per request; more gives 413.
    """
    container: Container = request.app.state.container
    deadline = request_deadline(request)
    raw = await request.body()
    items = _split(raw, request.headers.get("content-type", ""))
    limit = container.settings.batch_max_items
    if len(items) > limit:
        raise ApiError(
            413, "batch_too_large", f"a batch holds at most {limit} items, got {len(items)}"
        )
    if not items:
        raise ApiError(422, "empty_batch", "the batch has no items")
    idem = request_idempotency(request, idempotency_key, raw)
    indexes, signals, invalid = bodies.decode_items(items)
    result: BatchResult = await asyncio.get_running_loop().run_in_executor(
        _ingest_pool, functools.partial(_ingest, container, signals, idem, deadline)
    )
    return batch_response(result, indexes, invalid, len(items))


def _split(body: bytes, content_type: str) -> Sequence[bytes | msgspec.Raw]:
    """The items' raw JSON: 422 invalid_json when the body is not JSON (NDJSON: a line),
    invalid_input when it is not a batch."""
    try:
        if "ndjson" in content_type or "jsonl" in content_type:
            lines = [line for line in body.splitlines() if line.strip()]
            for line in lines:  # a line that is not JSON fails the request, as before
                try:
                    msgspec.json.decode(line)
                except msgspec.DecodeError as e:
                    raise not_json(line, e) from None
            return lines
        doc = _batch_body(body)
    except msgspec.ValidationError:
        raise ApiError(
            422, "invalid_input", 'expected {"items": [...]}, a JSON array, or NDJSON lines'
        ) from None
    except msgspec.DecodeError as e:
        raise not_json(body, e) from None
    return doc.items if isinstance(doc, _Envelope) else doc


def _ingest(
    container: Container, signals: list[Signal], idem: Idempotency | None, deadline: float
) -> BatchResult:
    """In a worker thread. A batch that waited for a thread past its deadline is not
    decided at all (deciding it would only queue a request the committer drops)."""
    if time.monotonic() > deadline:
        raise CommitExpired("not stored: the request waited past its deadline")
    return container.engagement.ingest(signals, idempotency=idem, deadline=deadline)
