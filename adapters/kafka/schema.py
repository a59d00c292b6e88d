"""The public JSON Schemas of ReelPulse's topics, generated from the code that writes or
reads them.

One schema per topic, `docs/schemas/kafka/<name>.schema.json` for `<prefix>.<name>`:
* `<family>.v1`: the envelope (v2), and per event type (`type`) its `schema_version` and
  its `data` (plain JSON, adapters/kafka/public.py), from the domain's event classes.
  `payload` is ReelPulse's internal stored form and is described only as an object.
* `feed.video.v1`, `feed.viewer.v1`: the projection feeds, an event's envelope (the
  family schemas, embedded so the file stands alone) or a watermark marker;
  `watermark.v1` is the marker (envelope.watermark_message).
* `ingest.engagement.v1`: what a producer sends, from the REST batch item decoder the
  ingest worker uses (adapters/http/bodies.py), with `client_event_id` required.
* `ingest.engagement.dlq.v1`: a dead letter, described as a JSON view of the record
  (key, value, headers), since its value is the rejected message's bytes unchanged.

The files are committed (a consumer needs no Python to read them); tests/unit/
test_kafka_schema.py fails when they differ from what this module generates. Rewrite them:

    python -m adapters.kafka.schema --write
"""

import importlib
import inspect
import json
import sys
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic

from adapters.erasure.fields import ERASABLE
from adapters.http.bodies import BatchItem
from adapters.kafka.envelope import (
    ENVELOPE_VERSION,
    FAMILIES,
    FAMILY_OF_MODULE,
    VIEWED_TOPIC,
    WATERMARK_HEADER,
)
from adapters.kafka.ingest import DETAIL_HEADER, MAX_DETAIL_CHARS, REASON_HEADER, SOURCE_HEADER
from adapters.kafka.public import BOOKKEEPING

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "kafka"
UUID_SCHEMA = {
    "type": "string",
    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    "description": "UUID, dashed lowercase",
}
DATETIME_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
    "description": "ISO 8601 / RFC 3339 with its UTC offset",
}
_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    float: {"type": "number"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    UUID: {"$ref": "#/$defs/uuid"},
    datetime: {"$ref": "#/$defs/date-time"},
}
UUID_REF = _SCALARS[UUID]
DATETIME_REF = _SCALARS[datetime]


ENVELOPE_FIELDS = [
    "envelope_version",
    "event_id",
    "type",
    "schema_version",
    "topic",
    "position",
    "stream_id",
    "stream_version",
    "occurred_at",
    "recorded_at",
    "key",
    "data",
    "payload",
]


def schema_path(name: str) -> Path:
    """The file of a family (`content`) or of a topic named by its suffix (`feed.video.v1`)."""
    return SCHEMA_DIR / f"{name if name.endswith('.v1') else name + '.v1'}.schema.json"


def event_classes(family: str) -> list[type[DomainEvent]]:
    """The concrete event classes published on a family's topic, in a stable order."""
    found = []
    for module_name in sorted(m for m, f in FAMILY_OF_MODULE.items() if f == family):
        module = importlib.import_module(module_name)
        for aggregate in vars(module).values():
            if not (inspect.isclass(aggregate) and aggregate.__module__ == module_name):
                continue
            for name, cls in vars(aggregate).items():
                # Event and Created are the library's bases, never stored themselves.
                if (
                    inspect.isclass(cls)
                    and issubclass(cls, DomainEvent)
                    and name
                    not in (
                        "Event",
                        "Created",
                    )
                ):
                    found.append(cls)
    return found


def field_schema(annotation: Any) -> dict[str, Any]:
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return {"anyOf": [field_schema(inner), {"type": "null"}]}
    if origin is list:
        return {"type": "array", "items": field_schema(args[0])}
    raise TypeError(f"no JSON Schema for annotation {annotation!r}: add one to schema.py")


