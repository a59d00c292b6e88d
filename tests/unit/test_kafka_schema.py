"""The published Kafka schemas and the envelope's plain `data`, without a broker.

Given stored states as eventsourcing writes them (tagged UUIDs and datetimes, a sealed
comment text, an event stored at an old class version), the envelope's `data` is plain
JSON at the class's current version and validates against the committed schema; the
committed schema files are exactly what adapters/kafka/schema.py generates. The feed
schemas take an event's envelope and the relay's watermark marker; the ingest schema
accepts exactly the messages the ingest worker's decoder accepts (same verdicts on valid
and wrong-typed messages); a dead letter's headers fit the dead-letter schema.
"""

import json
from uuid import UUID

import jsonschema
import orjson
import pytest
from eventsourcing.persistence import Notification

from adapters.kafka.envelope import (
    FAMILIES,
    Envelope,
    build_envelope,
    timestamp_ms,
    watermark_message,
    watermark_of,
)
from adapters.kafka.ingest import InvalidMessage, dead_letter_headers, parse_signal
from adapters.kafka.schema import SCHEMAS, render, schema_path

VIDEO = UUID("0b7c2a9e-4f1d-4d0a-9a55-2f1e4c3b8d10")
VIEWER = UUID("5d2f7a61-0c3e-4b8e-9f0a-1c2d3e4f5a6b")
CREATOR = UUID("9b1e0c3e-4b8e-4f0a-9a55-1c2d3e4f5a6b")


def tagged_uuid(u: UUID) -> dict[str, str]:
    return {"_type_": "uuid_hex", "_data_": u.hex}


def tagged_time(iso: str) -> dict[str, str]:
    return {"_type_": "datetime_iso", "_data_": iso}


