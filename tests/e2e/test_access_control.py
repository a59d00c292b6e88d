"""Access control through the real app (FastAPI + strawberry on a real SQLite store):
every route and GraphQL root field has a declared policy and enforces it for every role,
credentials are checked (keys, revocation, JWT signature/expiry/audience), creators act
only on their own objects, viewer identities are hidden from analysts, and commands and
GraphQL operations are rate limited per key."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from support.auth import HEADERS
from typer.testing import CliRunner

from adapters.auth import jwt as tokens
from adapters.auth.dev import ensure_dev_key
from adapters.auth.policy import GRAPHQL_POLICY, Policy, iter_routes, route_policy
from adapters.auth.principal import ALL_ROLES, Role
from adapters.auth.ratelimit import RateLimiter
from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings

SECRET = "test-secret-0123456789-0123456789-abcdef"


@dataclass
class World:
    client: TestClient
    container: Container
    keys: dict[str, str]  # role (and "creator_b") -> API key
    creator_a: str
    creator_b: str
    video_a: str
    video_b: str
    case_a: str
    case_b: str

    def as_(self, who: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[who]}

    def gql(self, who: str, query: str, **variables: Any) -> dict[str, Any]:
        r = self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.as_(who)
        )
        assert r.status_code == 200, r.text
        return r.json()


def _ok(r: Any) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    return r.json()


def _removed_case(client: TestClient, creator: str, handle: str) -> tuple[str, str]:
    """A video of `creator` with a decided (remove) case, ready to be appealed."""
    video = _ok(client.post("/v1/videos", json={
        "creator_id": creator, "caption": handle, "duration_seconds": 10}))["id"]  # fmt: skip
    case = _ok(client.post(f"/v1/videos/{video}/reports", json={
        "reporter_id": str(uuid.uuid4()), "reason": "spam"}))["id"]  # fmt: skip
    _ok(client.post(f"/v1/cases/{case}/decision", json={
        "moderator_id": str(uuid.uuid4()), "outcome": "remove", "policy": "spam"}))  # fmt: skip
    return video, case


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    db = tmp_path_factory.mktemp("access") / "store.db"
    container = bootstrap(Settings(database_url=f"sqlite:///{db}"))
    app = create_app(container, run_background=False)
    app.state.auth.jwt_secret = SECRET
    client = TestClient(app, headers=HEADERS)  # the development admin key
    a = _ok(
        client.post("/v1/creators", json={"handle": "ann", "display_name": "A", "region": "US"})
    )["id"]
    b = _ok(
        client.post("/v1/creators", json={"handle": "bob", "display_name": "B", "region": "US"})
    )["id"]
    video_a, case_a = _removed_case(client, a, "a")
    video_b, case_b = _removed_case(client, b, "b")
    store = app.state.auth.keys
    keys = {r.value: store.create(r)[0] for r in ALL_ROLES if r is not Role.CREATOR}
    keys["creator"] = store.create(Role.CREATOR, subject_id=uuid.UUID(a), label="ann")[0]
    keys["creator_b"] = store.create(Role.CREATOR, subject_id=uuid.UUID(b), label="bob")[0]
    container.run_projections_until_idle()  # the read side knows the cases
    yield World(client, container, keys, a, b, video_a, video_b, case_a, case_b)
    client.close()
    container.close()


# -- every route and field has a policy ----------------------------------------------------
def test_every_route_declares_a_policy(world):
    routes = list(iter_routes(world.client.app.routes))
    missing = [(r.path, r.methods) for r in routes if route_policy(r) is None]
    assert not missing, f"routes without an access policy: {missing}"
    v1 = [r for r in routes if str(r.path).startswith("/v1")]
    assert len(v1) >= 25
    public = [
        r.path for r in v1 if not isinstance(route_policy(r), Policy) or route_policy(r).public
    ]
    assert not public, f"/v1 routes must not be public: {public}"


def test_every_graphql_root_field_is_in_the_policy_table(world):
    schema = world.client.app.state.graphql_schema if hasattr(
        world.client.app.state, "graphql_schema") else None  # fmt: skip
    from adapters.graphql.schema import build_schema

    schema = schema or build_schema(development=True)
    for root in ("Query", "Subscription"):
        fields = set(schema._schema.get_type(root).fields)  # type: ignore[union-attr]
        assert fields == set(GRAPHQL_POLICY[root]), (
            f"{root}: without policy {fields - set(GRAPHQL_POLICY[root])}, "
            f"stale entries {set(GRAPHQL_POLICY[root]) - fields}"
        )
    assert schema._schema.mutation_type is None  # mutations would need entries too


def _fill(path: str, role: Role, world: World) -> str:
    """Path parameters: the caller's own creator id (object checks pass), unknown others."""
    own = world.creator_a if role is Role.CREATOR else str(uuid.uuid4())
    return (
        path.replace("{creator_id}", own)
        .replace("{video_id}", str(uuid.uuid4()))
        .replace("{case_id}", str(uuid.uuid4()))
        .replace("{comment_id}", str(uuid.uuid4()))
        .replace("{name}", "no_such_projection")
        .replace("{job_id}", "no-such-job")
    )


