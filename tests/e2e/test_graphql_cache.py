"""The GraphQL response cache (adapters/graphql/cache.py) through the real app: hits are
byte-identical to the uncached path's answers and run no SQL; an answer is never served
after the read models moved on (projections in process, announced on the hub; or in
another process, seen by the poll); a consistency token beyond the cached version goes
the usual way; callers whose answers differ never share an entry; authentication, the
rate limit and the request id apply to hits; errors are never kept."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.auth.keys import ApiKeyStore
from adapters.auth.principal import Role
from adapters.bootstrap import Container, bootstrap
from adapters.graphql.cache_positions import STALE_AFTER
from adapters.http.app import create_app
from adapters.observability.metrics import REGISTRY
from adapters.settings import Settings

VIDEO_PAGE = (
    "query($id: UUID!) { video(id: $id) { id caption hashtags soundId durationSeconds status "
    "publishedAt stats { views uniqueViewers likes shares comments totalWatchSeconds "
    "averageWatchSeconds completionRate engagementRate } creator { handle displayName "
    "followers } } }"
)
TRENDING = (
    "{ trending(kind: VIDEO, window: DAY, first: 100) { rank key score views likes shares "
    "comments velocity acceleration } }"
)
SUMMARY = (
    "{ summary { creators suspendedCreators videos removedVideos views likes shares comments "
    "watchHours openCases headPosition projectionPositions } }"
)


def hits() -> float:
    return REGISTRY.get_sample_value("reelpulse_graphql_cache_total", {"result": "hit"}) or 0.0


def ask(client: Any, query: str, headers: dict[str, str] | None = None, **variables: Any) -> Any:
    return client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )


def data(response: Any) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def without_request_id(response: Any) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in response.headers.raw if k.lower() != b"x-request-id"]


def count_statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: seen.append(stmt))
    return seen


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return response.json()


def view(client: Any, video: str) -> int:
    """One view by a new viewer; its position."""
    body = {"viewer_id": str(uuid.uuid4()), "watch_seconds": 7, "completed": True}
    return ok(client.post(f"/v1/videos/{video}/views", json=body))["position"]


def catalog(client: Any, handle: str) -> tuple[str, list[str], int]:
    """A creator with three videos, some views and a like: (creator, videos, position)."""
    creator = ok(client.post("/v1/creators", json={
        "handle": handle, "display_name": handle.title(), "region": "US"}))["id"]  # fmt: skip
    videos = [
        ok(client.post("/v1/videos", json={"creator_id": creator, "caption": f"v{i}",
                                            "hashtags": ["#cache"], "duration_seconds": 20}))["id"]
        for i in range(3)
    ]  # fmt: skip
    position = 0
    for i, video in enumerate(videos):
        for _ in range(i + 1):
            position = view(client, video)
    like = {"viewer_id": str(uuid.uuid4())}
    position = ok(client.post(f"/v1/videos/{videos[0]}/likes", json=like))["position"]
    return creator, videos, position


@dataclass
class Served:
    client: TestClient
    container: Container
    creator: str
    videos: list[str]

    @property
    def cache(self) -> Any:
        return self.client.app.state.graphql_cache  # type: ignore[attr-defined]

    def projected(self, position: int) -> None:
        reached = self.container.projections.wait_for(position, 10)
        assert all(reached.get(n, 0) >= position for n in self.container.projections.names)
        # The hub wakes waiters before it calls its listeners: let the cache's hear it too.
        deadline = time.monotonic() + 10
        while self.cache.clock.known.floor < position:
            assert time.monotonic() < deadline, "the cache never heard of the commit"
            time.sleep(0.001)

    def uncached(self, query: str, **variables: Any) -> Any:
        """The reference: the same request through the usual path."""
        self.cache.enabled = False
        try:
            return ask(self.client, query, **variables)
        finally:
            self.cache.enabled = True


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """Projections in process: their commits are announced on the hub."""
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}"))
    with TestClient(create_app(container), headers=HEADERS) as client:
        creator, videos, position = catalog(client, "cachy")
        world = Served(client, container, creator, videos)
        world.projected(position)
        yield world
    container.close()


def hot(world: Served) -> list[tuple[str, dict[str, Any]]]:
    return [(VIDEO_PAGE, {"id": world.videos[0]}), (TRENDING, {}), (SUMMARY, {})]


# -- answers identical to the uncached path, without executing anything ------------------
def test_hits_are_byte_identical_to_uncached_answers_and_run_no_sql(served):
    seen = count_statements(served.container.read_engine)
    for query, variables in hot(served):
        reference = served.uncached(query, **variables)
        miss = ask(served.client, query, **variables)
        seen.clear()
        before = hits()
        hit = ask(served.client, query, **variables)
        assert hits() == before + 1
        assert seen == []  # no parse, no execution, no SQL
        assert data(reference)  # a real answer, not an error
        assert hit.content == miss.content == reference.content
        assert without_request_id(hit) == without_request_id(reference)
    trending = data(ask(served.client, TRENDING))["trending"]
    assert {t["key"] for t in trending} == set(served.videos)


def test_cached_answers_equal_uncached_ones_as_the_read_models_change(served):
    """Differential: after every write (projected), each hot query through the cache
    (miss then hit) equals the usual path's answer at the same state."""
    for round_ in range(4):
        for query, variables in hot(served):
            reference = served.uncached(query, **variables).content
            assert ask(served.client, query, **variables).content == reference, round_
            assert ask(served.client, query, **variables).content == reference, round_
        served.projected(view(served.client, served.videos[round_ % 3]))


