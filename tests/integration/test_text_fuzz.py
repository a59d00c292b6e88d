"""Every text field of every command, through every door, with the text that stopped two
read models for good (issue 15 acceptance 2).

Each text field of each REST command (the OpenAPI document is read to prove the list is
complete), of the JSON and NDJSON batch, and of Kafka ingest, gets NUL, other control
characters, DEL, lone surrogates, non-characters, tabs and line breaks, 4-byte
characters, and seeded random strings drawn from all of Unicode. Checks: never a 5xx;
text no read model can hold is refused (4xx, or a dead letter); then every projection
reaches the head on PostgreSQL (the database that cannot hold NUL) with no event
quarantined and none failing.
"""

import json
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2e.servers import free_port, start_server
from support.auth import HEADERS

from adapters.bootstrap import bootstrap
from adapters.settings import Settings
from domain.comment_moderation import CommentCase

pytestmark = pytest.mark.postgres

FIXED = [
    "x\x00y", "\x00", "a\x01b", "\x1b[31mred", "del\x7f", "\ud800", "a\udfffb", "\ufffe",
    "\uffff", "tab\there", "line\nbreak", "cr\r\n", "😀 \U0001d518 ok", "中文 é",
    "\u200d\u00a0", "plain",
]  # fmt: skip
# Normalised before their pattern is checked: hashtags to word characters (NFKC,
# case-folded; "x\x00y" is the tag "xy"), handles and regions stripped (then a-z0-9._ /
# two letters). Accepted or refused, never stored with what no read model can hold.
NORMALISED = {"hashtags[]", "handle", "region"}
MULTILINE = {"text", "caption", "note", "statement", "reason"}  # free text with lines
UNSTORABLE = {chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)}
UNSTORABLE |= {chr(c) for c in range(0xD800, 0xE000)} | {"\ufffe", "\uffff"}
RANDOM_PER_FIELD = 6
TIMEOUT = 15.0


def _random_texts(seed: str) -> list[str]:
    """Seeded strings from every plane, weighted towards the characters that matter."""
    rng = random.Random(seed)
    pools = [(0x00, 0x20), (0x7F, 0xA0), (0xD800, 0xDFFF), (0xFFF0, 0xFFFF), (0x20, 0x7E),
             (0x1F300, 0x1FAFF), (0x10000, 0x10FFFF), (0x4E00, 0x9FFF)]  # fmt: skip
    out = []
    for _ in range(RANDOM_PER_FIELD):
        chars = [chr(rng.randint(*rng.choice(pools))) for _ in range(rng.randint(1, 12))]
        out.append("".join(chars))
    return out


def _texts(field: str) -> list[str]:
    return FIXED + _random_texts(field)


def _unstorable(text: str, field: str) -> bool:
    """As the server reads it: JSON joins an escaped surrogate pair into one character.
    Fields of one line (ids, names, codes) refuse tab and line breaks too."""
    refused = UNSTORABLE if field in MULTILINE else UNSTORABLE | {"\t", "\n", "\r"}
    return any(c in refused for c in json.loads(json.dumps(text)))


