"""What a Kafka user expects of ingest (issue 18): strict types, a video's signals applied
in event-time order whatever partitions they were sent to, a plausible rate from
`reelpulse ingest --once`, and messages produced and dead letters read with
confluent-kafka (librdkafka) that fit the published ingest and dead-letter schemas.

Same session broker, prefixes and helpers as test_kafka_ingest.py.
"""

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import confluent_kafka
import jsonschema
import orjson
import pytest
from typer.testing import CliRunner

from adapters.cli import app
from adapters.kafka.client import ensure_topics, producer
from adapters.kafka.envelope import dead_letter_topic, ingest_topic
from adapters.kafka.ingest import (
    DETAIL_HEADER,
    MIN_RATE_SECONDS,
    REASON_HEADER,
    SOURCE_HEADER,
    IngestWorker,
)
from adapters.settings import Settings

from . import test_kafka_ingest
from .test_kafka_ingest import READ_TIMEOUT, World, dead_letters, headers, message, produce, run

pytestmark = pytest.mark.kafka
world = test_kafka_ingest.world  # the fixture: a store with a creator and ten videos


# -- strict types ------------------------------------------------------------------------
def valid_messages(world: World) -> dict[str, dict[str, Any]]:
    """A valid message of every type, every field present (client_event_id added later)."""
    video = str(world.videos[0])
    common = {"viewer_id": str(uuid4()), "occurred_at": "2026-01-01T10:00:00Z"}
    return {
        kind: {"type": kind, **common, **fields}
        for kind, fields in {
            "view": {"video_id": video, "watch_seconds": 2.5, "completed": True,
                     "traffic_source": "for_you", "device": "ios"},
            "like": {"video_id": video},
            "unlike": {"video_id": video},
            "share": {"video_id": video, "channel": "other"},
            "comment": {"video_id": video, "text": "nice", "comment_id": str(uuid4())},
            "delete_comment": {"video_id": video, "comment_id": str(uuid4())},
            "follow": {"creator_id": str(world.creator)},
            "unfollow": {"creator_id": str(world.creator)},
        }.items()
    }  # fmt: skip


NUMBER, BOOLEAN, TEXT, UUID_, TIME = "number", "boolean", "string", "uuid", "time"
KINDS = {  # every field of a message and its kind; None: required (null refused)
    "type": (TEXT, None),
    "viewer_id": (UUID_, None),
    "video_id": (UUID_, None),
    "creator_id": (UUID_, None),
    "occurred_at": (TIME, "optional"),
    "client_event_id": (TEXT, None),  # required on the ingest topic
    "watch_seconds": (NUMBER, None),
    "completed": (BOOLEAN, None),  # has a default, but null is not a boolean
    "traffic_source": (TEXT, None),
    "device": (TEXT, None),
    "channel": (TEXT, None),
    "text": (TEXT, None),
    "comment_id": (UUID_, None),  # optional on comment, required on delete_comment
}
WRONG = {  # values of the wrong JSON type, per kind of field
    NUMBER: ["2.5", "12", True, False, {}, [], [2.5]],
    BOOLEAN: ["yes", "true", 1, 0, 1.0, {}, [], [True]],
    TEXT: [1, 2.5, True, {}, [], ["view"]],
    UUID_: [1, 2.5, True, {}, [], {"_type_": "uuid_hex"}],
    TIME: [1, 1.7e9, True, {}, []],
}


def wrong_typed(world: World) -> list[tuple[str, dict[str, Any]]]:
    """Every field of every message type, set to every wrong-typed value: (field, doc)."""
    cases = []
    for kind, valid in valid_messages(world).items():
        for name in [*valid, "client_event_id"]:
            field_kind, optional = KINDS[name]
            nullable = optional or (kind == "comment" and name == "comment_id")
            values = WRONG[field_kind] + ([] if nullable else [None])
            for value in values:
                cases.append((name, valid | {"client_event_id": f"w-{len(cases)}", name: value}))
    return cases


def test_every_wrong_typed_field_is_dead_lettered_naming_it(world: World):
    cases = wrong_typed(world)
    assert len(cases) > 250
    key = world.videos[0]
    head = world.container.head_position
    sent = produce(world.settings, [message(doc, key) for _, doc in cases])

    stats = run(IngestWorker(world.settings, world.container, group_id="strict"))

    assert (stats.consumed, stats.recorded, stats.duplicates) == (len(cases), 0, 0)
    assert world.container.head_position == head, "nothing of it is stored"
    by_source = {f"{world.topic}:{m.partition}:{m.offset}": i for i, m in enumerate(sent)}
    letters = dead_letters(world.settings, len(cases))
    found = {by_source[headers(letter)[SOURCE_HEADER]]: headers(letter) for letter in letters}
    assert sorted(found) == list(range(len(cases)))
    for index, (name, doc) in enumerate(cases):
        assert found[index][REASON_HEADER] == "invalid_input", doc
        assert found[index][DETAIL_HEADER].startswith(f"{name}: "), (doc, found[index])


