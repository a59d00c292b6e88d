"""Operations endpoints and command metrics: /metrics, /healthz, /readyz."""

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.auth.policy import PUBLIC
from adapters.bootstrap import Container
from adapters.observability.metrics import COMMAND_SECONDS, COMMANDS, REGISTRY, install_collector


def install_ops(app: FastAPI, container: Container) -> None:
    install_collector(container)

    @app.middleware("http")
    async def command_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        if route is not None and request.url.path.startswith("/v1/"):
            name = f"{request.method} {getattr(route, 'path', '?')}"
            status = response.status_code
            outcome = "ok" if status < 400 else "client_error" if status < 500 else "server_error"
            COMMANDS.labels(name, outcome).inc()
            COMMAND_SECONDS.labels(name).observe(time.perf_counter() - started)
        return response

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
