"""Request-scoped helpers for the command routes."""

import hashlib
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request, Response

from adapters.bootstrap import Container
from adapters.http.errors import ApiError
from adapters.http.schemas import CommandResponse
from commands.base import CommandResult, Idempotency

MAX_KEY_LENGTH = 255


def get_container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


async def get_idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(description="Retry-safe key: a retry with the same key returns the first result"),
    ] = None,
) -> Idempotency | None:
    if idempotency_key is None:
        return None
    if not 0 < len(idempotency_key) <= MAX_KEY_LENGTH or not idempotency_key.isprintable():
        raise ApiError(
            422, "invalid_idempotency_key", "Idempotency-Key must be 1-255 printable characters"
        )
    body = await request.body()
    try:  # fingerprint the meaning of the body, not its whitespace
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}\n".encode())
    digest.update(canonical)
    return Idempotency(key=idempotency_key, fingerprint=digest.hexdigest())


ContainerDep = Annotated[Container, Depends(get_container)]
IdempotencyDep = Annotated[Idempotency | None, Depends(get_idempotency)]


def respond(result: CommandResult, response: Response) -> CommandResponse:
    response.headers["X-Consistency-Token"] = str(result.position)
    if result.replayed:
        response.headers["Idempotency-Replayed"] = "true"
    return CommandResponse(
        id=result.id,
        version=result.version,
        position=result.position,
        replayed=result.replayed,
        details=dict(result.details),
    )
