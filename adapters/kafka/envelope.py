"""The versioned JSON envelope every ReelPulse event is published in, and topic naming.

Envelope v2 (JSON object, UTF-8; public schema: docs/schemas/kafka/<family>.v1.schema.json):
  envelope_version  2
  event_id          uuid5(stream id, stream version): the same event always has the same id
  type              event class, e.g. "Engagement.Viewed"
  schema_version    the event's class_version, of `data` (older events are upcast)
  topic             eventsourcing topic of the class ("domain.engagement:Engagement.Viewed")
  position          global position in the event store (notification id)
  stream_id         aggregate id;  stream_version  its version
  occurred_at       event time (ISO 8601);  recorded_at  when it was stored
  key               the partition key (video id, or creator id for creator events)
  data              the event's fields as plain JSON (adapters/kafka/public.py): public
  payload           INTERNAL: the event as stored (eventsourcing's JSON transcoding), for
                    ReelPulse's own consumers (stored_event()); not part of the schema
Headers: reelpulse-type, reelpulse-schema-version, reelpulse-event-id.
The record timestamp is the event time in ms (occurred_at, else recorded_at).
v1 (published before) had no `data`, and schema_version was the stored class_version;
from_bytes reads both.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification, StoredEvent

from adapters.kafka.public import dashed, plain_data
from domain.values import REELPULSE_NAMESPACE

ENVELOPE_VERSION = 2
READABLE_VERSIONS = (1, 2)  # v1 messages stay in the topics (kept for good)
FAMILIES = ("content", "engagement", "moderation")
FAMILY_OF_MODULE = {
    "domain.creator": "content",
    "domain.video": "content",
    "domain.handle": "content",  # HandleReservation: a creator's handle
    "domain.engagement": "engagement",
    "domain.following": "engagement",
    "domain.erasure": "engagement",
    "domain.moderation": "moderation",
    "domain.comment_moderation": "moderation",  # CommentCase: keyed by its video
}


def event_topic(prefix: str, family: str) -> str:
    return f"{prefix}.{family}.v1"


# Internal projection feeds (docs/scaling.md): every event once more, keyed for the
# projections that partition by it, in the store's global order within each key.
FEEDS = ("video", "viewer")
VIEWED_TOPIC = "domain.engagement:Engagement.Viewed"
WATERMARK_HEADER = "reelpulse-watermark"


def feed_topic(prefix: str, feed: str) -> str:
    """`video`: every event, keyed as the public topics key it (video id; creator id for
    creator-level events). `viewer`: views, keyed by viewer id."""
    return f"{prefix}.feed.{feed}.v1"


def watermark_message(position: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A marker the relay writes to every partition of a feed after a batch is
    acknowledged: every event up to `position` of this partition is before it."""
    return orjson.dumps({"watermark": position}), [(WATERMARK_HEADER, str(position).encode())]


def watermark_of(headers: Any) -> int | None:
    """The position a marker message carries, or None for an event message."""
    for name, value in headers or ():
        if name == WATERMARK_HEADER:
            return int(value)
    return None


# On the video feed, each event of projections.trending.WATERMARK_TOPICS carries the
# trending watermark before it in global order (the largest such minute so far, "none"
# before the first): keyed trending workers decide lateness as the single-process runner.
TRENDING_WATERMARK_HEADER = "reelpulse-trending-watermark"
NO_WATERMARK = b"none"


def trending_watermark_of(headers: Any) -> tuple[bool, int | None]:
    """(stamped, minute) of a feed message: not stamped when the header is absent."""
    for name, value in headers or ():
        if name == TRENDING_WATERMARK_HEADER:
            return True, None if value == NO_WATERMARK else int(value)
    return False, None


def ingest_topic(prefix: str) -> str:
    return f"{prefix}.ingest.engagement.v1"


def dead_letter_topic(prefix: str) -> str:
    return f"{prefix}.ingest.engagement.dlq.v1"


def family_of(topic: str) -> str:
    return FAMILY_OF_MODULE[topic.split(":", 1)[0]]


_NAMESPACE_BYTES = REELPULSE_NAMESPACE.bytes