def test_route_role_matrix(world):
    """Every route x every role: 403 exactly for the roles its policy leaves out, never
    401/403 for the others (they get 2xx or an input error), 401 without credentials."""
    checked = 0
    for route in iter_routes(world.client.app.routes):
        policy = route_policy(route)
        if not isinstance(policy, Policy) or policy.public:
            continue
        for method in sorted(route.methods or ()):
            for role in ALL_ROLES:
                # an invalid query parameter keeps allowed admin calls from starting work
                url = _fill(route.path, role, world) + "?in_place=maybe&sample_seconds=0"
                r = world.client.request(method, url, json={}, headers=world.as_(role.value))
                if policy.allows(role):
                    assert r.status_code not in (401, 403), (method, route.path, role, r.text)
                else:
                    assert r.status_code == 403, (method, route.path, role, r.status_code)
                    assert r.json()["error"]["code"] == "forbidden"
                checked += 1
            anonymous = world.client.request(
                method, _fill(route.path, Role.ADMIN, world), json={}, headers={"X-API-Key": ""}
            )
            assert anonymous.status_code == 401, (method, route.path)
    print(f"route x role matrix: {checked} calls")
    assert checked >= 25 * len(ALL_ROLES)


def test_open_endpoints_stay_open(world):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/"):
        assert world.client.get(path, headers={"X-API-Key": ""}).status_code == 200, path


# -- credentials ------------------------------------------------------------------------
def _summary(world: World, headers: dict[str, str]) -> Any:
    return world.client.post("/graphql", json={"query": "{ summary { videos } }"}, headers=headers)


def test_missing_bad_and_revoked_keys_get_401(world):
    assert world.client.get("/v1/admin/rebuilds", headers={"X-API-Key": ""}).status_code == 401
    for bad in ("nonsense", "rp_dev_wrongsecret", "rp_nosuchid_secret", world.keys["admin"] + "x"):
        r = world.client.get("/v1/admin/rebuilds", headers={"X-API-Key": bad})
        assert r.status_code == 401, bad
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert _summary(world, {"X-API-Key": bad}).status_code == 401
    store = world.client.app.state.auth.keys
    key, info = store.create(Role.ADMIN, label="to revoke")
    bearer = {"X-API-Key": "", "Authorization": f"Bearer {key}"}  # not the client's key
    assert world.client.get("/v1/admin/rebuilds", headers=bearer).status_code == 200
    assert store.revoke(info.key_id)
    assert world.client.get("/v1/admin/rebuilds", headers=bearer).status_code == 401
    assert [k.key_id for k in store.list(include_revoked=True) if k.revoked_at] == [info.key_id]


