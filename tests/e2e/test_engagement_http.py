"""The lean engagement routes: their deadline, their bodies, their answers and their docs.

In process (ASGI, TestClient) on the embedded SQLite store. The request deadline is
shortened to DEADLINE and the group committer held at a gate inside its transaction
(`Gate`, a wrapper of its GroupWriter), so that the tests decide when a commit happens
relative to the deadline:

* a batch still queued when its deadline passes is answered 503 not_stored_timeout and
  nothing of it is stored (and its retry succeeds);
* a single command or batch the committer took before the deadline is answered with its
  result however late (never a 503): the middleware does not cut routes that own it;
* other routes are still cut at the deadline (503 request_timeout).
"""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.http.deadline import DEADLINE_SECONDS, DeadlineRoute
from adapters.http.middleware import RequestContextMiddleware
from adapters.http.schemas import BatchResponse, CommandResponse
from adapters.settings import Settings

DEADLINE = 0.5  # seconds: each request's deadline in these tests
WAIT = 10.0  # bound on every wait for a background request


class Gate:
    """Wraps the committer's GroupWriter: each transaction waits until the gate opens
    (after announcing that a group arrived), so a test holds a commit as long as it wants."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.open = threading.Event()
        self.entered = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.writer, name)

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[Any]:
        self.entered.set()
        assert self.open.wait(WAIT), "the test never opened the gate"
        with self.writer.transaction(timeout) as tx:
            yield tx


class World:
    def __init__(self, db: Path, deadline: float = DEADLINE) -> None:
        self.container: Container = bootstrap(Settings(database_url=f"sqlite:///{db}"))
        app = create_app(self.container, run_background=False, deadline_seconds=deadline)
        self.client = TestClient(app, headers=HEADERS)
        self.client.__enter__()
        self.pool = ThreadPoolExecutor(4)
        # The catalog through the applications: the routes that create it do not own their
        # deadline, and on a loaded machine a save may take longer than DEADLINE.
        content = self.container.content
        creator = content.register_creator(
            creator_id=uuid.uuid4(), handle="ann", display_name="Ann", region="US",
            occurred_at=datetime.now(UTC),
        ).id  # fmt: skip
        self.video = str(content.publish_video(
            video_id=uuid.uuid4(), creator_id=creator, caption="clip", hashtags=[],
            sound_id=None, duration_seconds=30.0, occurred_at=datetime.now(UTC),
        ).id)  # fmt: skip
        self.committer = self.container.engagement.appender
        self.submitted = threading.Semaphore(0)  # one release per request queued
        submit = self.committer.submit

        def counting_submit(request: Any) -> Any:
            future = submit(request)
            self.submitted.release()
            return future

        self.committer.submit = counting_submit  # type: ignore[method-assign]

    def gate(self) -> Gate:
        gate = Gate(self.committer.writer)
        self.committer.writer = gate
        return gate

    def post(self, path: str, body: Any) -> "Future[Any]":
        return self.pool.submit(self.client.post, path, json=body)

    def view(self, viewer: str | None = None) -> dict[str, Any]:
        return {"viewer_id": viewer or str(uuid.uuid4()), "watch_seconds": 3}

    def batch(self, n: int = 3) -> dict[str, Any]:
        return {"items": [{"type": "view", "video_id": self.video, **self.view()}
                          for _ in range(n)]}  # fmt: skip

    def wait_submitted(self) -> None:
        assert self.submitted.acquire(timeout=WAIT), "the request was never queued"

    def stored_viewers(self) -> set[str]:
        """Viewers with an engagement stream on the video."""
        rows = self.container.store.recorder.select_notifications(start=1, limit=10_000)
        found = set()
        for n in rows:
            if n.topic.endswith("Engagement.Started"):
                found.add(str(self.container.engagement.mapper.to_domain_event(n).viewer_id))
        return found

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.__exit__(None, None, None)
        self.container.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "store.db")
    yield w
    w.close()


@pytest.fixture
def calm(tmp_path: Path) -> Iterator[World]:
    """A World with the usual request deadline, for tests that are not about deadlines (a
    loaded machine may take longer than DEADLINE for a comment's first key)."""
    w = World(tmp_path / "store.db", deadline=DEADLINE_SECONDS)
    yield w
    w.close()


def error_code(r: Any) -> str:
    return r.json()["error"]["code"]  # type: ignore[no-any-return]


# -- the deadline ---------------------------------------------------------------------------
def test_a_batch_queued_past_its_deadline_is_503_and_nothing_of_it_is_stored(world):
    gate = world.gate()
    first = world.post(f"/v1/videos/{world.video}/views", world.view())
    assert gate.entered.wait(WAIT)  # the committer holds the first command's group
    world.wait_submitted()
    late = world.batch(3)
    batch = world.post("/v1/engagement/batch", late)
    world.wait_submitted()  # decided and queued behind the held group
    time.sleep(DEADLINE + 0.2)  # its deadline passes while it waits
    gate.open.set()

    r = batch.result(WAIT)
    assert r.status_code == 503 and error_code(r) == "not_stored_timeout", r.text
    assert "nothing was recorded" in r.json()["error"]["message"]
    assert r.headers["retry-after"] == "1"
    assert first.result(WAIT).status_code == 200  # taken in time: committed and answered
    viewers = {i["viewer_id"] for i in late["items"]}
    assert not viewers & world.stored_viewers()
    # Safe to retry: the same batch is stored by its retry, once.
    again = world.client.post("/v1/engagement/batch", json=late)
    assert again.status_code == 200 and again.json()["recorded"] == 3, again.text
    assert viewers <= world.stored_viewers()


def _taken(world: World, gate: Gate, path: str, body: Callable[[], Any]) -> "Future[Any]":
    """Post until the command is taken (reaches the held commit) before its deadline. On a
    loaded machine the decision before the commit can outlast DEADLINE: that request is
    answered 503 without reaching the gate, and this test is about the taken ones."""
    for _ in range(5):
        future = world.post(path, body())
        deadline = time.monotonic() + WAIT
        while not gate.entered.wait(0.05):
            if future.done():
                r = future.result()
                assert r.status_code == 503 and error_code(r) == "not_stored_timeout", r.text
                break
            assert time.monotonic() < deadline, "the request neither reached the commit nor ended"
        else:
            return future
    raise AssertionError("no request was taken before its deadline in 5 attempts")


def test_commands_taken_before_the_deadline_are_answered_however_late(world):
    gate = world.gate()
    single = _taken(world, gate, f"/v1/videos/{world.video}/views", world.view)
    time.sleep(DEADLINE + 0.3)  # the commit is held well past the request's deadline
    gate.open.set()
    r = single.result(WAIT)
    assert r.status_code == 200, r.text  # not cut by the middleware, not a 503
    CommandResponse.model_validate(r.json())

    gate.open.clear()
    gate.entered.clear()
    batch = _taken(world, gate, "/v1/engagement/batch", lambda: world.batch(4))
    time.sleep(DEADLINE + 0.3)
    gate.open.set()
    r = batch.result(WAIT)
    assert r.status_code == 200 and r.json()["recorded"] == 4, r.text


def test_routes_that_do_not_own_their_deadline_are_still_cut():
    import asyncio

    app = FastAPI()
    owned = APIRouter(route_class=DeadlineRoute)

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(DEADLINE * 3)
        return {"done": "late"}

    @owned.get("/owned")
    async def owned_slow() -> dict[str, str]:
        await asyncio.sleep(DEADLINE * 3)
        return {"done": "late"}

    app.include_router(owned)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=1024,
        deadline_seconds=DEADLINE,
        routes=app.router.routes,
    )
    with TestClient(app) as client:
        cut = client.get("/slow")
        assert cut.status_code == 503 and error_code(cut) == "request_timeout"
        assert client.get("/owned").json() == {"done": "late"}