# -- order across partitions -------------------------------------------------------------
async def _produce_to(
    settings: Settings, records: list[tuple[int, UUID, dict[str, Any], int | None]]
) -> None:
    """(partition, key, doc, timestamp_ms): each message to the partition given."""
    await ensure_topics(settings)
    kafka = producer(settings)
    await kafka.start()
    try:
        topic = ingest_topic(settings.kafka_topic_prefix)
        acks = [
            await kafka.send(topic, orjson.dumps(doc), str(key).encode(), p, timestamp_ms=ts)
            for p, key, doc, ts in records
        ]
        await asyncio.gather(*acks)
    finally:
        await kafka.stop()


def test_a_videos_signals_on_several_partitions_apply_in_event_time_order(world: World):
    """Like then unlike, sent to different partitions (another partitioner, or none): the
    pair ends unliked whichever partition the poll hands over first. Pairs with the like
    on the higher partition and pairs with it on the lower one: any partition order
    gets one kind wrong. Event time is `occurred_at`, or the record's timestamp."""
    settings = world.settings
    assert settings.kafka_partitions >= 6
    video = world.videos[0]
    t0 = datetime.now(UTC) - timedelta(hours=1)
    stamp = int(t0.timestamp() * 1000)
    records, viewers, n = [], [], 0
    for like_on, unlike_on in [(4, 0), (0, 4), (5, 2), (1, 3)]:
        for timed in (True, False):
            viewer = uuid4()
            viewers.append(viewer)
            for kind, partition, seconds in [("like", like_on, 1), ("unlike", unlike_on, 2)]:
                n += 1
                doc = {"type": kind, "viewer_id": str(viewer), "video_id": str(video),
                       "client_event_id": f"o-{n}"}  # fmt: skip
                when = t0 + timedelta(seconds=seconds)
                if timed:
                    doc["occurred_at"] = when.isoformat()
                    # a record timestamp that says the opposite: occurred_at decides
                    records.append((partition, video, doc, stamp - 1000 * seconds))
                else:
                    records.append((partition, video, doc, stamp + 1000 * seconds))
    asyncio.run(asyncio.wait_for(_produce_to(settings, records), READ_TIMEOUT))

    stats = run(IngestWorker(settings, world.container, group_id="order"))

    assert stats.consumed == len(records) and stats.batches == 1, "one poll"
    assert stats.by_reason == {}, "no unlike found the pair not liked yet"
    assert (stats.recorded, stats.dead_lettered) == (len(records), 0)
    engagement = world.container.engagement
    assert [engagement.get_engagement(v, video).liked for v in viewers] == [False] * len(viewers)


# -- the CLI's rate ----------------------------------------------------------------------
RATE = re.compile(r"([\d,]+) msg/s")


def test_ingest_once_prints_a_plausible_rate(world: World, monkeypatch: pytest.MonkeyPatch):
    viewers = [uuid4() for _ in range(300)]
    produce(world.settings, [message(view_doc(v, world.videos[0], n), world.videos[0])
                             for n, v in enumerate(viewers)])  # fmt: skip
    monkeypatch.setenv("REELPULSE_DATABASE_URL", "memory://")  # no videos: all dead-lettered
    monkeypatch.setenv("REELPULSE_KAFKA_BOOTSTRAP_SERVERS", world.settings.kafka_bootstrap_servers)
    monkeypatch.setenv("REELPULSE_KAFKA_TOPIC_PREFIX", world.settings.kafka_topic_prefix)

    began = time.perf_counter()
    result = CliRunner().invoke(app, ["ingest", "--once", "--group", "cli"])
    wall = time.perf_counter() - began

    assert result.exit_code == 0, result.output
    assert "consumed 300 messages" in result.output
    progress = [line for line in result.output.splitlines() if line.startswith("ingesting")]
    assert progress, result.output
    rates = [int(r.replace(",", "")) for line in progress for r in RATE.findall(line)]
    assert rates, "joining the group alone takes seconds: the rate is shown by the end"
    # never over less than MIN_RATE_SECONDS; over at most the whole command
    assert all(300 / wall <= r <= 300 / MIN_RATE_SECONDS for r in rates), result.output