def test_jwt_signature_expiry_and_audience_are_checked(world):
    def bearer(token: str) -> dict[str, str]:
        return {"X-API-Key": "", "Authorization": f"Bearer {token}"}

    good = tokens.issue(SECRET, subject="svc", role="analyst", audience="reelpulse")
    assert _summary(world, bearer(good)).status_code == 200
    expired = tokens.issue(
        SECRET, subject="svc", role="analyst", audience="reelpulse", now=time.time() - 7200
    )
    wrong_audience = tokens.issue(SECRET, subject="svc", role="analyst", audience="other")
    forged = tokens.issue("another-secret-of-32-bytes-length!", subject="svc", role="admin",
                          audience="reelpulse")  # fmt: skip
    unsigned = good.rsplit(".", 1)[0] + "."
    for token, code in [(expired, "token_expired"), (wrong_audience, "invalid_token"),
                        (forged, "invalid_token"), (unsigned, "invalid_token")]:  # fmt: skip
        r = world.client.get("/v1/admin/rebuilds", headers=bearer(token))
        assert r.status_code == 401 and r.json()["error"]["code"] == code, r.text
        assert _summary(world, bearer(token)).status_code == 401
    # a valid token is held to its role like a key
    r = world.client.get("/v1/admin/rebuilds", headers=bearer(good))
    assert r.status_code == 403


# -- object-level checks ---------------------------------------------------------------
def test_creator_acts_only_on_own_videos_and_cases(world):
    a, edit = world.as_("creator"), {"caption": "mine", "hashtags": []}
    r = world.client.patch(f"/v1/videos/{world.video_b}", json=edit, headers=a)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = world.client.post(f"/v1/videos/{world.video_b}/deletion", json={}, headers=a)
    assert r.status_code == 403
    r = world.client.post(f"/v1/cases/{world.case_b}/appeal",
                          json={"appellant_id": world.creator_b, "statement": "not spam"},
                          headers=a)  # fmt: skip
    assert r.status_code == 403
    r = world.client.post("/v1/videos", json={"creator_id": world.creator_b, "duration_seconds": 5},
                          headers=a)  # fmt: skip
    assert r.status_code == 403
    r = world.client.patch(
        f"/v1/creators/{world.creator_b}", json={"display_name": "x", "region": "US"}, headers=a
    )
    assert r.status_code == 403
    # their own: allowed
    assert (
        world.client.patch(f"/v1/videos/{world.video_a}", json=edit, headers=a).status_code == 200
    )
    r = world.client.post(f"/v1/cases/{world.case_a}/appeal",
                          json={"appellant_id": world.creator_a, "statement": "not spam"},
                          headers=a)  # fmt: skip
    assert r.status_code == 200, r.text
    # and B's own key may act on B's video
    b = world.as_("creator_b")
    assert (
        world.client.patch(f"/v1/videos/{world.video_b}", json=edit, headers=b).status_code == 200
    )


def test_creator_reads_only_own_cases_over_graphql(world):
    query = "query($id: UUID!) { moderationCase(id: $id) { id creatorId } }"
    other = world.gql("creator", query, id=world.case_b)
    assert other["data"] == {"moderationCase": None} or other["data"] is None
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    own = world.gql("creator", query, id=world.case_a)
    assert "errors" not in own
    nested = world.gql("creator", "query($id: UUID!) { video(id: $id) { moderationCase { id } } }",
                       id=world.video_b)  # fmt: skip
    assert nested["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# -- visibility ------------------------------------------------------------------------
def test_viewer_identities_are_hidden_from_analysts(world):
    viewer = str(uuid.uuid4())
    sessions = "query($v: UUID!) { viewerSessions(viewerId: $v) { views } }"
    recos = "query($v: UUID!) { recommendations(viewerId: $v) { videoId } }"
    timeline = "query($id: UUID!) { moderationCase(id: $id) { reports timeline { actorId } } }"
    for query, variables in [(sessions, {"v": viewer}), (recos, {"v": viewer}),
                             (timeline, {"id": world.case_a})]:  # fmt: skip
        denied = world.gql("analyst", query, **variables)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN", denied
        allowed = world.gql("moderator", query, **variables)
        assert "errors" not in allowed, allowed
    # the moderator's timeline has the reporter; the analyst's case has counts, no identities
    case = world.gql("moderator", timeline, id=world.case_a)["data"]["moderationCase"]
    assert any(e["actorId"] for e in case["timeline"])
    counts = world.gql("analyst", "query($id: UUID!) { moderationCase(id: $id) { reports } }",
                       id=world.case_a)  # fmt: skip
    assert counts["data"]["moderationCase"]["reports"] == 1


def test_graphql_root_fields_are_checked_per_role(world):
    assert world.gql("ingest", "{ summary { videos } }")["errors"][0]["extensions"]["code"] == (
        "FORBIDDEN"
    )
    spread = 'query { ...F } fragment F on Query { viewerSessions(viewerId: "%s") { views } }'
    r = world.gql("analyst", spread % uuid.uuid4())
    assert r["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # fragments do not hide fields
    assert "errors" not in world.gql("analyst", "{ summary { videos } __typename }")


def test_websocket_subscriptions_authenticate(world):
    client = world.client
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"],
                                  headers={"X-API-Key": ""}) as ws:  # fmt: skip
        ws.send_json({"type": "connection_init", "payload": {}})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4403
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"],
                                  headers={"X-API-Key": ""}) as ws:  # fmt: skip
        ws.send_json({"type": "connection_init",
                      "payload": {"Authorization": f"Bearer {world.keys['analyst']}"}})  # fmt: skip
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe",
                      "payload": {"query": "subscription { alerts { id } }"}})  # fmt: skip
        ws.send_json({"id": "2", "type": "subscribe",
                      "payload": {"query": "subscription { summary { videos } }"}})  # fmt: skip
        first = ws.receive_json()
        assert first["type"] == "next" and first["id"] == "2", first
        ws.send_json({"id": "2", "type": "complete"})
        ws.send_json({"id": "1", "type": "complete"})


