"""Hot GraphQL reads answered from memory, in front of strawberry.

A hit skips parsing, validation, execution and SQL: it costs authentication, the rate
limit, one JSON parse of the request, a hash and a dict lookup, and sending bytes that
the uncached path produced earlier for the same request. The steps, in `serve`:

1. read the operation as strawberry will (POST JSON or GET query string; a batch, a form
   or anything odd goes the usual way untouched);
2. authenticate exactly as the GraphQL context does (a failure goes the usual way, which
   answers the 401 -- never from here);
3. key = hash of (method, role, subject, the canonical operation: query, operationName,
   variables, extensions): callers whose answers can differ never share an entry;
4. hit when the entry was computed from the read models' current version
   (adapters/graphql/cache_positions.py) and, with X-Consistency-Token T, every
   projection is at or past T; the caller's rate-limit bucket is charged as for any
   operation (an empty bucket goes the usual way, which answers the 429);
5. otherwise, when the operation is cacheable (adapters/graphql/cache_operations.py),
   run the usual path, pass its answer through untouched, and keep status, headers and
   body if it is a 200 without errors, under the version read *before* it ran (so the
   kept answer is never older than its version).

The middleware sits innermost among the app's middleware: the request id, body limit and
deadline of RequestContextMiddleware apply to hits and misses alike.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from prometheus_client import Counter
from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.auth.principal import Principal
from adapters.auth.ratelimit import RateLimited
from adapters.auth.service import Authenticator
from adapters.bootstrap import Container
from adapters.graphql.cache_operations import cacheable
from adapters.graphql.cache_positions import Positions, PositionsClock, database_reader
from adapters.graphql.cache_store import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES,
    AnswerStore,
    CachedAnswer,
)
from adapters.observability.metrics import GRAPHQL_OPERATIONS, REGISTRY

PATH = "/graphql"

CACHE_REQUESTS = Counter(
    "reelpulse_graphql_cache_total",
    "GraphQL HTTP requests by what the response cache did: hit (answered from memory), "
    "miss (cacheable, executed; kept when without errors), bypass (executed as usual)",
    ["result"],
    registry=REGISTRY,
)
HIT, MISS, BYPASS = (CACHE_REQUESTS.labels(r) for r in ("hit", "miss", "bypass"))
QUERIES = GRAPHQL_OPERATIONS.labels("query")  # a hit is an operation like any other


@dataclass(frozen=True, slots=True)
class Lookup:
    key: bytes
    query: str
    operation_name: str | None
    token: int | None
    principal: Principal


def operation_data(scope: Scope, headers: Headers, body: bytes) -> dict[str, Any] | None:
    """The single operation of the request as strawberry reads it, or None when the
    cache should not touch the request."""
    if scope["method"] == "POST":
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            return None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    else:
        data = dict(QueryParams(scope["query_string"]))
        for name in ("variables", "extensions"):
            if data.get(name):
                try:
                    data[name] = orjson.loads(data[name])
                except orjson.JSONDecodeError:
                    return None
    if not isinstance(data, dict):
        return None  # a batch: each operation is charged and answered on its own
    ok = (
        isinstance(data.get("query"), str)
        and isinstance(data.get("operationName"), str | None)
        and isinstance(data.get("variables"), dict | None)
        and isinstance(data.get("extensions"), dict | None)
    )
    return data if ok else None


def consistency_token(headers: Headers) -> tuple[bool, int | None]:
    """(usable, token) read as the GraphQL context reads X-Consistency-Token."""
    raw = headers.get("x-consistency-token")
    if not raw:
        return True, None
    if not raw.isdigit():
        return False, None  # the usual path answers BAD_CONSISTENCY_TOKEN
    try:
        return True, int(raw)
    except ValueError:
        return False, None


def request_key(method: str, principal: Principal, data: dict[str, Any]) -> bytes:
    subject = str(principal.subject_id) if principal.subject_id is not None else None
    canonical = orjson.dumps(
        [method, principal.role.value, subject, data], option=orjson.OPT_SORT_KEYS
    )
    return hashlib.blake2b(canonical, digest_size=16).digest()


def keepable(status: int, headers: tuple[tuple[bytes, bytes], ...], body: bytes) -> bool:
    """Only complete successes: a 200 JSON answer with data and no errors."""
    if status != 200 or (b"content-type", b"application/json") not in headers:
        return False
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(answer, dict) and "errors" not in answer and answer.get("data") is not None


class GraphQLResponseCache:
    """The cache's state and decisions; ResponseCacheMiddleware feeds it requests."""

    def __init__(self, auth: Authenticator, clock: PositionsClock, store: AnswerStore) -> None:
        self.auth = auth
        self.clock = clock
        self.store = store
        self.enabled = True  # off: every request takes the usual path (the reference)

    def lookup(self, scope: Scope, body: bytes) -> Lookup | None:
        headers = Headers(scope=scope)
        data = operation_data(scope, headers, body)
        if data is None:
            return None
        usable, token = consistency_token(headers)
        if not usable:
            return None
        try:
            principal = self.auth.authenticate(headers)
        except Exception:  # AuthError (401), or a key lookup that failed: the usual path
            return None
        try:
            key = request_key(scope["method"], principal, data)
        except TypeError:  # orjson.JSONEncodeError: variables nested deeper than it writes
            return None  # the usual path answers (or refuses) the request
        return Lookup(key, data["query"], data.get("operationName"), token, principal)

    def hit(self, lookup: Lookup, positions: Positions) -> CachedAnswer | None:
        answer = self.store.get(lookup.key)
        if answer is None or not (
            answer.version is positions.version or answer.version == positions.version
        ):
            return None
        if lookup.token is not None and positions.floor < lookup.token:
            return None  # the usual path waits for the token
        try:
            self.auth.charge(lookup.principal)
        except RateLimited:
            return None  # the usual path charges again and answers the 429
        return answer

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        if scope["method"] == "POST":
            buffered = await _buffer(receive)
            if buffered is None:
                return  # the client left
            body, receive = buffered
        lookup = self.lookup(scope, body)
        positions = await self.clock.current() if lookup is not None else None
        if lookup is None or positions is None:
            BYPASS.inc()
            await app(scope, receive, send)
            return
        answer = self.hit(lookup, positions)
        if answer is not None:
            HIT.inc()
            QUERIES.inc()
            await send({"type": "http.response.start", "status": answer.status,
                        "headers": list(answer.headers)})  # fmt: skip
            await send({"type": "http.response.body", "body": answer.body})
            return
        if not cacheable(lookup.query, lookup.operation_name):
            BYPASS.inc()
            await app(scope, receive, send)
            return
        MISS.inc()
        await self._execute_and_keep(app, scope, receive, send, lookup.key, positions)

    async def _execute_and_keep(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, key: bytes,
        positions: Positions,
    ) -> None:  # fmt: skip
        status, headers, parts, complete = 0, (), [], False

        async def capture(message: Message) -> None:
            nonlocal status, headers, complete
            if message["type"] == "http.response.start":
                # Copied before sending: outer middleware rewrites the message's headers.
                status, headers = message["status"], tuple(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        await app(scope, receive, capture)
        body = b"".join(parts)
        if complete and keepable(status, headers, body):
            self.store.put(key, CachedAnswer(positions.version, status, headers, body))


class ResponseCacheMiddleware:
    def __init__(self, app: ASGIApp, *, cache: GraphQLResponseCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == PATH
            and scope["method"] in ("GET", "POST")
            and self.cache.enabled
        ):
            await self.cache.serve(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _buffer(receive: Receive) -> tuple[bytes, Receive] | None:
    """The whole body (already read and limited by RequestContextMiddleware) and a
    receive that hands it on once."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    data, replayed = bytes(body), False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": data, "more_body": False}
        return await receive()

    return data, replay


def install_response_cache(
    app: FastAPI,
    container: Container,
    auth: Authenticator,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> GraphQLResponseCache:
    """Put the cache in front of /graphql (app.state.graphql_cache); `max_entries=0`
    leaves it off (every request takes the usual path)."""
    if app.middleware_stack is not None:
        raise RuntimeError("install the response cache before the app starts")
    read = database_reader(container.projections.engine, lambda: container.head_position)
    clock = PositionsClock(read, container.projections.names)
    container.projections.hub.add_listener(clock.published)
    cache = GraphQLResponseCache(auth, clock, AnswerStore(max(1, max_entries), max_bytes))
    cache.enabled = max_entries > 0
    # Appended, not add_middleware (which inserts outermost): innermost, so the request
    # id, body limit and deadline middleware wraps hits too, and the error handlers
    # inside still answer what the usual path raises.
    app.user_middleware.append(Middleware(ResponseCacheMiddleware, cache=cache))
    app.state.graphql_cache = cache
    return cache