def test_get_requests_are_cached_too(served):
    params = {"query": VIDEO_PAGE, "variables": f'{{"id": "{served.videos[1]}"}}'}
    miss = served.client.get("/graphql", params=params)
    before = hits()
    hit = served.client.get("/graphql", params=params)
    assert hits() == before + 1 and data(hit)
    assert (
        hit.content == miss.content == ask(served.client, VIDEO_PAGE, id=served.videos[1]).content
    )


# -- never older than the read models ----------------------------------------------------
def test_an_answer_is_not_served_after_its_projection_advanced(served):
    video = served.videos[2]
    assert data(ask(served.client, VIDEO_PAGE, id=video))["video"]["stats"]["views"] == 3
    before = data(ask(served.client, SUMMARY))["summary"]["views"]
    hit_count = hits()
    assert data(ask(served.client, VIDEO_PAGE, id=video))["video"]["stats"]["views"] == 3
    assert hits() == hit_count + 1  # the entry is live
    served.projected(view(served.client, video))  # committed and announced on the hub
    page = data(ask(served.client, VIDEO_PAGE, id=video))  # no token: nothing to wait for
    assert page["video"]["stats"]["views"] == 4
    assert data(ask(served.client, SUMMARY))["summary"]["views"] == before + 1
    trending = data(ask(served.client, TRENDING))["trending"]
    assert next(t for t in trending if t["key"] == video)["views"] == 4


@dataclass
class Elsewhere:
    """The app serves; a worker container projects, as `reelpulse project` would in its own
    process: its commits are announced on its own hub, never on the app's."""

    client: TestClient
    worker: Container
    videos: list[str]

    def project(self) -> None:
        self.worker.run_projections_until_idle()


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Elsewhere]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    settings = Settings(
        database_url=url, projections_in_process=False, consistency_timeout_seconds=0.5
    )
    container = bootstrap(settings)
    worker = bootstrap(Settings(database_url=url))
    try:
        with TestClient(create_app(container), headers=HEADERS) as client:
            _, videos, _ = catalog(client, "remote")
            world = Elsewhere(client, worker, videos)
            world.project()
            yield world
    finally:
        worker.close()
        container.close()


def test_projections_in_another_process_are_seen_within_the_staleness_bound(elsewhere):
    client, video = elsewhere.client, elsewhere.videos[0]
    assert data(ask(client, VIDEO_PAGE, id=video))["video"]["stats"]["views"] == 1
    head = data(ask(client, SUMMARY))["summary"]["headPosition"]
    before = hits()
    data(ask(client, VIDEO_PAGE, id=video))
    data(ask(client, SUMMARY))
    assert hits() == before + 2
    position = view(client, video)
    time.sleep(2 * STALE_AFTER)  # the documented bound for what nobody announced here
    # Written, not yet projected: the summary shows the new head (the lag), not a copy.
    assert data(ask(client, SUMMARY))["summary"]["headPosition"] == position > head
    elsewhere.project()
    time.sleep(2 * STALE_AFTER)
    assert data(ask(client, VIDEO_PAGE, id=video))["video"]["stats"]["views"] == 2


def test_a_token_beyond_the_cached_version_is_never_answered_from_the_cache(elsewhere):
    client, video = elsewhere.client, elsewhere.videos[0]
    cached = ask(client, VIDEO_PAGE, id=video)
    assert data(cached)["video"]["stats"]["views"] == 1
    before = hits()
    # Nothing written: the cached version is current, yet below the token.
    beyond = {"X-Consistency-Token": str(elsewhere.worker.head_position + 1)}
    waited = ask(client, VIDEO_PAGE, beyond, id=video).json()  # beyond the head: refused
    assert waited["errors"][0]["extensions"]["code"] == "CONSISTENCY_TOKEN_AHEAD", waited
    position = view(client, video)  # recorded; nobody projects it yet
    token = {"X-Consistency-Token": str(position)}
    waited = ask(client, VIDEO_PAGE, token, id=video).json()
    assert waited["errors"][0]["extensions"]["code"] == "CONSISTENCY_TIMEOUT", waited
    assert hits() == before
    elsewhere.project()
    time.sleep(2 * STALE_AFTER)
    fresh = data(ask(client, VIDEO_PAGE, token, id=video))  # a miss: the version moved
    assert fresh["video"]["stats"]["views"] == 2
    # A token the cached version satisfies is answered from the cache.
    assert data(ask(client, VIDEO_PAGE, token, id=video)) == fresh
    assert hits() == before + 1