def view_doc(viewer: UUID, video: UUID, n: int) -> dict[str, Any]:
    return {"type": "view", "viewer_id": str(viewer), "video_id": str(video),
            "watch_seconds": 3, "client_event_id": f"cli-{n}"}  # fmt: skip


# -- the published schemas, with confluent-kafka ---------------------------------------------
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "kafka"


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def confluent_produce(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    asyncio.run(ensure_topics(settings))  # with ReelPulse's configs, not auto-created
    kafka = confluent_kafka.Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "partitioner": "murmur2_random"}
    )
    errors: list[str] = []
    for key, value in messages:
        kafka.produce(
            ingest_topic(settings.kafka_topic_prefix), value=value, key=key,
            on_delivery=lambda err, _: errors.append(str(err)) if err else None,
        )  # fmt: skip
    assert kafka.flush(READ_TIMEOUT) == 0 and not errors, errors[:3]


def confluent_dead_letters(settings: Settings, count: int) -> list[confluent_kafka.Message]:
    topic = dead_letter_topic(settings.kafka_topic_prefix)
    kafka = confluent_kafka.Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers,
         "group.id": f"dlq-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )  # fmt: skip
    try:
        kafka.assign(
            [confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
             for p in range(settings.kafka_partitions)]
        )  # fmt: skip
        found: list[confluent_kafka.Message] = []
        deadline = time.monotonic() + READ_TIMEOUT
        while len(found) < count:
            assert time.monotonic() < deadline, f"read {len(found)} of {count} dead letters"
            for m in kafka.consume(num_messages=500, timeout=0.5):
                assert not m.error(), m.error()
                found.append(m)
        assert not kafka.consume(num_messages=10, timeout=1.0), "more dead letters than sent"
        return found
    finally:
        kafka.close()


def test_messages_and_dead_letters_fit_the_published_schemas(world: World):
    """What a producer sends is valid exactly when the ingest schema says so; every dead
    letter, read with librdkafka, fits the dead-letter schema, and one the domain refused
    carries a message the ingest schema accepts."""
    ingest, dlq = (
        schema_validator("ingest.engagement.v1"),
        schema_validator("ingest.engagement.dlq.v1"),
    )
    valid = [doc | {"client_event_id": f"s-{kind}"}
             for kind, doc in valid_messages(world).items()]  # fmt: skip
    unknown_video = {"type": "like", "viewer_id": str(uuid4()), "video_id": str(uuid4()),
                     "client_event_id": "s-unknown"}  # fmt: skip
    wrong = [doc for _, doc in wrong_typed(world)]
    no_id = {k: v for k, v in valid[0].items() if k != "client_event_id"}
    for doc in [*valid, unknown_video]:
        assert ingest.is_valid(doc), [e.message for e in ingest.iter_errors(doc)][:3]
    for doc in [*wrong, no_id]:
        assert not ingest.is_valid(doc), ("the schema takes a message the worker refuses", doc)
    key = str(world.videos[0]).encode()
    confluent_produce(
        world.settings,
        [(key, orjson.dumps(d)) for d in [*valid, unknown_video, *wrong, no_id]]
        + [(key, b"{not json")],
    )

    stats = run(IngestWorker(world.settings, world.container, group_id="schemas"))

    total = len(valid) + 1 + len(wrong) + 1 + 1
    assert stats.consumed == total
    letters = confluent_dead_letters(world.settings, stats.dead_lettered)
    reasons: Counter[str] = Counter()
    for m in letters:
        view = {
            "key": None if m.key() is None else m.key().decode(),
            "value": None if m.value() is None else m.value().decode(),
            "headers": {name: value.decode() for name, value in m.headers() or ()},
        }
        errors = [e.message for e in dlq.iter_errors(view)][:3]
        assert not errors, (view, errors)
        reason = view["headers"][REASON_HEADER]
        reasons[reason.split(":")[0]] += 1
        if reason.startswith(("rejected:", "error:")):  # the schema's contentSchema
            assert ingest.is_valid(json.loads(view["value"])), view
        elif reason == "invalid_input":
            assert not ingest.is_valid(json.loads(view["value"])), view
    assert reasons["invalid_input"] == len(wrong) + 1 and reasons["invalid_json"] == 1
    assert reasons["rejected"] >= 1, "the like of an unknown video"
    assert stats.recorded + reasons["rejected"] == len(valid) + 1
