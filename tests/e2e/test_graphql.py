"""The GraphQL read side: read-your-writes, batching, subscriptions and query limits."""

import time
import uuid

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings
from e2e.servers import free_port, start_server


def gql(client, query: str, token: int | None = None, **variables):
    headers = {"X-Consistency-Token": str(token)} if token is not None else {}
    r = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def register(client, handle: str) -> tuple[str, int]:
    r = client.post("/v1/creators", json={"handle": handle, "display_name": handle, "region": "US"})
    return r.json()["id"], r.json()["position"]


def publish(client, creator: str) -> tuple[str, int]:
    r = client.post(
        "/v1/videos",
        json={"creator_id": creator, "caption": "c", "hashtags": ["#a"], "duration_seconds": 30},
    )
    return r.json()["id"], r.json()["position"]


# -- acceptance 1: over real HTTP, a command's token makes the next query see its effect ----
def test_consistency_token_over_real_http(tmp_path):
    port = free_port()
    proc = start_server(f"sqlite:///{tmp_path / 'store.db'}", port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10, headers=HEADERS) as client:
            creator, _ = register(client, "tokens")
            video, _ = publish(client, creator)
            viewers = [str(uuid.uuid4()) for _ in range(3)]
            for viewer in viewers:
                r = client.post(
                    f"/v1/videos/{video}/views",
                    json={"viewer_id": viewer, "watch_seconds": 12, "completed": True},
                )
            r = client.post(f"/v1/videos/{video}/likes", json={"viewer_id": viewers[0]})
            token = r.json()["position"]
            body = gql(
                client,
                "query($id: UUID!) { video(id: $id) { "
                "stats { views uniqueViewers likes completionRate } creator { videoCount } } }",
                token,
                id=video,
            )
            assert body["data"]["video"] == {
                "stats": {"views": 3, "uniqueViewers": 3, "likes": 1, "completionRate": 1.0},
                "creator": {"videoCount": 1},
            }
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_token_the_projections_do_not_reach_is_a_clear_error_naming_the_lag(tmp_path):
    container = bootstrap(
        Settings(database_url=f"sqlite:///{tmp_path / 's.db'}", consistency_timeout_seconds=0.2)
    )
    try:
        with TestClient(create_app(container), headers=HEADERS) as client:
            _, position = register(client, "lagging")
            # Let every projection reach the command's position first, so the lag is exact.
            deadline = time.monotonic() + 10
            while "errors" in gql(client, "{ summary { creators } }", position):
                assert time.monotonic() < deadline, "projections never reached the command"
            container.projections.stop()
            _, position = register(client, "unprojected")  # recorded; nobody projects it
            body = gql(client, "{ summary { creators } }", position)
            error = body["errors"][0]
            assert error["extensions"]["code"] == "CONSISTENCY_TIMEOUT"
            assert error["extensions"]["lag"]["stats"] == 2  # the creator and its handle
            assert body["data"] is None
            # Beyond the head (tests/e2e/test_graphql_hardening.py): refused at once.
            ahead = client.post(
                "/graphql",
                json={"query": "{ summary { creators } }"},
                headers={"X-Consistency-Token": str(position + 1000)},
            )
            assert ahead.json()["errors"][0]["extensions"]["code"] == "CONSISTENCY_TOKEN_AHEAD"
            bad = client.post(
                "/graphql",
                json={"query": "{ summary { creators } }"},
                headers={"X-Consistency-Token": "abc"},
            )
            assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_CONSISTENCY_TOKEN"
    finally:
        container.close()


# -- acceptance 3a: a page of 50 videos with their creators costs a constant number of queries
def count_statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: seen.append(stmt))
    return seen


def test_videos_with_creators_cost_a_constant_number_of_queries(served):
    client, container = served
    creators = [register(client, f"creator{i}")[0] for i in range(10)]
    last = 0
    for i in range(60):
        _, last = publish(client, creators[i % 10])
    query = (
        "query($n: Int!) { videos(first: $n) {"
        " edges { node { id creator { handle followers } } } } }"
    )
    gql(client, query, last, n=1)  # warm up: waits for the projections to reach `last`
    seen = count_statements(container.read_engine)
    small = gql(client, query, None, n=5)
    small_count = len(seen)
    seen.clear()
    big = gql(client, query, None, n=50)
    assert len(big["data"]["videos"]["edges"]) == 50
    assert {e["node"]["creator"]["handle"] for e in big["data"]["videos"]["edges"]} == {
        f"creator{i}" for i in range(10)
    }
    assert len(small["data"]["videos"]["edges"]) == 5
    assert len(seen) == small_count == 2  # one page query + one batched creator query