# -- the caller ----------------------------------------------------------------------------
CASE_PAGE = "query($id: UUID!) { video(id: $id) { id moderationCase { id status reports } } }"


def test_callers_whose_answers_differ_never_share_an_entry(served):
    keys = ApiKeyStore(served.container.read_engine)
    owner, _ = keys.create(Role.CREATOR, subject_id=uuid.UUID(served.creator))
    other, _ = keys.create(Role.CREATOR, subject_id=uuid.uuid4())
    ingest, _ = keys.create(Role.INGEST)
    analyst, _ = keys.create(Role.ANALYST)
    video = served.videos[0]
    report = {"reporter_id": str(uuid.uuid4()), "reason": "spam"}
    ok(served.client.post(f"/v1/videos/{video}/reports", json=report))
    served.projected(served.container.head_position)

    as_admin = ask(served.client, CASE_PAGE, id=video)
    assert data(as_admin)["video"]["moderationCase"]["reports"] == 1
    assert data(ask(served.client, CASE_PAGE, id=video)) == data(as_admin)  # cached for admin
    # Another creator's case: an object-level FORBIDDEN, never the admin's answer.
    for _ in range(2):
        body = ask(served.client, CASE_PAGE, {"X-API-Key": other}, id=video).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert data(ask(served.client, CASE_PAGE, {"X-API-Key": owner}, id=video)) == data(as_admin)
    # A role without the root field: FORBIDDEN, however often the admin asked.
    data(ask(served.client, SUMMARY))
    for _ in range(2):
        body = ask(served.client, SUMMARY, {"X-API-Key": ingest}).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    # Analysts get their own entries, and hits.
    data(ask(served.client, SUMMARY, {"X-API-Key": analyst}))
    before = hits()
    data(ask(served.client, SUMMARY, {"X-API-Key": analyst}))
    assert hits() == before + 1


def test_credentials_are_checked_on_every_hit(served):
    cached = ask(served.client, SUMMARY)
    data(ask(served.client, SUMMARY))
    for headers in ({"X-API-Key": ""}, {"X-API-Key": "rp_nosuch_key"}):
        r = ask(served.client, SUMMARY, headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthenticated"
    r = TestClient(served.client.app).post("/graphql", json={"query": SUMMARY})  # no key
    assert r.status_code == 401 and cached.content not in r.content


def test_hits_are_charged_to_the_rate_limit(tmp_path):
    container = bootstrap(
        Settings(database_url=f"sqlite:///{tmp_path / 's.db'}", rate_limit_per_minute=3)
    )
    analyst, _ = ApiKeyStore(container.read_engine).create(Role.ANALYST)
    try:
        with TestClient(create_app(container), headers={"X-API-Key": analyst}) as client:
            answers = [ask(client, SUMMARY) for _ in range(4)]  # a miss, then hits
            assert [r.status_code for r in answers] == [200, 200, 200, 429]
            assert answers[1].content == answers[0].content
            limited = answers[3]
            assert limited.headers["retry-after"]
            assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    finally:
        container.close()


def test_hits_carry_their_own_request_id(served):
    ask(served.client, SUMMARY)
    first = ask(served.client, SUMMARY)
    second = ask(served.client, SUMMARY, {"X-Request-ID": "trace-me-42"})
    assert second.headers["x-request-id"] == "trace-me-42"
    assert first.headers["x-request-id"] not in ("", "trace-me-42")
    assert first.content == second.content


# -- errors --------------------------------------------------------------------------------
def test_errors_are_never_kept(served, monkeypatch):
    from adapters.readmodel.trending_reader import SqlTrendingReader

    real = SqlTrendingReader.trending
    calls = {"n": 0}

    def flaky(self: Any, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the database hiccupped")
        return real(self, *args)

    monkeypatch.setattr(SqlTrendingReader, "trending", flaky)
    failed = ask(served.client, TRENDING).json()
    assert "Unexpected error" in failed["errors"][0]["message"]
    assert data(ask(served.client, TRENDING))["trending"]  # executed again, not the error
    too_many = "{ trending(first: 101) { key } }"
    before = hits()
    for _ in range(2):
        body = ask(served.client, too_many).json()
        assert body["errors"][0]["extensions"]["code"] == "PAGE_SIZE"
    assert hits() == before
