"""One table maps expected errors to HTTP statuses; everything else is masked and logged."""

import contextvars
import logging
from typing import Any

import psycopg
import sqlalchemy.exc
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.auth.principal import AuthError
from adapters.auth.ratelimit import RateLimited
from commands.appending import CommitExpired
from domain.errors import DomainError, InvalidValue, InvariantViolation, NotFound, VersionConflict

log = logging.getLogger("reelpulse.http")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Errors that mean "the database cannot be reached", whichever layer raised them: the
# event store (eventsourcing), the read models (SQLAlchemy) or a raw psycopg connection.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
)

# Most specific class first.
STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (VersionConflict, 409),
    (NotFound, 404),
    (InvalidValue, 422),
    (InvariantViolation, 409),
    (DomainError, 409),
]


class ApiError(Exception):
    """An error raised by the HTTP layer itself (bad header, oversized batch, a body that
    fails validation: `fields` as in FastAPI's 422, [{"field", "message", "type"}])."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields


BODY_PARSE_ERROR = "There was an error parsing the body"  # fastapi.routing's detail
NOT_STORED = "not_stored_timeout"  # 503: the deadline passed before the commit; nothing stored


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id_var.get()}
    body.update({k: v for k, v in extra.items() if v})
    return {"error": body}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """Every error response goes through here: one body shape, one metric."""
    from adapters.observability.metrics import ERRORS

    ERRORS.labels(str(status), code).inc()
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def status_for(error: DomainError) -> int:
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(error, cls))


def _field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    fields = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        fields.append(
            {"field": loc, "message": err.get("msg", "invalid"), "type": err.get("type", "")}
        )
    return fields


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        details = {k: str(v) for k, v in exc.details.items()}
        return error_response(status_for(exc), exc.code, exc.message, details=details)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, fields=exc.fields)

    @app.exception_handler(CommitExpired)
    async def not_stored(_: Request, exc: CommitExpired) -> JSONResponse:
        # The application's word that nothing was stored (the request's deadline passed
        # before its commit began): the one 503 a command route answers for a timeout.
        return error_response(
            503,
            NOT_STORED,
            "not stored: the command could not be committed within the request deadline "
            "(the server is overloaded or the database slow); nothing was recorded, it is "
            "safe to retry",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="reelpulse"'} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(RateLimited)
    async def rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return error_response(429, "rate_limited", str(exc), headers={"Retry-After": exc.header})

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc)
        code = (
            "invalid_json" if any(f["type"] == "json_invalid" for f in fields) else "invalid_input"
        )
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(422, code, summary, fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:
            # FastAPI's answer to a body it cannot decode (e.g. not UTF-8): it is invalid
            # JSON like any other, so it gets the documented 422 invalid_json.
            return error_response(422, "invalid_json", "body is not valid UTF-8 JSON")
        codes = {404: "route_not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        if timed_out(exc):
            return await deadline_exceeded(request, exc)
        log.warning("database unavailable: %s", exc)
        return error_response(
            503,
            "store_unavailable",
            "the database is unavailable; retry shortly",
            headers={"Retry-After": "1"},
        )

    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, store_unavailable)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, deadline_exceeded)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error (request %s)", request_id_var.get())
        message = "an unexpected error occurred; it has been logged"
        if request.url.path == GRAPHQL_PATH:
            return graphql_error_response(500, "INTERNAL_SERVER_ERROR", message)
        return error_response(500, "internal_error", message)


GRAPHQL_PATH = "/graphql"
DEADLINE_CODE = "request_timeout"  # documented (README, docs/reliability.md): kept


def timed_out(exc: BaseException) -> bool:
    """A database call cut by a timeout (a statement timeout or a cancelled query, a pool
    that had no connection free in time): the database answered, it is not unavailable."""
    seen: BaseException | None = exc
    for _ in range(8):  # the causes: eventsourcing -> SQLAlchemy -> psycopg
        if seen is None:
            return False
        if isinstance(seen, psycopg.errors.QueryCanceled | sqlalchemy.exc.TimeoutError):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


async def deadline_exceeded(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database call timed out: %s", exc)
    message = (
        "deadline exceeded: a database call did not finish in time (the server is busy "
        "or the query too slow); retry shortly"
    )
    if request.url.path == GRAPHQL_PATH:
        return graphql_error_response(503, "DEADLINE_EXCEEDED", message, {"Retry-After": "1"})
    return error_response(503, DEADLINE_CODE, message, headers={"Retry-After": "1"})


def graphql_body(code: str, message: str) -> dict[str, Any]:
    """An error before or around execution, in the GraphQL response format."""
    extensions = {"code": code, "request_id": request_id_var.get()}
    return {"data": None, "errors": [{"message": message, "extensions": extensions}]}


def graphql_error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    from adapters.observability.metrics import ERRORS

    ERRORS.labels(str(status), code.lower()).inc()
    return JSONResponse(graphql_body(code, message), status_code=status, headers=headers)
