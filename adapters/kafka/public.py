"""An event's fields as plain JSON: the envelope's public `data` (envelope v2).

The stored state is eventsourcing's transcoding: UUIDs as `{"_type_": "uuid_hex",
"_data_": "<32 hex>"}`, datetimes as `{"_type_": "datetime_iso", ...}`, erasable text as
`{"_type_": "reelpulse_sealed", ...}`, plus the library's bookkeeping (originator id and
version, timestamp, class version). `data` is what a consumer in any language reads:

* UUIDs as dashed lowercase strings, datetimes as ISO 8601 strings with their offset;
* a sealed (crypto-shredded) field as null: its text is personal data that `forget` must
  be able to erase, and the topics keep messages for good (docs/erasure.md);
* the event at its class's current version: older stored events pass through the class's
  own upcasters, so one schema per event type describes every message;
* no bookkeeping fields: the envelope carries them (stream_id, stream_version,
  recorded_at, schema_version).
The published JSON Schemas (docs/schemas/kafka/) are generated from the same classes by
adapters/kafka/schema.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.utils import resolve_topic

BOOKKEEPING = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "class_version"}
)


@dataclass(frozen=True)
class EventSpec:
    """What converting one event class needs, resolved once per topic."""

    version: int  # the class's current class_version
    upcasters: tuple[Callable[[dict[str, Any]], None], ...]  # [v1->v2, v2->v3, ...]


_specs: dict[str, EventSpec] = {}


def event_spec(topic: str) -> EventSpec:
    spec = _specs.get(topic)
    if spec is None:
        cls = resolve_topic(topic)
        version = int(getattr(cls, "class_version", 1))
        upcasters = tuple(getattr(cls, f"upcast_v{v}_v{v + 1}") for v in range(1, version))
        spec = _specs[topic] = EventSpec(version, upcasters)
    return spec


def dashed(h: str) -> str:
    """32 hex digits as a dashed UUID string (without building a UUID)."""
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def plain(value: Any) -> Any:
    """One transcoded value as plain JSON."""
    if isinstance(value, dict):
        tag = value.get("_type_")
        if tag == "uuid_hex":
            return dashed(str(value["_data_"]).lower())
        if tag == "datetime_iso":
            return str(value["_data_"])
        if tag == "reelpulse_sealed":
            return None  # erasable personal data: never published in clear
        if tag is not None:
            # A new transcoded type needs a deliberate public form (and a schema).
            raise ValueError(f"no public JSON form for transcoded type {tag!r}")
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def plain_data(topic: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(current class version, the event's fields as plain JSON) of a stored state."""
    spec = event_spec(topic)
    data = {k: plain(v) for k, v in payload.items() if k not in BOOKKEEPING}
    stored_version = int(payload.get("class_version", 1))
    for upcast in spec.upcasters[stored_version - 1 :]:
        upcast(data)
    return spec.version, data