# -- bodies and answers ---------------------------------------------------------------------
def test_invalid_batch_items_are_rejected_naming_their_field(calm):
    viewer = str(uuid.uuid4())
    items = [
        {"type": "view", "viewer_id": viewer, "video_id": calm.video, "watch_seconds": 2},
        {"type": "view", "viewer_id": viewer, "video_id": calm.video, "watch_seconds": -1},
        {"type": "view", "viewer_id": viewer, "watch_seconds": 1},
        {"type": "like", "viewer_id": viewer, "video_id": "not-a-uuid"},
        {"type": "share", "viewer_id": viewer, "video_id": calm.video, "channel": "fax"},
        {"type": "like", "viewer_id": viewer, "video_id": calm.video, "colour": "red"},
        {"type": "teleport", "viewer_id": viewer},
        {"type": "view", "viewer_id": viewer, "video_id": calm.video, "watch_seconds": 1,
         "occurred_at": "2026-01-01T10:00:00"},  # no timezone
        7,
    ]  # fmt: skip
    r = calm.client.post("/v1/engagement/batch", json={"items": items})
    assert r.status_code == 200, r.text
    body = BatchResponse.model_validate(r.json())
    assert [i.index for i in body.items] == list(range(len(items)))
    assert body.recorded == 1 and body.rejected == len(items) - 1 and body.duplicates == 0
    rejected = body.items[1:]
    assert {i.error for i in rejected} == {"invalid_input"}
    named = ["watch_seconds", "video_id", "video_id", "channel", "colour", "type",
             "occurred_at", "item"]  # fmt: skip
    for item, field in zip(rejected, named, strict=True):
        assert item.message is not None and item.message.startswith(f"{field}: "), item


