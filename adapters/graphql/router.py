"""Mount the GraphQL schema on the FastAPI app (HTTP + graphql-transport-ws).

Every operation is authenticated: HTTP requests by their headers (401 without
credentials; the query page itself is public), WebSocket connections by their upgrade
headers or the connection_init payload ({"X-API-Key": ...} or {"Authorization":
"Bearer ..."}), else closed with 4403. Root fields are checked per role and operations
are rate limited by the AccessExtension. Cacheable reads are answered from memory while
the read models have not moved (cache.py), with the same checks.

Every answer over HTTP is in the GraphQL format, `{"errors": [{"message", "extensions":
{"code"}}]}`, also for a request that never reaches an operation: a body that is not
JSON, not UTF-8, nested deeper than the parser takes, not an object (or a list of
objects), or sent without the JSON content type is a 400 with code BAD_REQUEST (strawberry
answers some of these with plain text and let others escape as a 500); so is a request
whose members have the wrong types (GraphQL over HTTP: `query` a string, `operationName`
a string or null, `variables` and `extensions` objects or null), which strawberry checks
only in part, and not in a batch."""

from typing import Any

import orjson
from cross_web import HTTPException
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse
from graphql import ExecutionResult, GraphQLError, parse
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET

from adapters.auth.principal import AuthError
from adapters.auth.service import Authenticator
from adapters.bootstrap import Container
from adapters.graphql.cache import install_response_cache
from adapters.graphql.consistency import parse_token
from adapters.graphql.context import GraphQLContext, Readers
from adapters.graphql.cost import cost_error, operation_cost
from adapters.graphql.schema import MAX_TOKENS, build_schema
from adapters.http.errors import graphql_error_response
from adapters.http.pages import STATIC

# The page a browser gets at /graphql in development: ReelPulse's own query page (strawberry's
# GraphiQL loads React and GraphiQL from unpkg.com; ReelPulse must work offline).
GRAPHQL_PAGE = STATIC / "graphql.html"


# Codes of the HTTP-level errors strawberry raises before any operation runs.
HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def http_error(status: int, message: str) -> JSONResponse:
    """An error that stopped the request before any operation, in the GraphQL format."""
    headers = {"Allow": "GET, POST"} if status == 405 else None
    return graphql_error_response(status, HTTP_CODES.get(status, "HTTP_ERROR"), message, headers)


# GraphQL over HTTP, "Request parameters": each member's JSON type (null: not given; a
# missing query is answered by strawberry, "No GraphQL query found in the request").
MEMBER_TYPES = (
    ("query", "query", str, "a string"),
    ("operationName", "operation_name", str, "a string or null"),
    ("variables", "variables", dict, "an object or null"),
    ("extensions", "extensions", dict, "an object or null"),
)


def check_request_types(data: GraphQLRequestData | list[GraphQLRequestData]) -> None:
    """HTTPException 400 naming the member (and the batch index) of the first member whose
    JSON type GraphQL over HTTP does not allow, e.g. `operationName: {}`."""
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        for member, attribute, kind, expected in MEMBER_TYPES:
            value = getattr(item, attribute)
            if value is not None and not isinstance(value, kind):
                where = f"operation {index}: " if isinstance(data, list) else ""
                raise HTTPException(400, f"{where}`{member}` must be {expected}")


class AuthenticatedGraphQLRouter(GraphQLRouter[GraphQLContext, None]):
    def __init__(self, *args: Any, max_cost: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_cost = max_cost

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as e:  # strawberry would answer these with plain text
            return http_error(e.status_code, e.reason)

    def decode_json(self, data: str | bytes) -> object:
        """Any body the parser cannot take is the client's error (400), never a 500:
        orjson refuses nesting deeper than 1024 levels (json.loads raised RecursionError)
        and invalid UTF-8 with the same JSONDecodeError."""
        try:
            return orjson.loads(data)
        except (ValueError, RecursionError) as e:
            raise HTTPException(400, f"the body is not valid JSON: {e}") from None

    async def parse_http_body(self, request: Any) -> Any:
        try:
            data = await super().parse_http_body(request)
        except HTTPException as e:
            if e.reason == "Unsupported content type":
                raise HTTPException(
                    400, "POST /graphql takes a JSON body: send Content-Type: application/json"
                ) from None
            raise
        except (AttributeError, TypeError):  # `.get` of a JSON value that is not an object
            raise HTTPException(
                400,
                "the body must be a GraphQL request (a JSON object with `query`) or a list of them",
            ) from None
        check_request_types(data)
        return data

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        """A batch costs the sum of its operations: over the limit, none of them runs
        (each operation is also checked alone, after validation, by the extension)."""
        data = kwargs.get("request_data")
        if isinstance(data, list):
            cost = sum(_unvalidated_cost(self.schema._schema, item) for item in data)
            if cost > self.max_cost:
                error = cost_error(cost, self.max_cost, batch=True)
                return [ExecutionResult(data=None, errors=[error]) for _ in data]
        return await super().execute_operation(*args, **kwargs)

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


def _unvalidated_cost(schema: Any, item: Any) -> int:
    """The cost of one operation of a batch before it is validated: a text that does not
    parse costs nothing here (its own execution answers the syntax error)."""
    try:
        document = parse(item.query or "", no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:  # a syntax error, too deep, or over the token limit
        return 0
    variables = item.variables if isinstance(item.variables, dict) else None
    return operation_cost(schema, document, item.operation_name, variables)


def _ide_page(request: Request) -> bool:
    """A browser asking for the query page: no operation to run, nothing to protect."""
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


def mount_graphql(app: FastAPI, container: Container, auth: Authenticator) -> None:
    readers = Readers.build(container)
    settings = container.settings
    development = settings.development

    async def context_getter(
        request: Request = None, websocket: WebSocket = None
    ) -> GraphQLContext:  # type: ignore[assignment]
        conn = request if request is not None else websocket
        raw = conn.headers.get("x-consistency-token") if conn is not None else None
        token, error = parse_token(raw)
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
        build_schema(
            development=development,
            max_cost=settings.graphql_max_cost,
            introspection=settings.graphql_introspection,
        ),
        context_getter=context_getter,
        graphql_ide="graphiql" if development else None,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        max_cost=settings.graphql_max_cost,
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