# -- acceptance 3b: a subscription receives an update after a command ---------------------
def test_video_stats_subscription_pushes_after_a_command(served):
    client, _ = served
    creator, _ = register(client, "subs")
    video, token = publish(client, creator)
    gql(client, "{ summary { videos } }", token)  # the video is in the read model
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {
                    "query": f'subscription {{ videoStats(id: "{video}") {{ views likes }} }}'
                },
            }
        )
        first = ws.receive_json()
        assert first["payload"]["data"]["videoStats"] == {"views": 0, "likes": 0}
        r = client.post(f"/v1/videos/{video}/likes", json={"viewer_id": str(uuid.uuid4())})
        assert r.status_code == 200
        pushed = ws.receive_json()  # bounded by pytest-timeout; pushed on projection commit
        assert pushed["type"] == "next"
        assert pushed["payload"]["data"]["videoStats"] == {"views": 0, "likes": 1}
        ws.send_json({"id": "1", "type": "complete"})


# -- acceptance 5: depth, alias and token limits are rejected before any resolver runs -----
DEEP = (
    "{ videos { edges { node { creator { videos { edges { node { creator { videos "
    "{ edges { node { id } } } } } } } } } } } }"
)


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        (DEEP, "exceeds maximum operation depth"),
        ("{ " + " ".join(f"a{i}: summary {{ views }}" for i in range(16)) + " }", "aliases"),
        ("{ summary { " + " ".join(["views"] * 2100) + " } }", "token"),
    ],
    ids=["depth", "aliases", "tokens"],
)
def test_limits_reject_before_any_resolver_runs(served, query, needle):
    client, container = served
    seen = count_statements(container.read_engine)
    for _ in range(2):  # the second time from the parse and validation caches
        body = gql(client, query)
        assert body.get("data") is None
        assert needle in body["errors"][0]["message"].lower()
    assert seen == []  # no resolver touched the read models


def test_cached_queries_still_answer_each_request_on_its_own(served):
    """The parse/validation caches are keyed by the text: the same text with other
    variables, and the same valid text after an invalid one, still get their own answer."""
    client, _ = served
    query = "query($first: Int!) { videos(first: $first) { edges { cursor } } }"
    assert gql(client, query, first=101)["errors"][0]["extensions"]["code"] == "PAGE_SIZE"
    assert "errors" not in gql(client, query, first=5)
    unknown = "{ summary { views nosuchfield } }"
    assert "nosuchfield" in gql(client, unknown)["errors"][0]["message"]
    assert "nosuchfield" in gql(client, unknown)["errors"][0]["message"]


def test_page_size_is_capped_and_bad_cursors_are_user_errors(served):
    client, _ = served
    body = gql(client, "{ videos(first: 101) { edges { cursor } } }")
    assert body["errors"][0]["extensions"]["code"] == "PAGE_SIZE"
    body = gql(client, '{ videos(after: "not-a-cursor") { edges { cursor } } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_no_field_suggestions_or_graphiql_outside_development(tmp_path):
    container = bootstrap(
        Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", development=False)
    )
    try:
        with TestClient(create_app(container), headers=HEADERS) as client:
            body = gql(client, "{ videoz { id } }")
            assert "Did you mean" not in body["errors"][0]["message"]
            assert client.get("/graphql", headers={"accept": "text/html"}).status_code == 404
    finally:
        container.close()
    dev = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'd.db'}", development=True))
    try:
        with TestClient(create_app(dev), headers=HEADERS) as client:
            assert "Did you mean" in gql(client, "{ videoz { id } }")["errors"][0]["message"]
    finally:
        dev.close()


def test_unexpected_errors_are_masked(served, monkeypatch):
    client, _ = served

    def broken(*_args):
        raise RuntimeError("secret connection string postgres://admin:hunter2@db")

    from adapters.readmodel.stats_reader import SqlStatsReader

    monkeypatch.setattr(SqlStatsReader, "summary", broken)
    body = gql(client, "{ summary { views } }")
    message = body["errors"][0]["message"]
    assert "hunter2" not in message and "Unexpected error" in message
