"""GraphQL over HTTP against what an outside test threw at it (issue 15): malformed bodies,
a query whose cost the depth/alias/token limits let through, consistency tokens the store
never handed out, and production mode (no introspection, no query page in the banner).

The malformed bodies and the costly query run against a real `reelpulse serve` (uvicorn):
the defects were a 500 that dropped the keep-alive connection, and a health check that
stalled behind a query; both are properties of the served process."""

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from support.auth import DEV_API_KEY, HEADERS
from typer.testing import CliRunner

from adapters.bootstrap import bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings
from e2e.servers import free_port, start_server

VIDEOS = 100  # one creator's: the nested `creator { videos(first: 100) }` finds them all
# The outside test's query: 15 aliases (the alias limit) of videos with their creator's
# videos; within the depth and token limits, it asks for 15 * 100 * 100 videos.
ATTACK = (
    "{ "
    + " ".join(
        f"a{i}: videos(first: 100) {{ edges {{ node {{ id caption creator {{ "
        "videos(first: 100) { edges { node { id caption } } } } } } }"
        for i in range(15)
    )
    + " }"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = Path(tmp_path_factory.mktemp("hardening")) / "store.db"
    port = free_port()
    proc = start_server(f"sqlite:///{db}", port, timeout=120)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
            r = client.post(
                "/v1/creators", json={"handle": "many", "display_name": "Many", "region": "SE"}
            )
            creator = r.json()["id"]
            for i in range(VIDEOS):
                r = client.post(
                    "/v1/videos",
                    json={"creator_id": creator, "caption": f"v{i}", "duration_seconds": 9},
                )
                assert r.status_code == 201, r.text
            position = r.json()["position"]
            # The read models hold every video before the tests ask for them.
            r = client.post(
                "/graphql",
                json={"query": "{ summary { videos } }"},
                headers={"X-Consistency-Token": str(position)},
            )
            assert r.json()["data"]["summary"]["videos"] == VIDEOS, r.text
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _post(conn: http.client.HTTPConnection, body: bytes, content_type: str | None) -> tuple:
    headers = {"X-API-Key": DEV_API_KEY}
    if content_type is not None:
        headers["Content-Type"] = content_type
    conn.request("POST", "/graphql", body=body, headers=headers)
    response = conn.getresponse()
    return response, response.read()


def _nested_variables(levels: int) -> bytes:
    value = "[" * levels + "]" * levels
    return b'{"query": "{ __typename }", "variables": {"v": ' + value.encode() + b"}}"


# (what, body, content type): bodies the JSON parser or the request shape cannot take.
MALFORMED = [
    ("nested 100,000 levels", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("variables nested 5,000 levels", _nested_variables(5000), "application/json"),
    ("invalid UTF-8", b'{"query": "{ __typename \xff\xfe }"}', "application/json"),
    ("no content type", b'{"query": "{ __typename }"}', None),
    ("plain text", b"{ __typename }", "text/plain"),
    ("not an object", b'"{ __typename }"', "application/json"),
    ("a batch of numbers", b"[1, 2]", "application/json"),
    ("not JSON", b"{query: __typename", "application/json"),
]


@pytest.mark.parametrize(("what", "body", "content_type"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_body_the_parser_cannot_take_is_a_graphql_400_on_a_kept_connection(
    server: str, what: str, body: bytes, content_type: str | None
) -> None:
    conn = http.client.HTTPConnection(server.removeprefix("http://"), timeout=30)
    try:
        response, payload = _post(conn, body, content_type)
        assert response.status == 400, (what, response.status, payload[:300])
        assert response.getheader("content-type") == "application/json"
        error = json.loads(payload)["errors"][0]
        assert error["message"] and error["extensions"]["code"] == "BAD_REQUEST", error
        assert not response.will_close, "the keep-alive connection was dropped"
        # The same connection answers the next request.
        response, payload = _post(conn, b'{"query": "{ __typename }"}', "application/json")
        assert response.status == 200, payload[:300]
        assert json.loads(payload) == {"data": {"__typename": "Query"}}
    finally:
        conn.close()


def test_variables_nested_deeper_than_the_cache_key_writes_are_not_a_5xx(server: str) -> None:
    """1,000 levels: valid JSON (orjson reads 1,024) that the response cache's key (orjson
    writes 254) could not hold; the unused variable is ignored, as GraphQL says."""
    conn = http.client.HTTPConnection(server.removeprefix("http://"), timeout=30)
    try:
        response, payload = _post(conn, _nested_variables(1000), "application/json")
        assert response.status == 200, payload[:300]
        assert json.loads(payload) == {"data": {"__typename": "Query"}}
    finally:
        conn.close()


def test_a_costly_query_is_refused_naming_its_cost_and_the_limit(server: str) -> None:
    r = httpx.post(f"{server}/graphql", json={"query": ATTACK}, headers=HEADERS, timeout=30)
    body = r.json()
    assert body["data"] is None, f"{len(r.content)} bytes of data"
    error = body["errors"][0]
    assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED", error
    assert error["extensions"]["limit"] == 10_000
    assert error["extensions"]["cost"] > 10_000
    assert str(error["extensions"]["cost"]) in error["message"]
    print(
        f"\nthe outside test's query: cost {error['extensions']['cost']:,} > limit 10,000, "
        f"refused in {r.elapsed.total_seconds() * 1000:.0f} ms ({len(r.content)} bytes)"
    )


def test_a_batch_costs_the_sum_of_its_operations(server: str) -> None:
    page = "videos(first: 100) { edges { node { id caption creator { handle } } } }"
    operation = {"query": f"{{ a: {page} b: {page} }}"}  # 1,202: well within the limit alone
    alone = httpx.post(f"{server}/graphql", json=operation, headers=HEADERS, timeout=30)
    assert "errors" not in alone.json(), alone.text[:300]
    r = httpx.post(f"{server}/graphql", json=[operation] * 10, headers=HEADERS, timeout=30)
    answers = r.json()
    assert len(answers) == 10
    for answer in answers:
        assert answer["data"] is None
        assert answer["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
        assert answer["errors"][0]["extensions"]["cost"] == 10 * 1202


def test_health_checks_answer_while_a_costly_batch_is_sent(server: str) -> None:
    """The outside test's batch of ten costly operations: it stalled /healthz for 4 s and
    ran into the request deadline, answered as 'the database is unavailable'. Now it is
    refused before it runs, with no 5xx, and /healthz keeps answering within a second."""
    outcome: dict[str, httpx.Response] = {}

    def attack() -> None:
        outcome["batch"] = httpx.post(
            f"{server}/graphql", json=[{"query": ATTACK}] * 10, headers=HEADERS, timeout=60
        )

    sender = threading.Thread(target=attack)
    sender.start()
    slowest = 0.0
    with httpx.Client(base_url=server, timeout=30) as client:
        while sender.is_alive() or not slowest:
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
    sender.join(timeout=60)
    batch = outcome["batch"]
    assert batch.status_code < 500, batch.text[:300]
    assert "database is unavailable" not in batch.text
    assert slowest < 1.0, f"/healthz took {slowest:.1f} s"
    print(
        f"\nten costly operations in one batch: {batch.status_code} in "
        f"{batch.elapsed.total_seconds():.2f} s; /healthz at most {slowest * 1000:.0f} ms"
    )


# -- consistency tokens the store never handed out ------------------------------------------


def _with_token(client: TestClient, token: str | bytes) -> httpx.Response:
    return client.post(
        "/graphql",
        json={"query": "{ summary { creators } }"},
        headers={"X-Consistency-Token": token},
    )


def test_a_token_beyond_the_head_is_answered_at_once(served) -> None:
    client, container = served
    r = client.post(
        "/v1/creators", json={"handle": "ahead", "display_name": "Ahead", "region": "SE"}
    )
    position = r.json()["position"]
    assert container.head_position == position
    for token in (position + 1, 10**18):
        r = _with_token(client, str(token))
        assert r.status_code == 400, r.text
        error = r.json()["errors"][0]
        assert error["extensions"]["code"] == "CONSISTENCY_TOKEN_AHEAD", error
        assert error["extensions"]["head"] == position
    # At or below the head the query waits for the projections as before, and answers.
    assert _with_token(client, str(position)).json()["data"]["summary"]["creators"] == 1


@pytest.mark.parametrize("token", ["1e30", "²".encode("latin-1"), "1" * 5000, "-1", "0x10"])
def test_a_garbage_token_is_a_400(served, token: str | bytes) -> None:
    client, _ = served
    r = _with_token(client, token)
    assert r.status_code == 400, r.text[:300]
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_CONSISTENCY_TOKEN"


# -- production mode -------------------------------------------------------------------
def _introspect(tmp_path: Path, **settings: object) -> httpx.Response:
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", **settings))
    try:
        with TestClient(create_app(container, run_background=False), headers=HEADERS) as c:
            typename = c.post("/graphql", json={"query": "{ __typename }"})
            assert typename.json() == {"data": {"__typename": "Query"}}
            return c.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    finally:
        container.close()


def test_production_mode_answers_no_introspection(tmp_path: Path) -> None:
    r = _introspect(tmp_path, development=False)
    assert r.json()["data"] is None
    assert "introspection" in r.json()["errors"][0]["message"].lower()
    assert _introspect(tmp_path, development=True).json()["data"]["__schema"]["types"]
    on = _introspect(tmp_path, development=False, graphql_introspection=True)
    assert on.json()["data"]["__schema"]["types"]


def test_the_banner_mentions_the_query_page_in_development_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters import cli, servers

    monkeypatch.setattr(servers, "run", lambda *a, **k: None)  # print the banner, serve nothing
    monkeypatch.setenv("REELPULSE_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    monkeypatch.setattr("adapters.observability.logging.configure_logging", lambda *a, **k: None)
    banners = {}
    for development in ("true", "false"):
        monkeypatch.setenv("REELPULSE_DEVELOPMENT", development)
        result = CliRunner().invoke(cli.app, ["serve"])
        assert result.exit_code == 0, result.output
        banners[development] = next(
            line for line in result.output.splitlines() if "GraphQL:" in line
        )
    assert "query page" in banners["true"]
    assert "query page" not in banners["false"] and "GraphiQL" not in banners["false"]
