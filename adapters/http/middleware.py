"""ASGI middleware: request ids, the request body size limit (413), and the request
deadline (adapters/http/deadline.py): 503 `request_timeout` ("deadline exceeded") when a
request gets no answer in time, except on routes that own their deadline.
Connection errors are answered 503 by the handler table (adapters/http/errors.py)."""

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.deadline import DEADLINE_SECONDS, SCOPE_KEY, owned_matcher
from adapters.http.errors import (
    DEADLINE_CODE,
    GRAPHQL_PATH,
    error_body,
    graphql_body,
    request_id_var,
)

log = logging.getLogger("reelpulse.http")

# Paths that never wait on the database, so no deadline (liveness, metrics, static files).
NO_DEADLINE = ("/healthz", "/metrics", "/static/")


class RequestContextMiddleware:
    """Gives each request an id (X-Request-ID in, or a new one) and enforces the body limit.

    The body is read up to the limit before the app runs, so an oversized request is
    answered with 413 without being parsed, whatever its Content-Length claims.
    `routes` are the app's routes: those built as `DeadlineRoute` are never cut.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        deadline_seconds: float = DEADLINE_SECONDS,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # The event store library retries a lost connection for up to ~50 s per call; a
        # request with no response by then is answered 503 instead of hanging the client.
        self.deadline_seconds = deadline_seconds
        self.owns_deadline = owned_matcher(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = time.monotonic() + self.deadline_seconds
        incoming, declared = "", None
        for name, value in scope["headers"]:  # two headers wanted: no dict of all of them
            if name == b"x-request-id":
                incoming = value.decode("latin-1")[:64]
            elif name == b"content-length":
                declared = value
        # os.urandom, not uuid4(): the same 32 hex digits without building a UUID.
        request_id = incoming if incoming.isprintable() and incoming else os.urandom(16).hex()
        token = request_id_var.set(request_id)
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(send_with_id)
                return
            chunks: list[bytes] = []
            size, more = 0, True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
                more = message.get("more_body", False)
                if size > self.max_body_bytes:
                    await self._too_large(send_with_id)
                    return
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one: no copy
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            if scope["path"].startswith(NO_DEADLINE) or self.owns_deadline(scope):
                await self.app(scope, replay, send_with_id)
            else:
                await self._guarded(scope, replay, send_with_id)
        finally:
            request_id_var.reset(token)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; answer 503 + Retry-After when it has not started a response within
        the deadline (a streaming response is never cut off)."""
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, send_tracking))
        remaining = scope[SCOPE_KEY] - time.monotonic()
        done, _ = await asyncio.wait({task}, timeout=max(0.0, remaining))
        if not done and not started:
            task.cancel()  # its worker thread finishes on its own; nobody waits
            log.warning("no response in %gs: answering 503", self.deadline_seconds)
            await self._deadline_exceeded(scope, send)
            return
        await task

    async def _deadline_exceeded(self, scope: Scope, send: Any) -> None:
        """503 + Retry-After for a request with no answer by its deadline: the deadline was
        exceeded, nothing more is known (a slow query, a busy server or a database that
        does not answer), so the answer says exactly that. Its own code, never
        `store_unavailable` (errors.py: a database that refused a connection)."""
        message = (
            f"deadline exceeded: no answer within {self.deadline_seconds:g} s. A command may "
            "still complete: retry it with the same Idempotency-Key"
        )
        from adapters.observability.metrics import ERRORS

        if scope["path"] == GRAPHQL_PATH:
            ERRORS.labels("503", "deadline_exceeded").inc()
            payload = orjson.dumps(graphql_body("DEADLINE_EXCEEDED", message))
        else:
            ERRORS.labels("503", DEADLINE_CODE).inc()
            payload = orjson.dumps(error_body(DEADLINE_CODE, message))
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _too_large(self, send: Any) -> None:
        from adapters.observability.metrics import ERRORS

        ERRORS.labels("413", "payload_too_large").inc()
        payload = orjson.dumps(
            error_body(
                "payload_too_large",
                f"request body exceeds the limit of {self.max_body_bytes} bytes",
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": payload})
