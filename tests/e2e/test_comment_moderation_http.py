"""Comment moderation over REST: report, flag and decide a comment; the queue; every bad
input is a 4xx with a clear code, never a 500."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.auth.keys import ApiKeyStore
from adapters.auth.principal import Role
from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings
from domain.comment_moderation import CommentCase


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}"))
    client = TestClient(create_app(container, run_background=False), headers=HEADERS)
    with client:
        yield client, container
    container.close()


def ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def video(client: TestClient, handle: str = "ann") -> str:
    body = {"handle": handle, "display_name": "Ann", "region": "US"}
    creator = ok(client.post("/v1/creators", json=body))["id"]
    body = {"creator_id": creator, "caption": "hi", "hashtags": [], "duration_seconds": 10}
    return ok(client.post("/v1/videos", json=body))["id"]


def comment(client: TestClient, video_id: str, text: str) -> str:
    body = {"viewer_id": str(uuid.uuid4()), "text": text}
    return ok(client.post(f"/v1/videos/{video_id}/comments", json=body))["details"]["comment_id"]


def report(client: TestClient, comment_id: str, **fields):
    body = {"reporter_id": str(uuid.uuid4()), "reason": "harassment", **fields}
    return client.post(f"/v1/comments/{comment_id}/reports", json=body)


def test_a_reported_comment_is_decided_and_shows_in_the_queue_with_its_text(served):
    client, container = served
    v = video(client)
    c = comment(client, v, "you are a pathetic loser")

    case = ok(report(client, c, video_id=v))["id"]
    assert case == str(CommentCase.create_id(uuid.UUID(c)))
    flag = {"video_id": v, "model": "perspective", "score": 0.93, "reasons": ["insult"]}
    assert ok(client.post(f"/v1/comments/{c}/flags", json=flag))["id"] == case
    container.run_projections_until_idle()

    [row] = ok(client.get("/v1/comment-cases"))
    assert (row["case_id"], row["text"], row["status"]) == (
        case,
        "you are a pathetic loser",
        "open",
    )
    assert (row["reports"], row["reasons"], row["flags"], row["flag_score"]) == (
        1, {"harassment": 1}, 1, 0.93)  # fmt: skip

    decided = {"moderator_id": str(uuid.uuid4()), "outcome": "remove", "note": "insult"}
    assert ok(client.post(f"/v1/comment-cases/{case}/decision", json=decided))["version"] == 4
    container.run_projections_until_idle()
    assert ok(client.get("/v1/comment-cases")) == []
    [row] = ok(client.get("/v1/comment-cases", params={"status": "decided", "video_id": v}))
    assert (row["outcome"], row["decided_at"] is not None) == ("remove", True)


def test_bad_reports_are_4xx_with_their_code(served):
    client, _ = served
    v = video(client)
    c = comment(client, v, "nice")
    other = video(client, "bob")

    error(report(client, c, video_id=v, reason="rude"), 422, "invalid_input")
    error(report(client, c), 422, "invalid_input")  # no video_id
    error(report(client, "not-a-uuid", video_id=v), 422, "invalid_input")
    error(report(client, c, video_id=str(uuid.uuid4())), 404, "video_not_found")
    reporter = str(uuid.uuid4())
    ok(report(client, c, video_id=v, reporter_id=reporter))
    error(report(client, c, video_id=v, reporter_id=reporter), 409, "already_reported")
    error(report(client, c, video_id=other), 422, "comment_video_mismatch")


def test_bad_flags_and_decisions_are_4xx_with_their_code(served):
    client, _ = served
    v = video(client)
    c = comment(client, v, "nice")
    flag = {"video_id": v, "model": "m", "score": 1.5}
    error(client.post(f"/v1/comments/{c}/flags", json=flag), 422, "invalid_input")
    flag = {"video_id": v, "model": "", "score": 0.5}
    error(client.post(f"/v1/comments/{c}/flags", json=flag), 422, "invalid_input")

    decide = {"moderator_id": str(uuid.uuid4()), "outcome": "keep"}
    missing = client.post(f"/v1/comment-cases/{uuid.uuid4()}/decision", json=decide)
    error(missing, 404, "comment_case_not_found")
    case = ok(report(client, c, video_id=v))["id"]
    bad = {**decide, "outcome": "restrict"}
    error(client.post(f"/v1/comment-cases/{case}/decision", json=bad), 422, "invalid_input")
    stale = {**decide, "expected_version": 1}
    error(client.post(f"/v1/comment-cases/{case}/decision", json=stale), 409, "version_conflict")
    ok(client.post(f"/v1/comment-cases/{case}/decision", json=decide))
    again = client.post(f"/v1/comment-cases/{case}/decision", json=decide)
    error(again, 409, "case_not_open")
    late = report(client, c, video_id=v)
    error(late, 409, "case_not_open")


def test_bad_queue_queries_are_422(served):
    client, _ = served
    for params in ({"status": "closed"}, {"first": 0}, {"first": 101}, {"video_id": "x"}):
        error(client.get("/v1/comment-cases", params=params), 422, "invalid_input")


CASES = """query($status: CommentCaseStatus!, $video: UUID) {
  commentCases(status: $status, videoId: $video) {
    caseId commentId videoId authorId text status reports reasons flags flagScore outcome
    decidedAt
  }
}"""


def test_graphql_reads_the_queue_as_rest_does_and_only_for_moderators(served):
    client, container = served
    v = video(client)
    c = comment(client, v, "nobody asked for your opinion")
    case = ok(report(client, c, video_id=v))["id"]
    container.run_projections_until_idle()

    def cases(status: str, headers: dict | None = None, video_id: str | None = None) -> dict:
        body = {"query": CASES, "variables": {"status": status, "video": video_id}}
        r = client.post("/graphql", json=body, headers=headers or {})
        assert r.status_code == 200, r.text
        return r.json()

    [row] = cases("OPEN")["data"]["commentCases"]
    [rest] = ok(client.get("/v1/comment-cases"))
    assert (row["caseId"], row["commentId"], row["videoId"]) == (case, c, v)
    assert (row["text"], row["authorId"]) == (rest["text"], rest["author_id"])
    assert (row["status"], row["reports"], row["reasons"]) == ("OPEN", 1, {"harassment": 1})
    assert (row["flags"], row["flagScore"], row["outcome"]) == (0, None, None)

    decided = {"moderator_id": str(uuid.uuid4()), "outcome": "keep", "note": ""}
    ok(client.post(f"/v1/comment-cases/{case}/decision", json=decided))
    container.run_projections_until_idle()
    assert cases("OPEN")["data"]["commentCases"] == []
    [row] = cases("DECIDED", video_id=v)["data"]["commentCases"]
    assert (row["outcome"], row["decidedAt"] is not None) == ("keep", True)
    assert cases("DECIDED", video_id=str(uuid.uuid4()))["data"]["commentCases"] == []

    analyst, _ = ApiKeyStore(container.read_engine).create(Role.ANALYST)
    refused = cases("OPEN", headers={"X-API-Key": analyst})
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "commentCases" in refused["errors"][0]["message"]