def test_single_command_bodies_get_422_naming_the_field(calm):
    url = f"/v1/videos/{calm.video}/views"
    cases = {
        "body.watch_seconds": {"viewer_id": str(uuid.uuid4()), "watch_seconds": "3"},
        "body.viewer_id": {"watch_seconds": 3},
        "body.extra": {"viewer_id": str(uuid.uuid4()), "watch_seconds": 3, "extra": 1},
        "body.device": {"viewer_id": str(uuid.uuid4()), "watch_seconds": 3, "device": "fax"},
        "body.expected_version": {"viewer_id": str(uuid.uuid4()), "watch_seconds": 3,
                                  "expected_version": 0},
    }  # fmt: skip
    for field, body in cases.items():
        r = calm.client.post(url, json=body)
        assert r.status_code == 422 and error_code(r) == "invalid_input", (field, r.text)
        assert [f["field"] for f in r.json()["error"]["fields"]] == [field], r.text
        assert r.json()["error"]["message"].startswith(f"{field}: ")
    r = calm.client.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and error_code(r) == "invalid_json"
    r = calm.client.post(url, content=b"")
    assert r.status_code == 422 and error_code(r) == "invalid_input"
    r = calm.client.post("/v1/videos/not-a-uuid/views", json=calm.view())
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "path.video_id"


def test_answers_have_the_documented_shapes_and_headers(calm):
    viewer = str(uuid.uuid4())
    r = calm.client.post(
        f"/v1/videos/{calm.video}/comments",
        json={"viewer_id": viewer, "text": "nice", "client_event_id": "c1"},
        headers={"Idempotency-Key": "comment-1"},
    )
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    answer = CommandResponse.model_validate(r.json())
    assert r.headers["x-consistency-token"] == str(answer.position)
    assert set(answer.details) == {"comment_id", "status"} and not answer.replayed
    again = calm.client.post(
        f"/v1/videos/{calm.video}/comments",
        json={"viewer_id": viewer, "text": "nice", "client_event_id": "c1"},
        headers={"Idempotency-Key": "comment-1"},
    )
    assert again.status_code == 201 and again.headers["idempotency-replayed"] == "true"
    assert again.json() == {**r.json(), "replayed": True}
    follow = calm.client.post(f"/v1/creators/{uuid.uuid4()}/followers", json=calm.view())
    assert follow.status_code == 422  # watch_seconds is not a follow field
    batch = calm.client.post("/v1/engagement/batch", json=calm.batch(2))
    assert batch.headers["x-consistency-token"] == str(batch.json()["position"])
    assert BatchResponse.model_validate(batch.json()).recorded == 2


def test_openapi_documents_the_engagement_routes(calm):
    spec = calm.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    bodies = {
        "/v1/videos/{video_id}/views": "RecordView",
        "/v1/videos/{video_id}/likes": "ViewerBody",
        "/v1/videos/{video_id}/shares": "RecordShare",
        "/v1/videos/{video_id}/comments": "RecordComment",
        "/v1/creators/{creator_id}/followers": "FollowBody",
    }
    for path, model in bodies.items():
        post = spec["paths"][path]["post"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}" and model in schemas
        assert {"200", "201"} & set(post["responses"]) and "503" in post["responses"]
        assert any(p["name"] == "idempotency-key" for p in post["parameters"])
    assert "watch_seconds" in schemas["RecordView"]["properties"]
    batch = spec["paths"]["/v1/engagement/batch"]["post"]
    envelope, bare = batch["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    for items in (envelope["properties"]["items"], bare):  # {"items": [...]} or [...]
        assert items["items"]["anyOf"][0]["$ref"] == "#/components/schemas/BatchItem"
    assert set(schemas["BatchItem"]["discriminator"]["mapping"]) == {
        "view", "like", "unlike", "share", "comment", "delete_comment", "follow", "unfollow",
    }  # fmt: skip
    assert batch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/BatchResponse"
    )


def test_an_api_key_is_read_from_the_database_once_per_cache_period(calm):
    auth = calm.client.app.state.auth
    key, _ = auth.keys.create("ingest")
    calls: list[str] = []
    lookup: Callable[[str], Any] = auth.keys._lookup

    def counting(raw: str) -> Any:
        calls.append(raw)
        return lookup(raw)

    auth.keys._lookup = counting
    for _ in range(5):
        r = calm.client.post(f"/v1/videos/{calm.video}/views", json=calm.view(),
                              headers={"X-API-Key": key})  # fmt: skip
        assert r.status_code == 200, r.text
    assert len(calls) == 1