def event_id(stream_id: UUID | str, version: int) -> str:
    """str(uuid5(REELPULSE_NAMESPACE, "event:<stream>:<version>")), computed without
    building UUID objects (the relay does this for every event)."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + f"event:{stream_id}:{version}".encode()).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode(
    event_id: str,
    type_: str,
    schema_version: int,
    topic: str,
    position: int,
    stream_id: str,
    stream_version: int,
    occurred_at: str | None,
    recorded_at: str | None,
    key: str,
    data: dict[str, Any] | None,
    payload: dict[str, Any],
) -> bytes:
    """The envelope's bytes. The relay calls this directly (no object per event)."""
    return orjson.dumps(
        {
            "envelope_version": ENVELOPE_VERSION,
            "event_id": event_id,
            "type": type_,
            "schema_version": schema_version,
            "topic": topic,
            "position": position,
            "stream_id": stream_id,
            "stream_version": stream_version,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at,
            "key": key,
            "data": data,
            "payload": payload,
        }
    )


def headers(type_: str, schema_version: int, event_id: str) -> list[tuple[str, bytes]]:
    return [
        ("reelpulse-type", type_.encode()),
        ("reelpulse-schema-version", str(schema_version).encode()),
        ("reelpulse-event-id", event_id.encode()),
    ]


@dataclass(frozen=True)
class Envelope:
    event_id: str
    type: str
    schema_version: int
    topic: str
    position: int
    stream_id: str
    stream_version: int
    occurred_at: str | None
    recorded_at: str | None
    key: str
    payload: dict[str, Any]
    data: dict[str, Any] | None = None  # None only in a v1 envelope read back

    def to_bytes(self) -> bytes:
        return encode(
            self.event_id,
            self.type,
            self.schema_version,
            self.topic,
            self.position,
            self.stream_id,
            self.stream_version,
            self.occurred_at,
            self.recorded_at,
            self.key,
            self.data,
            self.payload,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        return headers(self.type, self.schema_version, self.event_id)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Envelope":
        doc = orjson.loads(data)
        if doc.get("envelope_version") not in READABLE_VERSIONS:
            raise ValueError(f"unsupported envelope version {doc.get('envelope_version')!r}")
        return cls(
            event_id=str(doc["event_id"]),
            type=doc["type"],
            schema_version=int(doc["schema_version"]),
            topic=doc["topic"],
            position=int(doc["position"]),
            stream_id=str(doc["stream_id"]),
            stream_version=int(doc["stream_version"]),
            occurred_at=doc["occurred_at"],
            recorded_at=doc["recorded_at"],
            key=doc["key"],
            payload=doc["payload"],
            data=doc.get("data"),
        )

    def stored_event(self) -> StoredEvent:
        """Back to eventsourcing's stored form, so a mapper rebuilds the domain event."""
        return StoredEvent(
            originator_id=UUID(self.stream_id),
            originator_version=self.stream_version,
            topic=self.topic,
            state=orjson.dumps(self.payload),
        )


def iso_of(value: Any) -> str | None:
    """A transcoded datetime field as its ISO string."""
    if isinstance(value, dict) and value.get("_type_") == "datetime_iso":
        return str(value["_data_"])
    return None


def _hex_uuid(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("_type_") == "uuid_hex":
        return dashed(str(value["_data_"]))
    return None


def build_envelope(n: Notification, key: str, payload: dict[str, Any] | None = None) -> Envelope:
    """The envelope of a stored event; pass `payload` if the state is already parsed."""
    if payload is None:
        payload = orjson.loads(n.state)
    stream_id = str(n.originator_id)
    schema_version, data = plain_data(n.topic, payload)
    return Envelope(
        event_id=event_id(stream_id, n.originator_version),
        type=n.topic.split(":", 1)[1],
        schema_version=schema_version,
        topic=n.topic,
        position=n.id,
        stream_id=stream_id,
        stream_version=n.originator_version,
        occurred_at=iso_of(payload.get("occurred_at")),
        recorded_at=iso_of(payload.get("timestamp")),
        key=key,
        payload=payload,
        data=data,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def timestamp_ms(occurred_at: str | None, recorded_at: str | None) -> int | None:
    """The record timestamp: the event time in ms since the epoch (occurred_at, else when
    it was stored), so that a re-published duplicate carries the same timestamp and stream
    processors window on event time. None (the broker's clock) only if neither is known."""
    iso = occurred_at or recorded_at
    if iso is None:
        return None
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:  # stored naive: the library's timestamps are UTC
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


def payload_uuid(n: StoredEvent, field: str, payload: dict[str, Any] | None = None) -> str | None:
    """A UUID field of a stored event (as a string), without decoding the whole event."""
    return _hex_uuid((payload if payload is not None else orjson.loads(n.state)).get(field))
