"""Operations endpoints and command metrics: /metrics, /healthz, /readyz."""

import time

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.auth.policy import PUBLIC
from adapters.bootstrap import Container
from adapters.observability.metrics import COMMAND_SECONDS, COMMANDS, REGISTRY, install_collector


class CommandMetricsMiddleware:
    """Counts and times /v1 calls by route template and outcome. Plain ASGI: it only
    watches the response's status line (a `BaseHTTPMiddleware` would re-stream every
    response through a task and a queue, a measurable share of a small request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")  # set by the router on this same scope
            if route is not None:
                name = f"{scope['method']} {getattr(route, 'path', '?')}"
                outcome = (
                    "ok" if status < 400 else "client_error" if status < 500 else "server_error"
                )
                COMMANDS.labels(name, outcome).inc()
                COMMAND_SECONDS.labels(name).observe(time.perf_counter() - started)


def install_ops(app: FastAPI, container: Container) -> None:
    install_collector(container)
    app.add_middleware(CommandMetricsMiddleware)

    @app.get("/metrics", tags=["operations"], include_in_schema=True, dependencies=[PUBLIC])
    def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["operations"], dependencies=[PUBLIC])
    def healthz() -> dict[str, object]:
        """The process is up (no dependencies checked)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], dependencies=[PUBLIC])
    def readyz() -> JSONResponse:
        """Ready to serve: the event store answers and every projection is within the lag
        bound (REELPULSE_READINESS_MAX_LAG_EVENTS)."""
        checks: dict[str, object] = {}
        ready = True
        try:
            head = container.head_position
            checks["event_store"] = {"ok": True, "head_position": head}
        except Exception as e:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "checks": {"event_store": {"ok": False, "error": str(e)}},
                },
                status_code=503,
            )
        bound = container.settings.readiness_max_lag_events
        try:
            positions = container.projections.positions()
        except Exception as e:
            positions, ready = {}, False
            checks["read_models"] = {"ok": False, "error": str(e)}
        lags = {n: max(head - positions.get(n, 0), 0) for n in container.projections.names}
        projections_ok = all(lag <= bound for lag in lags.values())
        ready = ready and projections_ok
        checks["projections"] = {"ok": projections_ok, "max_lag_events": bound, "lag": lags}
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )
