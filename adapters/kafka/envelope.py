"""The versioned JSON envelope every ReelPulse event is published in, and topic naming.

Envelope v1 (JSON object, UTF-8):
  envelope_version  1
  event_id          uuid5(stream id, stream version): the same event always has the same id
  type              event class, e.g. "Engagement.Viewed"
  schema_version    the event class_version
  topic             eventsourcing topic of the class ("domain.engagement:Engagement.Viewed")
  position          global position in the event store (notification id)
  stream_id         aggregate id;  stream_version  its version
  occurred_at       event time (ISO 8601);  recorded_at  when it was stored
  key               the partition key (video id, or creator id for creator events)
  payload           the event's fields as stored (eventsourcing's JSON transcoding)
Headers: reelpulse-type, reelpulse-schema-version, reelpulse-event-id.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

import orjson
from eventsourcing.persistence import Notification, StoredEvent

from domain.values import REELPULSE_NAMESPACE

ENVELOPE_VERSION = 1
FAMILIES = ("content", "engagement", "moderation")
FAMILY_OF_MODULE = {
    "domain.creator": "content",
    "domain.video": "content",
    "domain.engagement": "engagement",
    "domain.following": "engagement",
    "domain.moderation": "moderation",
}


def event_topic(prefix: str, family: str) -> str:
    return f"{prefix}.{family}.v1"


def ingest_topic(prefix: str) -> str:
    return f"{prefix}.ingest.engagement.v1"


def dead_letter_topic(prefix: str) -> str:
    return f"{prefix}.ingest.engagement.dlq.v1"


def family_of(topic: str) -> str:
    return FAMILY_OF_MODULE[topic.split(":", 1)[0]]


def event_id(stream_id: UUID | str, version: int) -> UUID:
    return uuid5(REELPULSE_NAMESPACE, f"event:{stream_id}:{version}")


@dataclass(frozen=True)
class Envelope:
    event_id: UUID
    type: str
    schema_version: int
    topic: str
    position: int
    stream_id: UUID
    stream_version: int
    occurred_at: str | None
    recorded_at: str | None
    key: str
    payload: dict[str, Any]

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "envelope_version": ENVELOPE_VERSION,
                "event_id": str(self.event_id),
                "type": self.type,
                "schema_version": self.schema_version,
                "topic": self.topic,
                "position": self.position,
                "stream_id": str(self.stream_id),
                "stream_version": self.stream_version,
                "occurred_at": self.occurred_at,
                "recorded_at": self.recorded_at,
                "key": self.key,
                "payload": self.payload,
            }
        )

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("reelpulse-type", self.type.encode()),
            ("reelpulse-schema-version", str(self.schema_version).encode()),
            ("reelpulse-event-id", str(self.event_id).encode()),
        ]

    @classmethod
    def from_bytes(cls, data: bytes) -> "Envelope":
        doc = orjson.loads(data)
        if doc.get("envelope_version") != ENVELOPE_VERSION:
            raise ValueError(f"unsupported envelope version {doc.get('envelope_version')!r}")
        return cls(
            event_id=UUID(doc["event_id"]),
            type=doc["type"],
            schema_version=int(doc["schema_version"]),
            topic=doc["topic"],
            position=int(doc["position"]),
            stream_id=UUID(doc["stream_id"]),
            stream_version=int(doc["stream_version"]),
            occurred_at=doc["occurred_at"],
            recorded_at=doc["recorded_at"],
            key=doc["key"],
            payload=doc["payload"],
        )

    def stored_event(self) -> StoredEvent:
        """Back to eventsourcing's stored form, so a mapper rebuilds the domain event."""
        return StoredEvent(
            originator_id=self.stream_id,
            originator_version=self.stream_version,
            topic=self.topic,
            state=orjson.dumps(self.payload),
        )


def _iso(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("_type_") == "datetime_iso":
        return str(value["_data_"])
    return None


def _hex_uuid(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("_type_") == "uuid_hex":
        return str(UUID(value["_data_"]))
    return None


def build_envelope(n: Notification, key: str) -> Envelope:
    payload = orjson.loads(n.state)
    type_name = n.topic.split(":", 1)[1]
    return Envelope(
        event_id=event_id(n.originator_id, n.originator_version),
        type=type_name,
        schema_version=int(payload.get("class_version", 1)),
        topic=n.topic,
        position=n.id,
        stream_id=UUID(str(n.originator_id)),
        stream_version=n.originator_version,
        occurred_at=_iso(payload.get("occurred_at")),
        recorded_at=_iso(payload.get("timestamp")),
        key=key,
        payload=payload,
    )


def payload_uuid(n: StoredEvent, field: str) -> str | None:
    """A UUID field of a stored event, without decoding the whole event."""
    return _hex_uuid(orjson.loads(n.state).get(field))