# -- rate limits -----------------------------------------------------------------------
def test_commands_are_rate_limited_per_key_with_retry_after(world):
    auth = world.client.app.state.auth
    saved, auth.limiter = auth.limiter, RateLimiter(per_minute=3)
    try:
        ingest = world.as_("ingest")
        view = {"viewer_id": str(uuid.uuid4()), "watch_seconds": 1}
        url = f"/v1/videos/{world.video_a}/views"
        statuses = [world.client.post(url, json=view, headers=ingest).status_code for _ in range(4)]
        assert statuses[:3] != [429] * 3 and 429 not in statuses[:3], statuses
        limited = world.client.post(url, json=view, headers=ingest)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        # reads are not commands; another key has its own bucket
        assert world.client.post(url, json=view, headers=world.as_("admin")).status_code != 429
    finally:
        auth.limiter = saved


def test_graphql_counts_operations_not_requests(world):
    auth = world.client.app.state.auth
    saved, auth.limiter = auth.limiter, RateLimiter(per_minute=3)
    try:
        analyst = world.as_("analyst")
        batch = [{"query": "{ summary { videos } }"}] * 3
        r = world.client.post("/graphql", json=batch, headers=analyst)
        assert r.status_code == 200 and all("errors" not in x for x in r.json()), r.text
        # one HTTP request so far, but three operations: the bucket is empty
        r = world.client.post("/graphql", json={"query": "{ summary { videos } }"}, headers=analyst)
        assert r.status_code == 429, r.text
        assert r.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(r.headers["retry-after"]) >= 1
    finally:
        auth.limiter = saved


# -- development key and the keys CLI -----------------------------------------------------
def test_serve_creates_a_development_key_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("REELPULSE_DEV_API_KEY", raising=False)
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path}/dev.db"))
    try:
        key = ensure_dev_key(container)
        assert key is not None and key.startswith("rp_")
        assert ensure_dev_key(container) is None  # a key exists now: nothing new to print
        with TestClient(create_app(container, run_background=False)) as client:
            assert client.get("/v1/admin/rebuilds").status_code == 401  # not open
            assert client.get("/v1/admin/rebuilds", headers={"X-API-Key": key}).status_code == 200
    finally:
        container.close()


def test_keys_cli_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from adapters.cli_keys import app

    monkeypatch.setenv("REELPULSE_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    runner = CliRunner()
    creator = str(uuid.uuid4())
    made = runner.invoke(app, ["create", "--role", "creator", "--subject", creator, "--label", "x"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert key.startswith("rp_")
    assert runner.invoke(app, ["create", "--role", "creator"]).exit_code == 2  # no subject
    listed = runner.invoke(app, ["list"])
    key_id = key.split("_")[1]
    assert key_id in listed.stdout and creator in listed.stdout and key not in listed.stdout
    assert runner.invoke(app, ["revoke", key_id]).exit_code == 0
    assert runner.invoke(app, ["revoke", key_id]).exit_code == 1
    assert key_id not in runner.invoke(app, ["list"]).stdout
