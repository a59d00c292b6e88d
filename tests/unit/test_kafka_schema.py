"""The published Kafka schemas and the envelope's plain `data`, without a broker.

Given stored states as eventsourcing writes them (tagged UUIDs and datetimes, a sealed
comment text, an event stored at an old class version), the envelope's `data` is plain
JSON at the class's current version and validates against the committed schema; the
committed schema files are exactly what adapters/kafka/schema.py generates.
"""

import json
from uuid import UUID

import jsonschema
import orjson
import pytest
from eventsourcing.persistence import Notification

from adapters.kafka.envelope import FAMILIES, Envelope, build_envelope, timestamp_ms
from adapters.kafka.schema import render, schema_path

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


def validate(envelope: Envelope, family: str) -> None:
    schema = json.loads(schema_path(family).read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(orjson.loads(envelope.to_bytes()))


@pytest.mark.parametrize("family", FAMILIES)
def test_the_committed_schema_is_the_generated_one(family: str) -> None:
    assert schema_path(family).read_text() == render(family), (
        "regenerate with: python -m adapters.kafka.schema --write"
    )


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
