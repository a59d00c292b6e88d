"""405 answers list every method of the path in `Allow`.

Starlette answers 405 with the methods of the first route whose path matches, but a path
may have one route per method (GET and DELETE /v1/admin/rebuilds/{job_id}, strawberry's
GET and POST /graphql), so `Allow` named only one of them (RFC 9110 15.5.6: it lists the
methods the resource supports).
"""

import re
from collections.abc import Sequence

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AllowHeaderMiddleware:
    """Plain ASGI: rewrites only the status line's headers of a 405."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        self._table: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = self.allowed(scope["path"])
                if methods:
                    headers = [(k, v) for k, v in message.get("headers", []) if k != b"allow"]
                    headers.append((b"allow", ", ".join(methods).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)

    def allowed(self, path: str) -> list[str]:
        """The methods of every route whose path template matches `path` (sorted)."""
        if self._table is None:  # built on first use: every route is added by then
            self._table = method_table(self.routes)
        return sorted({m for regex, methods in self._table if regex.match(path) for m in methods})


def method_table(routes: Sequence[BaseRoute]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path regex, methods) of every effective route (included routers flattened)."""
    table = []
    for route in iter_route_contexts(routes):
        methods = getattr(route.original_route, "methods", None)
        if route.path and methods:
            table.append((compile_path(route.path)[0], frozenset(methods)))
    return table
