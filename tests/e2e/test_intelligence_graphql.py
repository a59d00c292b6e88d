"""The models' GraphQL side through the real app: alerts (paged, pushed by subscription,
acted on exactly once), recommendations and emerging trends, with clear input errors."""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.readmodel.tables import rm_alerts
from adapters.settings import Settings
from domain.moderation import ModerationCase

WAIT = 30.0  # seconds for background projections and the alert worker


def gql(
    client: TestClient, query: str, token: int | None = None, **variables: Any
) -> dict[str, Any]:
    headers = {"X-Consistency-Token": str(token)} if token is not None else {}
    r = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(predicate: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # polling a condition, bounded by the deadline
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}", alert_actions_poll_seconds=0.1
    )
    container = bootstrap(settings)
    # lifespan starts the workers
    with TestClient(create_app(container), headers=HEADERS) as client:
        yield client, container
    container.close()


LAST_POSITION: dict[TestClient, int] = {}  # the consistency token of the last batch


def video_with_views(client: TestClient, views: int) -> tuple[str, list[str]]:
    r = client.post(
        "/v1/creators",
        json={"handle": f"c{uuid.uuid4().hex[:8]}", "display_name": "R", "region": "US"},
    )
    creator = r.json()["id"]
    r = client.post(
        "/v1/videos",
        json={"creator_id": creator, "caption": "c", "hashtags": ["#a"], "duration_seconds": 30},
    )
    video = r.json()["id"]
    viewers = [str(uuid.uuid4()) for _ in range(views)]
    items = [
        {"type": "view", "video_id": video, "viewer_id": v, "watch_seconds": 20, "completed": True}
        for v in viewers
    ]
    r = client.post("/v1/engagement/batch", json={"items": items})
    assert r.status_code == 200, r.text
    LAST_POSITION[client] = r.json()["position"]
    return video, viewers


def report(client: TestClient, video: str, n: int) -> None:
    for _ in range(n):
        r = client.post(
            f"/v1/videos/{video}/reports", json={"reporter_id": str(uuid.uuid4()), "reason": "spam"}
        )
        assert r.status_code == 200, r.text


ALERTS = "query($after: String) { alerts(first: 5, after: $after) { edges { cursor node { "
ALERTS += "rule subjectId action actionStatus } } pageInfo { hasNextPage endCursor } } }"


def test_report_spike_is_pushed_listed_and_escalates_the_case_exactly_once(served):
    client, container = served
    video, _ = video_with_views(client, 25)
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {"id": "1", "type": "subscribe",
             "payload": {"query": "subscription { alerts { rule subjectId severity } }"}}
        )  # fmt: skip
        report(client, video, 10)
        pushed = ws.receive_json()  # bounded by pytest-timeout; pushed on the rule's commit
        assert pushed["type"] == "next", pushed
        assert pushed["payload"]["data"]["alerts"]["rule"] == "report_spike"
        assert pushed["payload"]["data"]["alerts"]["subjectId"] == video
        ws.send_json({"id": "1", "type": "complete"})

    def done() -> Any:
        edges = gql(client, ALERTS)["data"]["alerts"]["edges"]
        return edges if edges and edges[0]["node"]["actionStatus"] == "done" else None

    edges = wait_for(done, "the escalation to be carried out")
    assert [e["node"]["rule"] for e in edges] == ["report_spike"]
    assert edges[0]["node"]["action"] == "escalate"
    case_id = ModerationCase.create_id(uuid.UUID(video))

    def escalations() -> int:
        events = container.moderation.repository.event_store.get(case_id)
        return sum(isinstance(e, ModerationCase.Escalated) for e in events)

    assert escalations() == 1
    # Exactly once: the worker again, even with the alert's status reset, adds nothing.
    assert container.alert_worker is not None
    with container.write_engine.begin() as conn:
        conn.execute(rm_alerts.update().values(action_status="pending"))
    container.alert_worker.run_until_idle()
    assert escalations() == 1
    assert gql(client, ALERTS)["data"]["alerts"]["edges"][0]["node"]["actionStatus"] == "done"


def test_alert_paging_and_bad_input_are_user_errors(served):
    client, _ = served
    body = gql(client, ALERTS, after="not-a-cursor")
    assert "cursor" in body["errors"][0]["message"]
    body = gql(client, "{ alerts(first: 1000) { edges { cursor } } }")
    assert "first" in body["errors"][0]["message"]
    empty = gql(client, ALERTS)["data"]["alerts"]
    assert empty == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


def test_recommendations_leave_out_what_the_viewer_has_seen(served):
    client, _ = served
    video, viewers = video_with_views(client, 3)
    other, _ = video_with_views(client, 5)
    query = "query($v: UUID!) { recommendations(viewerId: $v, first: 10) { videoId source } }"

    def ready() -> Any:
        # Read at the last batch's position: every read model (trending candidates and
        # the seen pairs) has then seen both batches.
        body = gql(client, query, LAST_POSITION[client], v=viewers[0])
        recs = (body.get("data") or {}).get("recommendations")
        return recs if recs else None

    recs = wait_for(ready, "recommendations")
    ids = [r["videoId"] for r in recs]
    assert video not in ids and other in ids  # seen left out, the unseen popular one in
    assert {r["source"] for r in recs} <= {"PERSONAL", "TRENDING", "FOLLOWING"}
    bad = gql(client, '{ recommendations(viewerId: "x", first: 1) { videoId } }')
    assert bad["errors"]
    too_many = gql(client, query.replace("first: 10", "first: 101"), v=viewers[0])
    assert "first" in too_many["errors"][0]["message"]


def test_emerging_trends_answer_with_a_list(served):
    client, _ = served
    body = gql(client, "{ emergingTrends(kind: HASHTAG, first: 5) { key status lift } }")
    assert body["data"]["emergingTrends"] == []  # nothing has happened yet
    assert gql(client, "{ emergingTrends(kind: NOPE) { key } }")["errors"]


def test_video_anomaly_is_null_until_a_minute_was_scored(served):
    client, _ = served
    video, _ = video_with_views(client, 3)  # one minute, not yet closed by later events
    query = "query($v: UUID!) { videoAnomaly(videoId: $v) { score maxScore minutes } }"
    assert gql(client, query, v=video)["data"]["videoAnomaly"] is None
    assert gql(client, query, v="not-a-uuid")["errors"]
