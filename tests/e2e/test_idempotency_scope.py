"""Idempotency keys belong to the caller and the route that sent them (issue 15, section 4).

Through the real app on SQLite and on PostgreSQL, for the three write paths (the group
commit of single engagement signals, batch ingest, and the library's save path of the
other commands): another caller sending my key, with my body or another, gets neither my
stored result nor 422; my key on another route is a new key; my own retry still replays
and my own key with another body is still 422 `idempotency_key_reused`.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.auth.principal import Role
from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings


@dataclass
class World:
    client: TestClient
    container: Container
    keys: dict[str, dict[str, str]]  # caller -> headers
    creator: str
    video: str

    def post(self, who: str, path: str, body: Any, key: str) -> Any:
        return self.client.post(path, json=body, headers={**self.keys[who], "Idempotency-Key": key})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        url = str(request.getfixturevalue("pg_url"))
    container = bootstrap(Settings(database_url=url))
    client = TestClient(create_app(container, run_background=False), headers=HEADERS)
    client.__enter__()
    store = client.app.state.auth.keys  # type: ignore[attr-defined]
    keys = {
        "admin": HEADERS,
        "admin_2": {"X-API-Key": store.create(Role.ADMIN, label="second admin")[0]},
        "ingest_a": {"X-API-Key": store.create(Role.INGEST, label="a")[0]},
        "ingest_b": {"X-API-Key": store.create(Role.INGEST, label="b")[0]},
    }
    r = client.post("/v1/creators", json={"handle": "ann", "display_name": "A", "region": "US"})
    creator = r.json()["id"]
    r = client.post(
        "/v1/videos", json={"creator_id": creator, "caption": "c", "duration_seconds": 9}
    )
    assert r.status_code == 201, r.text
    yield World(client, container, keys, creator, r.json()["id"])
    client.__exit__(None, None, None)
    container.close()


def _view(world: World) -> dict[str, Any]:
    return {"viewer_id": str(uuid.uuid4()), "watch_seconds": 4}


def test_another_callers_key_and_body_are_not_a_replay(world: World) -> None:
    """The issue's example: the same key and body from someone else is their own command."""
    path, body = f"/v1/videos/{world.video}/views", _view(world)
    mine = world.post("ingest_a", path, body, "shared-key")
    assert mine.status_code == 200 and mine.json()["replayed"] is False, mine.text
    for other in ("ingest_b", "admin"):
        theirs = world.post(other, path, body, "shared-key")
        assert theirs.status_code == 200, (other, theirs.text)
        assert theirs.json()["replayed"] is False, (other, "got another caller's result")
        assert "idempotency-replayed" not in theirs.headers
        assert theirs.json()["position"] != mine.json()["position"]
    again = world.post("ingest_a", path, body, "shared-key")
    assert again.json()["replayed"] is True
    assert again.json()["position"] == mine.json()["position"]


def test_another_callers_key_with_another_body_is_not_reused(world: World) -> None:
    """Nobody can use up or probe my keys: their different body is not a 422."""
    path = f"/v1/videos/{world.video}/views"
    assert world.post("ingest_a", path, _view(world), "probe").status_code == 200
    theirs = world.post("ingest_b", path, _view(world), "probe")
    assert theirs.status_code == 200, theirs.text
    mine = world.post("ingest_a", path, _view(world), "probe")
    assert mine.status_code == 422, mine.text
    assert mine.json()["error"]["code"] == "idempotency_key_reused"


def test_the_same_key_on_another_route_is_another_key(world: World) -> None:
    viewer = str(uuid.uuid4())
    views = world.post(
        "ingest_a",
        f"/v1/videos/{world.video}/views",
        {"viewer_id": viewer, "watch_seconds": 3},
        "per-route",
    )
    likes = world.post(
        "ingest_a", f"/v1/videos/{world.video}/likes", {"viewer_id": viewer}, "per-route"
    )
    assert views.status_code == likes.status_code == 200, likes.text
    assert likes.json()["replayed"] is False


def test_batches_are_scoped_by_caller(world: World) -> None:
    items = {"items": [{"type": "view", "video_id": world.video, **_view(world)}]}
    mine = world.post("ingest_a", "/v1/engagement/batch", items, "batch-key")
    assert mine.status_code == 200 and mine.json()["recorded"] == 1, mine.text
    theirs = world.post("ingest_b", "/v1/engagement/batch", items, "batch-key")
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["replayed"] is False and theirs.json()["recorded"] == 1
    other_body = {"items": [{"type": "view", "video_id": world.video, **_view(world)}]}
    assert world.post("ingest_b", "/v1/engagement/batch", other_body, "fresh").status_code == 200
    assert world.post("ingest_a", "/v1/engagement/batch", other_body, "fresh").status_code == 200
    again = world.post("ingest_a", "/v1/engagement/batch", items, "batch-key")
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True and again.json()["items"] == mine.json()["items"]
    reused = world.post("ingest_a", "/v1/engagement/batch", other_body, "batch-key")
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


def test_other_commands_are_scoped_by_caller(world: World) -> None:
    """The library's save path (a profile change): two admins, one key."""
    path = f"/v1/creators/{world.creator}"
    first = {"display_name": "First", "region": "GB"}
    mine = world.client.patch(path, json=first, headers={**HEADERS, "Idempotency-Key": "p"})
    assert mine.status_code == 200 and mine.json()["replayed"] is False, mine.text
    second = {"display_name": "Second", "region": "GB"}
    theirs = world.client.patch(
        path, json=second, headers={**world.keys["admin_2"], "Idempotency-Key": "p"}
    )
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["replayed"] is False and theirs.json()["version"] == 3
    again = world.client.patch(path, json=first, headers={**HEADERS, "Idempotency-Key": "p"})
    assert again.json()["replayed"] is True and again.json()["version"] == 2
    reused = world.client.patch(path, json=second, headers={**HEADERS, "Idempotency-Key": "p"})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


def test_a_retried_batch_of_one_item_replays(world: World) -> None:
    """Found on the way: a one-item batch stored a single command's result, so its retry
    (the same caller, key and body) was answered 422 idempotency_key_reused."""
    items = {"items": [{"type": "view", "video_id": world.video, **_view(world)}]}
    first = world.post("ingest_a", "/v1/engagement/batch", items, "one-item")
    again = world.post("ingest_a", "/v1/engagement/batch", items, "one-item")
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "replayed": True}
