"""Request-scoped helpers for the command routes."""

import hashlib
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import Depends, Header, Query, Request, Response

from adapters.auth.policy import principal_of
from adapters.auth.principal import Principal, Role, forbidden
from adapters.bootstrap import Container
from adapters.http.errors import ApiError
from adapters.http.schemas import CommandResponse
from commands.base import CommandResult, Idempotency

MAX_KEY_LENGTH = 255
MAX_WAIT_SECONDS = 5.0  # a route that waits or samples stays well inside the 10 s deadline


def wait_seconds_query(description: str) -> Any:
    """A query parameter of seconds a route spends waiting, 0..MAX_WAIT_SECONDS (422 beyond)."""
    return Query(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description=f"{description} (at most {MAX_WAIT_SECONDS:g} s, inside the 10 s "
        "request deadline)",
    )


async def get_container(request: Request) -> Container:  # async: no thread hop for an attribute
    return request.app.state.container  # type: ignore[no-any-return]


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(description="Retry-safe key: a retry with the same key returns the first result"),
]


def scoped_key(principal: Principal, method: str, path: str, key: str) -> str:
    """The key as stored: a SHA-256 (hex) of the caller, the route and the client's key, so
    that the same Idempotency-Key from two callers, or on two routes, names two records
    (as Stripe scopes keys by account). Nobody can replay, probe or use up another
    caller's keys, and no client key can collide with an internal one ("alert:<id>").
    Stored keys are looked up with this: its definition must not change."""
    scope = orjson.dumps([principal.key_id, method, path, key])  # unambiguous, any text
    return hashlib.sha256(scope).hexdigest()


def idempotency_for(
    principal: Principal, method: str, path: str, key: str | None, body: bytes
) -> Idempotency | None:
    """The caller's scoped key (422 if malformed) and a fingerprint of the request it was
    sent with: the method, path and the meaning of the body (canonical JSON), not its
    whitespace. Stored fingerprints are compared with this one: its definition must not
    change."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            422, "invalid_idempotency_key", "Idempotency-Key must be 1-255 printable characters"
        )
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    digest.update(f"{method} {path}\n".encode())
    digest.update(canonical)
    return Idempotency(key=scoped_key(principal, method, path, key), fingerprint=digest.hexdigest())


def request_idempotency(request: Request, key: str | None, body: bytes) -> Idempotency | None:
    """idempotency_for the authenticated caller of `request` (set by the route's policy)."""
    if key is None:
        return None
    return idempotency_for(principal_of(request), request.method, request.url.path, key, body)


async def get_idempotency(
    request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> Idempotency | None:
    if idempotency_key is None:
        return None
    body = await request.body()
    return request_idempotency(request, idempotency_key, body)


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


def act_as_creator(who: Principal, creator_id: UUID | None) -> None:
    """Object-level check: a creator key acts only as its own creator (admins as anyone)."""
    if who.role is not Role.CREATOR:
        return
    if creator_id is None or creator_id != who.subject_id:
        raise forbidden("a creator key may act only on its own creator account and videos")


def ensure_video_owner(who: Principal, c: Container, video_id: UUID) -> None:
    if who.role is Role.CREATOR:
        act_as_creator(who, c.content.get_video(video_id).creator_id)


def ensure_case_owner(who: Principal, c: Container, case_id: UUID) -> None:
    if who.role is Role.CREATOR:
        act_as_creator(who, c.moderation.get_case(case_id).creator_id)
