"""The public JSON Schemas of the relay's topics, generated from the domain's event classes.

One schema per topic, `docs/schemas/kafka/<family>.v1.schema.json` for
`<prefix>.<family>.v1`: the envelope (v2), and per event type (`type`) its
`schema_version` and its `data` (plain JSON, adapters/kafka/public.py). `payload` is
ReelPulse's internal stored form and is described only as an object.

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

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic

from adapters.erasure.fields import ERASABLE
from adapters.kafka.envelope import ENVELOPE_VERSION, FAMILIES, FAMILY_OF_MODULE
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


def schema_path(family: str) -> Path:
    return SCHEMA_DIR / f"{family}.v1.schema.json"


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


def render(family: str) -> str:
    return json.dumps(topic_schema(family), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        schema_path(family).write_text(render(family))
        print(f"wrote {schema_path(family)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