def data_schema(cls: type[DomainEvent]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    erasable = {f.field for f in ERASABLE.get(get_topic(cls), ())}
    properties: dict[str, Any] = {}
    for name, annotation in hints.items():
        if name in BOOKKEEPING or typing.get_origin(annotation) is typing.ClassVar:
            continue
        properties[name] = field_schema(annotation)
        if name in erasable:
            properties[name] = {
                "anyOf": [properties[name], {"type": "null"}],
                "description": "personal data: null when stored sealed (crypto-shredding, "
                "docs/erasure.md); never published in clear",
            }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def topic_schema(family: str) -> dict[str, Any]:
    classes = event_classes(family)
    names = [cls.__qualname__ for cls in classes]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:reelpulse:kafka:{family}.v1",
        "title": f"ReelPulse <prefix>.{family}.v1: envelope v{ENVELOPE_VERSION}",
        "description": "The value of every message the relay publishes on this topic "
        "(UTF-8 JSON). Key: the UTF-8 bytes of the partition key (`key`); record "
        "timestamp: the event time in ms. See docs/kafka.md.",
        "type": "object",
        "properties": {
            "envelope_version": {"const": ENVELOPE_VERSION},
            "event_id": {**UUID_REF, "description": "uuid5(stream, version): stable"},
            "type": {"enum": names},
            "schema_version": {"type": "integer", "minimum": 1},
            "topic": {"type": "string", "description": "internal: the Python class's topic"},
            "position": {"type": "integer", "minimum": 1},
            "stream_id": UUID_REF,
            "stream_version": {"type": "integer", "minimum": 1},
            "occurred_at": {"anyOf": [DATETIME_REF, {"type": "null"}]},
            "recorded_at": {"anyOf": [DATETIME_REF, {"type": "null"}]},
            "key": {**UUID_REF, "description": "the partition key, as in the record key"},
            "data": {"type": "object", "description": "the event's fields (per type below)"},
            "payload": {
                "type": "object",
                "description": "INTERNAL: the event as stored by the eventsourcing library "
                "(its transcoding, for ReelPulse's own consumers); may change without notice",
            },
        },
        "required": ENVELOPE_FIELDS,
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {
                    "properties": {
                        "schema_version": {"const": int(getattr(cls, "class_version", 1))},
                        "data": {"$ref": f"#/$defs/{name}"},
                    }
                },
            }
            for name, cls in zip(names, classes, strict=True)
        ],
        "$defs": {
            "uuid": UUID_SCHEMA,
            "date-time": DATETIME_SCHEMA,
            **{name: data_schema(cls) for name, cls in zip(names, classes, strict=True)},
        },
    }


# -- the projection feeds ------------------------------------------------------------------
def urn(name: str) -> str:
    return f"urn:reelpulse:kafka:{name}"


def watermark_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": urn("watermark.v1"),
        "title": "ReelPulse watermark marker on <prefix>.feed.video.v1 and .feed.viewer.v1",
        "description": "After each batch the broker acknowledged, the relay writes one to "
        "every partition of each feed: every event of that partition up to `watermark` "
        f"(a store position) is before it. No key; header `{WATERMARK_HEADER}` holds the "
        "same position in decimal ASCII, and tells a marker from an event without parsing "
        "the value. See docs/kafka.md.",
        "type": "object",
        "properties": {"watermark": {"type": "integer", "minimum": 1}},
        "required": ["watermark"],
        "additionalProperties": False,
    }


def feed_schema(feed: str) -> dict[str, Any]:
    """An event's envelope, as on its family's topic (that schema, embedded), or a marker."""
    if feed == "video":
        families: tuple[str, ...] = FAMILIES
        events = [{"$ref": urn(f"{family}.v1")} for family in families]
        description = (
            "Every event the relay publishes, once more: the same value (bytes), headers, "
            "record key and timestamp as its message on <prefix>.<family>.v1, so a video's "
            "content, engagement and moderation events share one partition in store order; "
            "and the watermark markers."
        )
    else:
        families = ("engagement",)
        viewed = VIEWED_TOPIC.split(":", 1)[1]
        events = [
            {"allOf": [{"$ref": urn("engagement.v1")}, {"properties": {"type": {"const": viewed}}}]}
        ]
        description = (
            f"Every {viewed} event once more, keyed by its viewer: the record key is the "
            "UTF-8 bytes of `data.viewer_id` (the envelope's `key` stays the video id); the "
            "value, headers and timestamp are those of its message on <prefix>.engagement.v1; "
            "and the watermark markers."
        )
    bundled = {f"{family}.v1": topic_schema(family) for family in families}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": urn(f"feed.{feed}.v1"),
        "title": f"ReelPulse <prefix>.feed.{feed}.v1: envelope v{ENVELOPE_VERSION} or marker",
        "description": description + " The family schemas are embedded under $defs "
        "(identical to their own files). See docs/kafka.md.",
        "oneOf": [*events, {"$ref": urn("watermark.v1")}],
        "$defs": {**bundled, "watermark.v1": watermark_schema()},
    }


# -- inbound ingestion -----------------------------------------------------------------------
INGEST_UUID = {
    "type": "string",
    "pattern": "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    "|[0-9a-fA-F]{32})$",
    "description": "UUID: dashed (preferred) or 32 hex digits",
}


def _ingest_field(name: str, field: dict[str, Any]) -> dict[str, Any]:
    """msgspec's schema of a field, with the formats spelled as patterns (a validator need
    not check `format`), a time's UTC offset required, and client_event_id required."""
    if name == "client_event_id":
        (text,) = [f for f in field["anyOf"] if f.get("type") == "string"]
        return {**text, "description": "required here: the dedup key of a redelivery"}
    if field.get("format") == "uuid":
        return dict(INGEST_UUID)
    if field.get("format") == "date-time":
        return {k: v for k, v in DATETIME_SCHEMA.items() if k != "format"}
    if "anyOf" in field:
        return {**field, "anyOf": [_ingest_field(name, f) for f in field["anyOf"]]}
    return field


