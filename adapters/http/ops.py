"""Operations endpoints and command metrics: /metrics, /healthz, /readyz."""

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any

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

    probe = ReadinessProbe(container)

    @app.get("/readyz", tags=["operations"], dependencies=[PUBLIC])
    async def readyz() -> JSONResponse:
        """Ready to serve: the event store answers, no projection is failing, and every
        projection is within the lag bound (REELPULSE_READINESS_MAX_LAG_EVENTS). Answers
        within READY_TIMEOUT_SECONDS, also when the database does not: then 503. A
        projection that quarantined events is current: 200 with status `degraded` and
        the counts (adapters/projections/quarantine.py)."""
        status, body = await probe.answer()
        return JSONResponse(body, status_code=status)


READY_TIMEOUT_SECONDS = 1.0  # /readyz answers within this, whatever the database does


class ReadinessProbe:
    """The readiness check, run in a thread of its own and awaited at most
    READY_TIMEOUT_SECONDS. While a check hangs (a database that does not answer: a
    connect waits for its timeout), later probes wait on that same check instead of
    piling up threads behind it."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._lock = threading.Lock()
        self._running: Future[tuple[int, dict[str, Any]]] | None = None

    def _start(self) -> Future[tuple[int, dict[str, Any]]]:
        """The check in a daemon thread of its own: one that hangs on a database that does
        not answer never holds up the process's exit (an executor's thread would)."""
        future: Future[tuple[int, dict[str, Any]]] = Future()

        def run() -> None:
            try:
                future.set_result(self.check())
            except BaseException as e:  # check() answers every expected failure itself
                future.set_exception(e)

        threading.Thread(target=run, name="readyz", daemon=True).start()
        return future

    async def answer(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._running is None or self._running.done():
                self._running = self._start()
            running = self._running
        try:
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(running)), READY_TIMEOUT_SECONDS
            )
        except TimeoutError:
            error = f"no answer from the database within {READY_TIMEOUT_SECONDS:g} s"
            return 503, {
                "status": "unavailable",
                "checks": {"event_store": {"ok": False, "error": error}},
            }

    def check(self) -> tuple[int, dict[str, Any]]:
        container = self.container
        checks: dict[str, object] = {}
        try:
            head = container.head_position
            checks["event_store"] = {"ok": True, "head_position": head}
        except Exception as e:
            return 503, {
                "status": "unavailable",
                "checks": {"event_store": {"ok": False, "error": str(e)}},
            }
        bound = container.settings.readiness_max_lag_events
        try:
            health = container.projections.health()
        except Exception as e:
            checks["read_models"] = {"ok": False, "error": str(e)}
            return 503, {"status": "not_ready", "checks": checks}
        lags = {n: max(head - h.position, 0) for n, h in health.items()}
        # Failing now: its last batch failed and it has events to apply (a success clears
        # last_error), whatever its lag.
        failing = {n: h.last_error for n, h in health.items() if h.last_error and lags[n]}
        quarantined = {n: h.quarantined for n, h in health.items() if h.quarantined}
        lag_ok = all(lag <= bound for lag in lags.values())
        ok = lag_ok and not failing
        checks["projections"] = {
            "ok": ok,
            "max_lag_events": bound,
            "lag": lags,
            "failing": failing,
            "quarantined": quarantined,
        }
        if not ok:
            return 503, {"status": "not_ready", "checks": checks}
        return 200, {"status": "degraded" if quarantined else "ready", "checks": checks}
