"""Mount the GraphQL schema on the FastAPI app (HTTP + graphql-transport-ws).

Every operation is authenticated: HTTP requests by their headers (401 without
credentials; the query page itself is public), WebSocket connections by their upgrade
headers or the connection_init payload ({"X-API-Key": ...} or {"Authorization":
"Bearer ..."}), else closed with 4403. Root fields are checked per role and operations
are rate limited by the AccessExtension. Cacheable reads are answered from memory while
the read models have not moved (cache.py), with the same checks."""

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from adapters.auth.principal import AuthError
from adapters.auth.service import Authenticator
from adapters.bootstrap import Container
from adapters.graphql.cache import install_response_cache
from adapters.graphql.context import GraphQLContext, Readers
from adapters.graphql.schema import build_schema

# The page a browser gets at /graphql in development: ReelPulse's own query page (strawberry's
# GraphiQL loads React and GraphiQL from unpkg.com; ReelPulse must work offline).
GRAPHQL_PAGE = Path(__file__).resolve().parents[1] / "http" / "static" / "graphql.html"


class AuthenticatedGraphQLRouter(GraphQLRouter[GraphQLContext, None]):
    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(GRAPHQL_PAGE.read_text(encoding="utf-8"))

    async def on_ws_connect(self, context: GraphQLContext) -> Any:
        if context.principal is not None:
            return await super().on_ws_connect(context)
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        headers = {str(k).lower(): str(v) for k, v in params.items()}
        try:
            context.principal = context.auth.authenticate(headers)
        except AuthError:
            raise ConnectionRejectionError() from None
        return await super().on_ws_connect(context)


def _ide_page(request: Request) -> bool:
    """A browser asking for the query page: no operation to run, nothing to protect."""
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


def mount_graphql(app: FastAPI, container: Container, auth: Authenticator) -> None:
    readers = Readers.build(container)
    development = container.settings.development

    async def context_getter(
        request: Request = None, websocket: WebSocket = None
    ) -> GraphQLContext:  # type: ignore[assignment]
        conn = request if request is not None else websocket
        raw = conn.headers.get("x-consistency-token") if conn is not None else None
        token, error = None, None
        if raw:
            if raw.isdigit():
                token = int(raw)
            else:
                error = "X-Consistency-Token must be a position (a non-negative integer)"
        principal = None
        if request is not None and not _ide_page(request):
            principal = auth.authenticate(request.headers)  # AuthError -> 401
        elif websocket is not None and (
            "x-api-key" in websocket.headers or "authorization" in websocket.headers
        ):
            try:
                principal = auth.authenticate(websocket.headers)
            except AuthError:
                principal = None  # the connection_init payload may still carry credentials
        return GraphQLContext(
            container=container,
            readers=readers,
            consistency_token=token,
            token_error=error,
            auth=auth,
            principal=principal,
        )

    router = AuthenticatedGraphQLRouter(
        build_schema(development=development),
        context_getter=context_getter,
        graphql_ide="graphiql" if development else None,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
    )
    app.include_router(router, prefix="/graphql", tags=["graphql"])
    # Hot reads answered from memory in front of the router (adapters/graphql/cache.py).
    install_response_cache(
        app,
        container,
        auth,
        max_entries=container.settings.graphql_cache_entries,
        max_bytes=container.settings.graphql_cache_bytes,
    )
