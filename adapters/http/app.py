"""The FastAPI application: command routes (REST). The GraphQL read side mounts beside it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from adapters.auth.policy import PUBLIC, allow
from adapters.auth.service import Authenticator
from adapters.bootstrap import Container
from adapters.erasure.http import erasure_router
from adapters.graphql.router import mount_graphql
from adapters.http import (
    routes_admin,
    routes_comments,
    routes_content,
    routes_engagement,
    routes_moderation,
)
from adapters.http.allow import AllowHeaderMiddleware
from adapters.http.deadline import DEADLINE_SECONDS
from adapters.http.errors import install_error_handlers
from adapters.http.middleware import RequestContextMiddleware
from adapters.http.openapi import complete_document, document_models, public_operations
from adapters.http.ops import install_ops
from adapters.http.pages import install_pages
from adapters.http.schemas import BODY_MODELS, ErrorResponse

DESCRIPTION = """
ReelPulse command API. Every command returns the aggregate id, its new version and
`position`, the global position of the last recorded event: pass it to the read side as
a consistency token. Send `Idempotency-Key` to make retries safe. Errors are JSON:
`{"error": {"code", "message", "request_id", ...}}` with 401 (no or bad credentials),
403 (role or object not allowed), 422 (invalid input), 404 (unknown aggregate), 409
(rule or version conflict), 413 (body or batch too large), 429 (rate limit; see
Retry-After).

Authenticate with `X-API-Key: <key>` or `Authorization: Bearer <API key or JWT>`. Roles:
ingest (engagement, reports, flags), creator (own profile, videos and appeals),
moderator (cases, suspensions), analyst (read-only aggregates), admin (everything).
"""


def create_app(
    container: Container,
    *,
    run_background: bool = True,
    deadline_seconds: float = DEADLINE_SECONDS,
) -> FastAPI:
    """The app around `container`. `deadline_seconds`: each request's deadline (tests
    shorten it; adapters/http/deadline.py)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if run_background:
            container.start_background()
        yield

    error_responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 422, 429)
    }
    # FastAPIOffline: FastAPI with /docs served from bundled files (FastAPI's own pages load
    # Swagger UI, ReDoc and fonts from CDNs: ReelPulse must work offline); /redoc: pages.py.
    app = FastAPIOffline(
        redoc_url=None,
        title="ReelPulse",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=error_responses,
    )
    app.state.container = container
    app.state.auth = Authenticator.from_settings(container.settings, container.read_engine)
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=container.settings.max_body_bytes,
        deadline_seconds=deadline_seconds,
        routes=app.router.routes,  # the routes that own their deadline are left alone
    )
    for module in (
        routes_content,
        routes_engagement,
        routes_moderation,
        routes_comments,
        routes_admin,
    ):
        app.include_router(module.router)
    app.include_router(erasure_router(dependencies=[allow()]))  # admin only
    max_items = container.settings.batch_max_items
    document_models(  # completed at the first request for it, when every route is in
        app,
        BODY_MODELS,
        lambda doc: complete_document(
            doc, batch_max_items=max_items, public=public_operations(app.router.routes)
        ),
    )
    mount_graphql(app, container, app.state.auth)
    install_ops(app, container)
    install_pages(app)  # /dashboard, /static, /favicon.ico, /redoc
    app.add_middleware(AllowHeaderMiddleware, routes=app.router.routes)

    @app.get("/", tags=["meta"], dependencies=[PUBLIC])
    def index() -> dict[str, str]:
        return {
            "name": "ReelPulse",
            "docs": "/docs",
            "openapi": "/openapi.json",
            "graphql": "/graphql",
        }

    return app
