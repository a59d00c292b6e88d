"""ASGI middleware: request ids, the request body size limit (413), and 503 when a
request gets no answer within the deadline (a database that does not answer).
Connection errors are answered 503 by the handler table (adapters/http/errors.py)."""

import asyncio
import logging
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.errors import error_body, request_id_var

log = logging.getLogger("reelpulse.http")

# Paths that never wait on the database, so no deadline (liveness, metrics, static files).
NO_DEADLINE = ("/healthz", "/metrics", "/static/")


class RequestContextMiddleware:
    """Gives each request an id (X-Request-ID in, or a new one) and enforces the body limit.

    The body is read up to the limit before the app runs, so an oversized request is
    answered with 413 without being parsed, whatever its Content-Length claims.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, deadline_seconds: float = 10.0
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # The event store library retries a lost connection for up to ~50 s per call; a
        # request with no response by then is answered 503 instead of hanging the client.
        self.deadline_seconds = deadline_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = incoming if incoming.isprintable() and incoming else uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(send_with_id)
                return
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.max_body_bytes:
                    await self._too_large(send_with_id)
                    return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

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
        if not str(scope.get("path", "")).startswith(NO_DEADLINE):
            done, _ = await asyncio.wait({task}, timeout=self.deadline_seconds)
            if not done and not started:
                task.cancel()  # its worker thread finishes on its own; nobody waits
                log.warning("no response in %gs: answering 503", self.deadline_seconds)
                await self._unavailable(send, "request_timeout")
                return
        await task

    async def _unavailable(self, send: Any, code: str) -> None:
        from adapters.observability.metrics import ERRORS

        ERRORS.labels("503", code).inc()
        payload = orjson.dumps(
            error_body(code, "the database is unavailable or not answering; retry shortly")
        )
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
