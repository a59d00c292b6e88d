"""The REST command API: status codes, error bodies, idempotency and concurrency control.

Runs in process (ASGI) against the embedded SQLite store; the restart test reopens the
same SQLite file with a fresh application, as a restarted server would.
"""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings


def open_client(db: Path, **settings: object) -> tuple[TestClient, object]:
    container = bootstrap(Settings(database_url=f"sqlite:///{db}", **settings))
    client = TestClient(create_app(container, run_background=False), headers=HEADERS)
    client.__enter__()
    return client, container


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def client(db_path: Path) -> Iterator[TestClient]:
    client, container = open_client(db_path)
    yield client
    client.__exit__(None, None, None)
    container.close()


def register(client: TestClient, handle: str = "ann") -> str:
    r = client.post("/v1/creators", json={"handle": handle, "display_name": "Ann", "region": "US"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def publish(client: TestClient, creator_id: str, duration: float = 20.0) -> str:
    r = client.post(
        "/v1/videos",
        json={
            "creator_id": creator_id,
            "caption": "hi",
            "hashtags": ["#Fun"],
            "duration_seconds": duration,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def error_code(response) -> str:
    return response.json()["error"]["code"]


# -- success shape ------------------------------------------------------------------------
def test_command_returns_id_version_and_increasing_position(client):
    creator = register(client)
    r = client.post(
        "/v1/videos",
        json={"creator_id": creator, "caption": "x", "hashtags": [], "duration_seconds": 10},
    )
    body = r.json()
    assert body["version"] == 1 and body["replayed"] is False
    assert body["position"] == 3  # the registration recorded 1 (its handle) and 2
    assert r.headers["x-consistency-token"] == "3"


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/engagement/batch" in paths and "/v1/cases/{case_id}/decision" in paths


# -- 422 -----------------------------------------------------------------------------------
def test_invalid_input_is_422_with_field_messages(client):
    r = client.post(
        "/v1/creators", json={"handle": "a", "display_name": "Ann", "region": "US", "extra": 1}
    )
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert fields == {"body.handle", "body.extra"}
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_malformed_json_is_422_not_500(client):
    r = client.post(
        "/v1/creators", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and error_code(r) == "invalid_json"


def test_domain_value_rules_are_422(client):
    creator = register(client)
    video = publish(client, creator, duration=10)
    r = client.post(
        f"/v1/videos/{video}/views", json={"viewer_id": str(uuid.uuid4()), "watch_seconds": 51}
    )
    assert r.status_code == 422 and error_code(r) == "invalid_watch_time"


def test_naive_event_time_is_rejected(client):
    r = client.post(
        "/v1/creators",
        json={
            "handle": "ann",
            "display_name": "Ann",
            "region": "US",
            "occurred_at": "2026-01-01T10:00:00",
        },
    )
    assert r.status_code == 422


# -- 404 -----------------------------------------------------------------------------------
def test_unknown_aggregate_is_404(client):
    r = client.post(f"/v1/videos/{uuid.uuid4()}/likes", json={"viewer_id": str(uuid.uuid4())})
    assert r.status_code == 404 and error_code(r) == "video_not_found"
    r = client.post(
        f"/v1/cases/{uuid.uuid4()}/decision",
        json={"moderator_id": str(uuid.uuid4()), "outcome": "keep", "policy": "spam"},
    )
    assert r.status_code == 404 and error_code(r) == "case_not_found"


def test_unknown_route_is_json_404(client):
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and error_code(r) == "route_not_found"


# -- 409 -----------------------------------------------------------------------------------
def test_invariant_violation_is_409_with_code(client):
    creator = register(client)
    video = publish(client, creator)
    viewer = str(uuid.uuid4())
    assert client.post(f"/v1/videos/{video}/likes", json={"viewer_id": viewer}).status_code == 200
    r = client.post(f"/v1/videos/{video}/likes", json={"viewer_id": viewer})
    assert r.status_code == 409 and error_code(r) == "already_liked"
    r = client.post(f"/v1/creators/{creator}/followers", json={"viewer_id": creator})
    assert r.status_code == 409 and error_code(r) == "self_follow"


def test_version_conflict_is_409(client):
    creator = register(client)
    ok = client.patch(
        f"/v1/creators/{creator}",
        json={"display_name": "A2", "region": "GB", "expected_version": 1},
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = client.patch(
        f"/v1/creators/{creator}",
        json={"display_name": "A3", "region": "GB", "expected_version": 1},
    )
    assert stale.status_code == 409 and error_code(stale) == "version_conflict"
    assert stale.json()["error"]["details"] == {"expected": "1", "actual": "2"}


# -- 413 -----------------------------------------------------------------------------------
def test_oversized_body_is_413(client):
    r = client.post(
        "/v1/creators", content=b"x" * 1_100_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and error_code(r) == "payload_too_large"


def test_oversized_batch_is_413(db_path):
    client, container = open_client(db_path, batch_max_items=3)
    try:
        items = [
            {"type": "like", "viewer_id": str(uuid.uuid4()), "video_id": str(uuid.uuid4())}
        ] * 4
        r = client.post("/v1/engagement/batch", json={"items": items})
        assert r.status_code == 413 and error_code(r) == "batch_too_large"
    finally:
        client.__exit__(None, None, None)
        container.close()


# -- idempotency ---------------------------------------------------------------------------
def test_idempotent_retry_returns_original_and_records_nothing(client):
    creator = register(client)
    video = publish(client, creator)
    body = {"viewer_id": str(uuid.uuid4()), "watch_seconds": 5}
    first = client.post(
        f"/v1/videos/{video}/views", json=body, headers={"Idempotency-Key": "view-1"}
    )
    head = client.get("/readyz").json()["checks"]["event_store"]["head_position"]
    again = client.post(
        f"/v1/videos/{video}/views", json=body, headers={"Idempotency-Key": "view-1"}
    )
    assert again.status_code == first.status_code == 200
    assert {k: v for k, v in again.json().items() if k != "replayed"} == {
        k: v for k, v in first.json().items() if k != "replayed"
    }
    assert again.json()["replayed"] is True and again.headers["idempotency-replayed"] == "true"
    assert client.get("/readyz").json()["checks"]["event_store"]["head_position"] == head


def test_same_key_different_request_is_rejected(client):
    creator = register(client)
    r1 = client.patch(
        f"/v1/creators/{creator}",
        json={"display_name": "B", "region": "GB"},
        headers={"Idempotency-Key": "k"},
    )
    assert r1.status_code == 200
    r2 = client.patch(
        f"/v1/creators/{creator}",
        json={"display_name": "C", "region": "GB"},
        headers={"Idempotency-Key": "k"},
    )
    assert r2.status_code == 422 and error_code(r2) == "idempotency_key_reused"


def test_idempotent_retry_survives_a_restart(db_path):
    client, container = open_client(db_path)
    body = {"handle": "ann", "display_name": "Ann", "region": "US"}
    first = client.post("/v1/creators", json=body, headers={"Idempotency-Key": "register-ann"})
    client.__exit__(None, None, None)
    container.close()

    client, container = open_client(db_path)  # a new process would see the same file
    try:
        again = client.post("/v1/creators", json=body, headers={"Idempotency-Key": "register-ann"})
        assert again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["position"] == first.json()["position"]
        assert again.json()["replayed"] is True
        head = client.get("/readyz").json()["checks"]["event_store"]["head_position"]
        assert head == 2  # the creator and its handle's reservation
    finally:
        client.__exit__(None, None, None)
        container.close()


def test_batch_retry_with_key_returns_per_item_results(client):
    creator = register(client)
    video = publish(client, creator)
    viewer = str(uuid.uuid4())
    items = [
        {"type": "view", "viewer_id": viewer, "video_id": video, "watch_seconds": 3},
        {"type": "like", "viewer_id": viewer, "video_id": video},
        {"type": "like", "viewer_id": viewer, "video_id": video},
        {"type": "view", "viewer_id": viewer, "video_id": video, "watch_seconds": -1},
    ]
    first = client.post(
        "/v1/engagement/batch", json={"items": items}, headers={"Idempotency-Key": "b1"}
    )
    assert first.status_code == 200
    statuses = [i["status"] for i in first.json()["items"]]
    assert statuses == ["recorded", "recorded", "rejected", "rejected"]
    assert [i["error"] for i in first.json()["items"]][2:] == ["already_liked", "invalid_input"]
    again = client.post(
        "/v1/engagement/batch", json={"items": items}, headers={"Idempotency-Key": "b1"}
    )
    assert again.json()["items"] == first.json()["items"] and again.json()["replayed"] is True


def test_batch_accepts_ndjson_and_dedups_client_event_ids(client):
    creator = register(client)
    video = publish(client, creator)
    viewer = str(uuid.uuid4())
    item = {"type": "view", "viewer_id": viewer, "video_id": video, "watch_seconds": 2}
    line = json.dumps({**item, "client_event_id": "e1"})
    r = client.post(
        "/v1/engagement/batch",
        content=f"{line}\n{line}\n".encode(),
        headers={"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 200
    assert [i["status"] for i in r.json()["items"]] == ["recorded", "duplicate"]
