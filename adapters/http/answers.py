"""Command answers as JSON bytes (orjson), skipping FastAPI's response-model round trip.

The shapes are schemas.CommandResponse and schemas.BatchResponse (the routes keep them as
`response_model`, so OpenAPI documents them; FastAPI passes a returned Response through
untouched). tests/e2e/test_engagement_http.py checks answers against those models.
"""

from collections.abc import Sequence

import orjson
from starlette.responses import Response

from commands.base import CommandResult
from commands.engagement import BatchResult, ItemResult

JSON = "application/json"


def command_response(result: CommandResult, status: int = 200) -> Response:
    body = orjson.dumps(
        {
            "id": result.id,
            "version": result.version,
            "position": result.position,
            "replayed": result.replayed,
            "details": dict(result.details),
        }
    )
    headers = _headers(result.position, result.replayed)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def batch_response(
    result: BatchResult, indexes: Sequence[int], invalid: dict[int, str], count: int
) -> Response:
    """The batch's answer: the application's results (for the valid items, whose request
    indexes are `indexes`) merged with the invalid items' rejections, in request order."""
    items: list[dict[str, object] | None] = [None] * count
    for r in result.items:
        items[indexes[r.index]] = _item(r, indexes[r.index])
    for index, message in invalid.items():
        items[index] = _item(
            ItemResult(index, "rejected", error="invalid_input", message=message), index
        )
    counts = {"recorded": 0, "duplicate": 0, "rejected": 0}
    for item in items:
        counts[item["status"]] += 1  # type: ignore[index]
    body = orjson.dumps(
        {
            "position": result.position,
            "replayed": result.replayed,
            "recorded": counts["recorded"],
            "duplicates": counts["duplicate"],
            "rejected": counts["rejected"],
            "items": items,
        }
    )
    return Response(body, media_type=JSON, headers=_headers(result.position, result.replayed))


def _headers(position: int, replayed: bool) -> dict[str, str]:
    """Every command answer's: the consistency token, and whether it was replayed."""
    headers = {"X-Consistency-Token": str(position)}
    if replayed:
        headers["Idempotency-Replayed"] = "true"
    return headers


def _item(r: ItemResult, index: int) -> dict[str, object]:
    return {
        "index": index,
        "status": r.status,
        "id": r.id,  # orjson writes a UUID as its string (None as null)
        "version": r.version,
        "error": r.error,
        "message": r.message,
        "details": r.details,
    }
