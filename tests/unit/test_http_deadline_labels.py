"""A deadline is a deadline: a request that misses it, a cancelled statement or a pool
with no free connection is answered "deadline exceeded" (503 request_timeout), never "the
database is unavailable", which only a database that cannot be reached gets; over
/graphql in the GraphQL error format. In-process ASGI apps: no server, no database."""

import asyncio

import psycopg.errors
import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.http.errors import install_error_handlers
from adapters.http.middleware import RequestContextMiddleware


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/thing")
    @app.post("/graphql")
    def fail() -> None:
        raise error

    return app


def statement_cancelled() -> Exception:
    cancelled = psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, cancelled)


@pytest.mark.parametrize(
    "error",
    [statement_cancelled(), sqlalchemy.exc.TimeoutError("QueuePool limit reached")],
    ids=["statement cancelled", "pool timeout"],
)
def test_a_timed_out_database_call_is_a_deadline(error: Exception) -> None:
    with TestClient(app_raising(error), raise_server_exceptions=False) as client:
        rest = client.get("/v1/thing")
        graphql = client.post("/graphql", json={"query": "{ __typename }"})
    assert rest.status_code == 503, rest.text
    assert rest.json()["error"]["code"] == "request_timeout"
    assert "deadline exceeded" in rest.json()["error"]["message"]
    assert graphql.status_code == 503, graphql.text
    assert graphql.json()["errors"][0]["extensions"]["code"] == "DEADLINE_EXCEEDED"
    for answer in (rest, graphql):
        assert "unavailable" not in answer.text


def test_an_unreachable_database_is_still_unavailable() -> None:
    refused = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, psycopg.OperationalError("connection refused")
    )
    with TestClient(app_raising(refused), raise_server_exceptions=False) as client:
        r = client.get("/v1/thing")
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"


@pytest.mark.parametrize("path", ["/v1/thing", "/graphql"])
def test_a_missed_request_deadline_says_deadline_exceeded(path: str) -> None:
    async def never_answers(scope, receive, send) -> None:
        await asyncio.Event().wait()  # cancelled by the middleware at the deadline

    app = RequestContextMiddleware(never_answers, max_body_bytes=1024, deadline_seconds=0.05)
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=10))
    assert messages[0]["status"] == 503
    body = messages[1]["body"].decode()
    assert "deadline exceeded" in body and "unavailable" not in body
    if path == "/graphql":
        assert '"code":"DEADLINE_EXCEEDED"' in body and '"errors"' in body
    else:
        assert '"code":"request_timeout"' in body