# The commands, their bodies and their text fields. A field missing here (a new one in
# the OpenAPI document) fails test_every_text_field_of_the_api_is_covered.
def _commands(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    creator, video, case = ids["creator"], ids["video"], ids["case"]
    viewer = str(uuid.uuid4())
    return [
        ("POST", "/v1/creators",
         {"handle": "fz" + uuid.uuid4().hex[:8], "display_name": "F", "region": "DE"},
         ["display_name", "handle", "region"]),
        ("PATCH", f"/v1/creators/{creator}", {"display_name": "F", "region": "DE"},
         ["display_name", "region"]),
        ("POST", "/v1/videos",
         {"creator_id": creator, "duration_seconds": 5, "caption": "c", "hashtags": ["h"],
          "sound_id": "s"},
         ["caption", "sound_id", "hashtags[]"]),
        ("PATCH", f"/v1/videos/{video}", {"caption": "c", "hashtags": ["h"]},
         ["caption", "hashtags[]"]),
        ("POST", f"/v1/videos/{video}/views", {"viewer_id": viewer, "watch_seconds": 1},
         ["client_event_id"]),
        ("POST", f"/v1/videos/{video}/shares", {"viewer_id": viewer, "channel": "copy_link"},
         ["client_event_id"]),
        ("POST", f"/v1/videos/{video}/comments", {"viewer_id": viewer, "text": "t"},
         ["text", "client_event_id"]),
        ("POST", f"/v1/creators/{creator}/followers", {"viewer_id": viewer},
         ["client_event_id"]),
        ("POST", f"/v1/videos/{video}/flags",
         {"model": "m", "score": 0.5, "reasons": ["r"]}, ["model", "reasons[]"]),
        ("POST", f"/v1/cases/{case}/decision",
         {"moderator_id": str(uuid.uuid4()), "outcome": "keep", "policy": "p", "note": "n"},
         ["policy", "note"]),
        ("POST", f"/v1/comments/{ids['comment']}/flags",
         {"video_id": video, "model": "m", "score": 0.5, "reasons": ["r"]},
         ["model", "reasons[]"]),
        ("POST", f"/v1/comment-cases/{ids['comment_case']}/decision",
         {"moderator_id": str(uuid.uuid4()), "outcome": "keep", "note": "n"}, ["note"]),
    ]  # fmt: skip


# Fields checked by other commands of the same kind (the same domain check): likes,
# unlikes, unfollows and comment deletions take client_event_id like views; suspension
# and reinstatement reasons, the appeal statement and its resolution note are free text
# through check_text like the decision's note (tests/unit/test_text_values.py feeds them).
SAME_CHECK = {
    ("/v1/creators/{creator_id}/suspension", "reason"),
    ("/v1/creators/{creator_id}/reinstatement", "reason"),
    ("/v1/cases/{case_id}/appeal", "statement"),
    ("/v1/cases/{case_id}/appeal-resolution", "note"),
    ("/graphql", "query"),
    ("/graphql", "operationName"),
}


def _view(ids: dict[str, str]) -> dict[str, Any]:
    return {"type": "view", "viewer_id": str(uuid.uuid4()), "video_id": ids["video"],
            "watch_seconds": 1}  # fmt: skip


def _json(value: Any) -> bytes:
    """JSON with \\u escapes: a lone surrogate is sent as JSON allows (\\ud800), where
    httpx's and orjson's encoders refuse it."""
    return json.dumps(value).encode()


def _with(body: dict[str, Any], field: str, text: str) -> dict[str, Any]:
    if field.endswith("[]"):
        return {**body, field[:-2]: [text]}
    return {**body, field: text}


@pytest.fixture(scope="module")
def server(pg_server) -> Iterator[tuple[str, str]]:
    with pg_server.fresh_database() as url:
        port = free_port()
        proc = start_server(url, port, timeout=90)
        try:
            yield f"http://127.0.0.1:{port}", url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _setup(http: httpx.Client, base: str) -> dict[str, str]:
    creator = http.post(f"{base}/v1/creators",
                        json={"handle": "fuzzer", "display_name": "F", "region": "DE"})  # fmt: skip
    assert creator.status_code == 201, creator.text
    cid = creator.json()["id"]
    video = http.post(f"{base}/v1/videos", json={"creator_id": cid, "duration_seconds": 30})
    assert video.status_code == 201, video.text
    vid = video.json()["id"]
    report = http.post(f"{base}/v1/videos/{vid}/reports",
                       json={"reporter_id": str(uuid.uuid4()), "reason": "spam"})  # fmt: skip
    assert report.status_code in (200, 201), report.text
    comment = str(uuid.uuid4())  # a case needs its video, not the comment's event
    flagged = http.post(f"{base}/v1/comments/{comment}/reports",
                        json={"video_id": vid, "reporter_id": str(uuid.uuid4()),
                              "reason": "spam"})  # fmt: skip
    assert flagged.status_code in (200, 201), flagged.text
    return {"creator": cid, "video": vid, "case": report.json()["id"], "comment": comment,
            "comment_case": str(CommentCase.create_id(uuid.UUID(comment)))}  # fmt: skip


def _open_case(http: httpx.Client, base: str, ids: dict[str, str], path: str) -> str:
    """`path` for a case that is still open: a decision closes its case, and a second
    decision is refused as case_not_open before its text is read, so each request of a
    decision's fuzz gets a new case (a report on a new video, or on a new comment)."""
    if path.startswith("/v1/cases/"):
        video = http.post(f"{base}/v1/videos",
                          json={"creator_id": ids["creator"], "duration_seconds": 30})  # fmt: skip
        assert video.status_code == 201, video.text
        report = http.post(f"{base}/v1/videos/{video.json()['id']}/reports",
                           json={"reporter_id": str(uuid.uuid4()), "reason": "spam"})  # fmt: skip
        assert report.status_code in (200, 201), report.text
        return f"/v1/cases/{report.json()['id']}/decision"
    comment = uuid.uuid4()
    report = http.post(f"{base}/v1/comments/{comment}/reports",
                       json={"video_id": ids["video"], "reporter_id": str(uuid.uuid4()),
                             "reason": "spam"})  # fmt: skip
    assert report.status_code in (200, 201), report.text
    return f"/v1/comment-cases/{CommentCase.create_id(comment)}/decision"


def test_every_text_field_of_the_api_is_covered(server):
    base, _ = server
    spec = httpx.get(f"{base}/openapi.json", timeout=TIMEOUT).json()
    covered = {(path, f) for _, path, _, fields in _commands(_FAKE_IDS) for f in fields}
    covered = {(p, f.removesuffix("[]")) for p, f in covered}
    wanted = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if method in ("post", "put", "patch") and schema and "batch" not in path:
                wanted |= {(path, f) for f in _string_fields(spec, schema["schema"])}
    missing = wanted - covered - SAME_CHECK - _SAME_AS_VIEWS
    assert not missing, f"text fields no fuzz case sends: {sorted(missing)}"


_FAKE_IDS = {"creator": "{creator_id}", "video": "{video_id}", "case": "{case_id}",
             "comment": "{comment_id}", "comment_case": "{case_id}"}  # fmt: skip
_SAME_AS_VIEWS = {
    (p, "client_event_id")
    for p in ("/v1/videos/{video_id}/likes", "/v1/videos/{video_id}/unlikes",
              "/v1/creators/{creator_id}/unfollows",
              "/v1/videos/{video_id}/comments/{comment_id}/deletion")
}  # fmt: skip


def _string_fields(spec: dict[str, Any], schema: dict[str, Any], seen: tuple = ()) -> set[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return set() if name in seen else _string_fields(
            spec, spec["components"]["schemas"][name], (*seen, name))  # fmt: skip
    out: set[str] = set()
    for key in ("anyOf", "oneOf", "allOf"):
        for s in schema.get(key, []):
            out |= _string_fields(spec, s, seen)
    for name, prop in schema.get("properties", {}).items():
        if _is_text(spec, prop):
            out.add(name)
    return out


def _is_text(spec: dict[str, Any], prop: dict[str, Any]) -> bool:
    if "$ref" in prop:
        return _is_text(spec, spec["components"]["schemas"][prop["$ref"].rsplit("/", 1)[-1]])
    if any(_is_text(spec, s) for k in ("anyOf", "oneOf") for s in prop.get(k, [])):
        return True
    if prop.get("type") == "array":
        return _is_text(spec, prop.get("items", {}))
    return (prop.get("type") == "string" and "enum" not in prop
            and prop.get("format") not in ("uuid", "date-time"))  # fmt: skip


def test_rest_batch_and_ndjson_refuse_unstorable_text_and_projections_stay_current(server):
    base, _ = server
    sent = refused = 0
    with httpx.Client(timeout=TIMEOUT, headers=HEADERS) as http:
        ids = _setup(http, base)
        for method, path, body, fields in _commands(ids):
            for field in fields:
                for text in _texts(f"{path}:{field}"):
                    data = _json(_with(body, field, text))
                    at = _open_case(http, base, ids, path) if path.endswith("/decision") else path
                    r = http.request(method, f"{base}{at}", content=data,
                                     headers={"content-type": "application/json"})  # fmt: skip
                    sent += 1
                    assert r.status_code < 500, (path, field, repr(text), r.text)
                    if path.endswith("/decision"):  # an open case: taken, or refused for its text
                        assert r.status_code in (200, 201, 422), (path, repr(text), r.text)
                    if _unstorable(text, field) and field not in NORMALISED:
                        refused += 1
                        assert 400 <= r.status_code < 500, (path, field, repr(text), r.text)
                        error = r.json()["error"]
                        if error["code"] == "invalid_text":  # it names the field
                            fields = [error.get("details", {}).get("field")]
                            fields += [f["field"] for f in error.get("fields", [])]
                            assert field.removesuffix("[]") in fields, error
        for field in ("text", "client_event_id"):
            for text in _texts(f"batch:{field}"):
                item = {"type": "comment", "viewer_id": str(uuid.uuid4()),
                        "video_id": ids["video"], "text": "t", field: text}  # fmt: skip
                for content, kind in ((_json({"items": [item, _view(ids)]}), "application/json"),
                                      (_json(item) + b"\n" + _json(_view(ids)),
                                       "application/x-ndjson")):  # fmt: skip
                    r = http.post(f"{base}/v1/engagement/batch", content=content,
                                  headers={"content-type": kind})  # fmt: skip
                    sent += 1
                    bad = _unstorable(text, field)
                    refused += bad
                    if r.status_code == 422:  # msgspec refuses a lone surrogate escape
                        assert bad and r.json()["error"]["code"] == "invalid_text", r.text
                        continue
                    assert r.status_code == 200, r.text  # otherwise answered per item
                    first, second = r.json()["items"]
                    assert (first["status"] == "rejected") == bad, (field, repr(text), first)
                    assert second["status"] == "recorded", second
        _wait_current(http, base)
    print(f"\ntext fuzz over HTTP: {sent} requests/items, {refused} with unstorable text "
          f"refused, every projection at the head, none quarantined")  # fmt: skip


def _wait_current(http: httpx.Client, base: str) -> None:
    """Every projection at the head, none failing, none quarantined (/readyz)."""
    deadline = time.monotonic() + 120
    while True:
        body = http.get(f"{base}/readyz").json()
        projections = body.get("checks", {}).get("projections", {})
        assert not projections.get("quarantined"), body
        assert not projections.get("failing"), body
        if body.get("status") == "ready" and not any(projections.get("lag", {1: 1}).values()):
            return
        assert time.monotonic() < deadline, body
        time.sleep(0.1)  # polling a condition, bounded by the deadline


@pytest.mark.kafka
def test_kafka_ingest_dead_letters_unstorable_text(pg_url, kafka_bootstrap, kafka_prefix):
    from adapters.kafka.ingest import REASON_HEADER, IngestWorker
    from integration.test_kafka_ingest import dead_letters, produce, run

    settings = Settings(database_url=pg_url, kafka_bootstrap_servers=kafka_bootstrap,
                        kafka_topic_prefix=kafka_prefix)  # fmt: skip
    container = bootstrap(settings)
    try:
        creator = container.content.register_creator(handle="kf", display_name="K", region="SE")
        video = container.content.publish_video(
            creator_id=creator.id, caption="", hashtags=[], sound_id=None, duration_seconds=30
        ).id
        docs = []
        for field in ("text", "client_event_id"):
            for text in _texts(f"kafka:{field}"):
                doc = {"type": "comment", "viewer_id": str(uuid.uuid4()), "video_id": str(video),
                       "text": "t", field: text}  # fmt: skip
                docs.append((doc, _unstorable(text, field)))
        messages = [(str(video).encode(), _json(doc)) for doc, _ in docs]
        raw = _json({"type": "comment", "viewer_id": str(uuid.uuid4()), "video_id": str(video),
                     "text": "RAW"}).replace(b"RAW", b"\xff\xfe")  # invalid UTF-8  # fmt: skip
        messages.append((str(video).encode(), raw))
        produce(settings, messages)
        stats = run(IngestWorker(settings, container))
        bad = sum(1 for _, unstorable in docs if unstorable) + 1  # and the raw message
        letters = dead_letters(settings, bad)
        reasons = [dict(letter.headers)[REASON_HEADER].decode() for letter in letters]
        assert len(letters) >= bad, (len(letters), bad, stats)
        container.run_projections_until_idle()
        health = container.projections.health()
        head = container.head_position
        assert all(h.position == head and not h.quarantined for h in health.values()), health
        print(
            f"\ntext fuzz over Kafka ingest: {len(messages)} messages, {bad} dead-lettered "
            f"({sorted(set(reasons))}), projections at the head {head}, none quarantined"
        )
    finally:
        container.close()