def ingest_schema() -> dict[str, Any]:
    generated = msgspec.json.schema(BatchItem)
    items = {}
    for name, item in generated["$defs"].items():
        properties = {k: _ingest_field(k, v) for k, v in item["properties"].items()}
        required = [*item["required"], "client_event_id"]
        items[name] = {**item, "properties": properties, "required": required}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": urn("ingest.engagement.v1"),
        "title": "ReelPulse <prefix>.ingest.engagement.v1: an engagement signal",
        "description": "The value of a message a producer sends (UTF-8 JSON): one item of "
        "POST /v1/engagement/batch, `type` choosing its fields, with client_event_id "
        "required. Types are strict (a string is not a number, 1 is not true); a message "
        "this schema refuses is dead-lettered (invalid_json / invalid_input). Key: the "
        "video id (creator id for follow/unfollow) as UTF-8, so a stream's signals stay on "
        "one partition in order. See docs/kafka.md.",
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in items],
        "$defs": items,
    }


DLQ_REASON_PATTERN = r"^(invalid_json|invalid_input|rejected:[a-z0-9_]+|error:[A-Za-z_][\w.]*)$"


def dead_letter_schema() -> dict[str, Any]:
    text_or_null = {"type": ["string", "null"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": urn("ingest.engagement.dlq.v1"),
        "title": "ReelPulse <prefix>.ingest.engagement.dlq.v1: a dead letter",
        "description": "A message of the ingest topic that never became an event, with its "
        "key, value and headers unchanged and three headers added. Its value need not be "
        "JSON (that may be why it is here), so this schema describes the whole record as a "
        'JSON object {"key", "value", "headers"}: key and value as UTF-8 text (null when '
        "absent), headers as an object of name to UTF-8 value. See docs/kafka.md.",
        "type": "object",
        "properties": {
            "key": {**text_or_null, "description": "the original key"},
            "value": {
                **text_or_null,
                "description": "the original value, byte for byte; null: a tombstone",
            },
            "headers": {
                "type": "object",
                "properties": {
                    REASON_HEADER: {
                        "type": "string",
                        "pattern": DLQ_REASON_PATTERN,
                        "description": "invalid_json: no value or not UTF-8 JSON; "
                        "invalid_input: JSON the ingest schema refuses; rejected:<error>: "
                        "a valid signal the domain refused (the REST error code); "
                        "error:<exception>: a valid signal whose storing failed unexpectedly",
                    },
                    DETAIL_HEADER: {
                        "type": "string",
                        "maxLength": MAX_DETAIL_CHARS,
                        "description": "a human-readable reason; for invalid_input it "
                        "starts with the field's name (`watch_seconds: ...`)",
                    },
                    SOURCE_HEADER: {
                        "type": "string",
                        "pattern": r"^.+:\d+:\d+$",
                        "description": "<ingest topic>:<partition>:<offset> of the original",
                    },
                },
                "required": [REASON_HEADER, DETAIL_HEADER, SOURCE_HEADER],
                "additionalProperties": {
                    "type": "string",
                    "description": "the original message's own headers, kept",
                },
            },
        },
        "required": ["key", "value", "headers"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {
                    "properties": {
                        "headers": {
                            "properties": {REASON_HEADER: {"pattern": "^(rejected|error):"}}
                        }
                    }
                },
                "then": {
                    "properties": {
                        "value": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": urn("ingest.engagement.v1")},
                            "description": "a message the ingest schema accepts",
                        }
                    }
                },
            }
        ],
        "$defs": {"ingest.engagement.v1": ingest_schema()},
    }


# Every published schema, by the topic name's suffix (the file's name).
SCHEMAS: dict[str, typing.Callable[[], dict[str, Any]]] = {
    **{f"{family}.v1": (lambda family=family: topic_schema(family)) for family in FAMILIES},
    "feed.video.v1": lambda: feed_schema("video"),
    "feed.viewer.v1": lambda: feed_schema("viewer"),
    "watermark.v1": watermark_schema,
    "ingest.engagement.v1": ingest_schema,
    "ingest.engagement.dlq.v1": dead_letter_schema,
}


def render(name: str) -> str:
    """The file's text; `name` is a family (`content`) or a key of SCHEMAS."""
    key = name if name.endswith(".v1") else f"{name}.v1"
    return json.dumps(SCHEMAS[key](), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name in SCHEMAS:
        schema_path(name).write_text(render(name))
        print(f"wrote {schema_path(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