def stored(topic: str, state: dict[str, object], stream: UUID, version: int = 2) -> Notification:
    state = {
        "originator_id": tagged_uuid(stream),
        "originator_version": version,
        "timestamp": tagged_time("2026-03-02T10:00:01.250000+00:00"),
        **state,
    }
    return Notification(
        id=7, originator_id=stream, originator_version=version, topic=topic,
        state=orjson.dumps(state),
    )  # fmt: skip


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_path(name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def validate(envelope: Envelope, family: str) -> None:
    doc = orjson.loads(envelope.to_bytes())
    validator(family).validate(doc)
    validator("feed.video.v1").validate(doc)  # the same bytes on the video feed
    if envelope.type == "Engagement.Viewed":
        validator("feed.viewer.v1").validate(doc)
    else:
        assert not validator("feed.viewer.v1").is_valid(doc), "only views on the viewer feed"


@pytest.mark.parametrize("name", SCHEMAS)
def test_the_committed_schema_is_the_generated_one(name: str) -> None:
    assert schema_path(name).read_text() == render(name), (
        "regenerate with: python -m adapters.kafka.schema --write"
    )


def test_every_family_and_topic_has_a_schema_file() -> None:
    assert {f"{family}.v1" for family in FAMILIES} <= set(SCHEMAS)
    on_disk = {p.name for p in schema_path("content").parent.glob("*.schema.json")}
    assert on_disk == {schema_path(name).name for name in SCHEMAS}


def test_a_watermark_marker_fits_its_schema_and_both_feeds() -> None:
    value, headers = watermark_message(1234)
    doc = orjson.loads(value)
    for name in ("watermark.v1", "feed.video.v1", "feed.viewer.v1"):
        validator(name).validate(doc)
        for wrong in ({"watermark": "1234"}, {"watermark": 0}, {"watermark": 1, "at": 2}, {}):
            assert not validator(name).is_valid(wrong), (name, wrong)
    assert watermark_of(headers) == 1234


def test_a_view_is_published_as_plain_json() -> None:
    n = stored(
        "domain.engagement:Engagement.Viewed",
        {
            "video_id": tagged_uuid(VIDEO), "viewer_id": tagged_uuid(VIEWER),
            "watch_seconds": 12.5, "completed": True, "traffic_source": "for_you",
            "device": "ios", "client_event_id": None,
            "occurred_at": tagged_time("2026-03-02T10:00:00.999999+00:00"),
        },
        stream=UUID(int=1),
    )  # fmt: skip
    envelope = build_envelope(n, str(VIDEO))
    assert envelope.data == {
        "video_id": str(VIDEO), "viewer_id": str(VIEWER), "watch_seconds": 12.5,
        "completed": True, "traffic_source": "for_you", "device": "ios",
        "client_event_id": None, "occurred_at": "2026-03-02T10:00:00.999999+00:00",
    }  # fmt: skip
    assert envelope.payload == orjson.loads(n.state)  # the internal form, unchanged
    validate(envelope, "engagement")
    assert Envelope.from_bytes(envelope.to_bytes()) == envelope


def test_a_sealed_comment_text_is_published_as_null() -> None:
    sealed = {"_type_": "reelpulse_sealed", "_data_": {"s": VIEWER.hex, "n": "AA==", "c": "AA=="}}
    n = stored(
        "domain.engagement:Engagement.Commented",
        {
            "video_id": tagged_uuid(VIDEO), "viewer_id": tagged_uuid(VIEWER),
            "comment_id": tagged_uuid(UUID(int=5)), "text": sealed, "client_event_id": "c-1",
            "occurred_at": tagged_time("2026-03-02T10:00:00+00:00"),
        },
        stream=UUID(int=1),
    )  # fmt: skip
    envelope = build_envelope(n, str(VIDEO))
    assert envelope.data is not None and envelope.data["text"] is None
    validate(envelope, "engagement")


def test_an_event_stored_at_an_old_class_version_is_published_upcast() -> None:
    """Following.Followed v1 had no client_event_id: `data` is v2, as the schema says."""
    n = stored(
        "domain.following:Following.Followed",
        {"occurred_at": tagged_time("2026-03-02T10:00:00+00:00")},
        stream=UUID(int=2),
    )
    envelope = build_envelope(n, str(CREATOR))
    assert (envelope.schema_version, envelope.data) == (
        2,
        {"occurred_at": "2026-03-02T10:00:00+00:00", "client_event_id": None},
    )
    assert "class_version" not in envelope.payload  # stored as v1; the library upcasts it
    validate(envelope, "engagement")


def test_an_unknown_transcoded_type_is_refused_not_leaked() -> None:
    n = stored(
        "domain.engagement:Engagement.Liked",
        {
            "video_id": tagged_uuid(VIDEO), "viewer_id": tagged_uuid(VIEWER),
            "client_event_id": {"_type_": "decimal_str", "_data_": "1.5"},
            "occurred_at": tagged_time("2026-03-02T10:00:00+00:00"),
        },
        stream=UUID(int=1),
    )  # fmt: skip
    with pytest.raises(ValueError, match="decimal_str"):
        build_envelope(n, str(VIDEO))


def test_the_record_timestamp_is_the_event_time_in_ms() -> None:
    assert timestamp_ms("1970-01-01T00:00:01.0019+00:00", None) == 1001
    assert timestamp_ms("2026-03-02T11:00:00+01:00", "2030-01-01T00:00:00+00:00") == (
        timestamp_ms("2026-03-02T10:00:00+00:00", None)
    )
    assert timestamp_ms(None, "1970-01-01T00:00:02+00:00") == 2000  # no occurred_at
    assert timestamp_ms("1970-01-01T00:00:03", None) == 3000  # naive: UTC
    assert timestamp_ms(None, None) is None


# -- the ingest topic and its dead letters ---------------------------------------------------
def ingest_messages() -> list[object]:
    """Valid messages of every type, and the same with one field wrong, missing or extra."""
    ids = {"viewer_id": str(VIEWER), "occurred_at": "2026-03-02T10:00:00+01:00"}
    valid: list[dict[str, object]] = [
        {"type": "view", "video_id": str(VIDEO), "watch_seconds": 12.5, "completed": True,
         "traffic_source": "search", "device": "tv"},
        {"type": "view", "video_id": VIDEO.hex.upper(), "watch_seconds": 3},
        {"type": "like", "video_id": str(VIDEO)},
        {"type": "unlike", "video_id": str(VIDEO)},
        {"type": "share", "video_id": str(VIDEO), "channel": "sms"},
        {"type": "comment", "video_id": str(VIDEO), "text": "nice", "comment_id": None},
        {"type": "delete_comment", "video_id": str(VIDEO), "comment_id": str(CREATOR)},
        {"type": "follow", "creator_id": str(CREATOR)},
        {"type": "unfollow", "creator_id": str(CREATOR), "occurred_at": None},
    ]  # fmt: skip
    docs: list[object] = [ids | {"client_event_id": f"c-{n}"} | v for n, v in enumerate(valid)]
    wrong: list[tuple[str, object]] = [
        ("watch_seconds", "12"), ("watch_seconds", -1), ("watch_seconds", True),
        ("completed", 1), ("completed", None), ("traffic_source", "tv"), ("device", 3),
        ("video_id", "not-a-uuid"), ("video_id", None), ("viewer_id", 7),
        ("occurred_at", "2026-03-02T10:00:00"), ("occurred_at", 1.7e9),
        ("client_event_id", None), ("client_event_id", ""), ("client_event_id", "x" * 65),
        ("client_event_id", 5), ("type", "watch"), ("extra", 1), ("text", ""),
        ("channel", "fax"), ("comment_id", "1"), ("creator_id", str(CREATOR)),
    ]  # fmt: skip
    for doc in list(docs):
        assert isinstance(doc, dict)
        for name, value in wrong:
            if name in doc or name in ("extra", "client_event_id", "creator_id"):
                docs.append(doc | {name: value})
        docs += [{k: v for k, v in doc.items() if k != name} for name in doc]
    return [*docs, [], "view", 1, None]


def test_the_ingest_schema_accepts_exactly_what_the_worker_decodes() -> None:
    """Differential: the published schema and the worker's decoder give one verdict."""
    schema = validator("ingest.engagement.v1")
    verdicts = {"valid": 0, "invalid": 0}
    for doc in ingest_messages():
        try:
            parse_signal(orjson.dumps(doc))
        except InvalidMessage as e:
            assert e.reason == "invalid_input"
            assert not schema.is_valid(doc), ("the schema takes what is dead-lettered", doc, e)
            verdicts["invalid"] += 1
        else:
            assert schema.is_valid(doc), (doc, [e.message for e in schema.iter_errors(doc)])
            verdicts["valid"] += 1
    assert verdicts["valid"] >= 9 and verdicts["invalid"] > 100, verdicts


class _Record:
    topic, partition, offset = "p.ingest.engagement.v1", 3, 41
    headers = [("trace", b"abc"), ("reelpulse-dlq-reason", b"earlier")]


def dead_letter_view(value: bytes | None, reason: str, detail: str) -> dict[str, object]:
    headers = dead_letter_headers(_Record(), reason, detail)  # type: ignore[arg-type]
    return {
        "key": str(VIDEO),
        "value": None if value is None else value.decode(),
        "headers": {name: v.decode() for name, v in headers},
    }


def test_a_dead_letter_fits_the_dead_letter_schema() -> None:
    schema = validator("ingest.engagement.dlq.v1")
    view = dead_letter_view(b"{not json", "invalid_json", "the value is not UTF-8 JSON")
    schema.validate(view)
    assert view["headers"] == {
        "trace": "abc", "reelpulse-dlq-reason": "invalid_json",
        "reelpulse-dlq-detail": "the value is not UTF-8 JSON",
        "reelpulse-source": "p.ingest.engagement.v1:3:41",
    }  # fmt: skip
    schema.validate(dead_letter_view(None, "invalid_json", "tombstone"))
    schema.validate(dead_letter_view(b"{}", "rejected:video_not_found", "x" * 5000))  # cut
    schema.validate(dead_letter_view(b"{}", "error:KeyError", "boom"))
    assert not schema.is_valid(dead_letter_view(b"{}", "who knows", "?"))
    headless = dead_letter_view(b"{}", "invalid_input", "x")
    del headless["headers"]["reelpulse-source"]  # type: ignore[attr-defined]
    assert not schema.is_valid(headless)
