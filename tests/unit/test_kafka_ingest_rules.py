"""The ingest worker's pure rules, without a broker: a message value decoded strictly (the
REST batch item's decoder), the apply order of a poll's signals, the progress rate.
The same rules run against the broker in tests/integration/test_kafka_ingest_expectations.py."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from adapters.kafka.ingest import (
    MIN_RATE_SECONDS,
    InvalidMessage,
    apply_order,
    parse_signal,
    progress_rate,
)
from commands.engagement import Signal

VIEW = {
    "type": "view", "viewer_id": str(uuid4()), "video_id": str(uuid4()), "watch_seconds": 2.5,
    "client_event_id": "c-1",
}  # fmt: skip


def reject(doc: Any) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        parse_signal(orjson.dumps(doc))
    return caught.value


def test_a_valid_message_becomes_its_signal():
    signal = parse_signal(orjson.dumps(VIEW | {"completed": True, "device": "ios"}))
    assert (signal.kind, signal.watch_seconds, signal.completed, signal.device) == (
        "view", 2.5, True, "ios",
    )  # fmt: skip
    assert signal.client_event_id == "c-1"


@pytest.mark.parametrize(
    ("field", "value"),
    [("watch_seconds", "2.5"), ("watch_seconds", True), ("completed", "yes"),
     ("completed", 1), ("device", 3), ("viewer_id", None), ("video_id", []),
     ("client_event_id", {}), ("occurred_at", 1.7e9)],
)  # fmt: skip
def test_a_wrong_type_is_invalid_input_naming_the_field(field: str, value: Any):
    error = reject(VIEW | {field: value})
    assert error.reason == "invalid_input"
    assert error.detail.startswith(f"{field}: "), error.detail


def test_the_message_needs_a_client_event_id():
    error = reject({k: v for k, v in VIEW.items() if k != "client_event_id"})
    assert (error.reason, error.detail.split(":")[0]) == ("invalid_input", "client_event_id")


@pytest.mark.parametrize("value", [None, b"\xff{", b"{", b""])
def test_no_value_or_no_json_is_invalid_json(value: bytes | None):
    with pytest.raises(InvalidMessage) as caught:
        parse_signal(value)
    assert caught.value.reason == "invalid_json"


@pytest.mark.parametrize("doc", [[1, 2], "view", 3, None])
def test_a_value_that_is_not_an_object_is_invalid_input(doc: Any):
    assert reject(doc).reason == "invalid_input"


# -- apply order -------------------------------------------------------------------------
T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)


def record(partition: int, offset: int, timestamp: int | None = None) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(
        "t", partition, offset, timestamp, 0, b"k", b"v", None, 1, 1, []
    )  # fmt: skip


def signal(kind: str, seconds: float | None) -> Signal:
    when = None if seconds is None else T0 + timedelta(seconds=seconds)
    return Signal(kind, uuid4(), uuid4(), occurred_at=when)  # type: ignore[arg-type]


def ordered(items: list[tuple[ConsumerRecord[Any, Any], Signal]]) -> list[str]:
    return [s.kind for _, s in sorted(items, key=apply_order)]


def test_event_time_orders_signals_from_different_partitions():
    like, unlike = (record(4, 0), signal("like", 1)), (record(0, 0), signal("unlike", 2))
    assert ordered([unlike, like]) == ["like", "unlike"]


def test_the_record_timestamp_stands_in_for_a_missing_occurred_at():
    ms = int(T0.timestamp() * 1000)
    like = (record(4, 0, ms + 1000), signal("like", None))
    unlike = (record(0, 0, ms + 2000), signal("unlike", None))
    timed = (record(1, 0, ms + 5000), signal("share", 1.5))  # occurred_at wins over ts
    assert ordered([unlike, timed, like]) == ["like", "share", "unlike"]


def test_offsets_order_equal_times_and_untimed_records_come_last():
    first, second = (record(2, 7), signal("like", 1)), (record(2, 8), signal("unlike", 1))
    untimed = (record(0, 0, None), signal("view", None))
    assert ordered([untimed, second, first]) == ["like", "unlike", "view"]


# -- progress rate ------------------------------------------------------------------------
def test_the_rate_is_messages_per_second_of_run_time():
    assert progress_rate(5000, 2.0) == "2,500 msg/s"
    assert progress_rate(110, MIN_RATE_SECONDS) == "110 msg/s"


@pytest.mark.parametrize("seconds", [0.0, 1e-9, 0.002, MIN_RATE_SECONDS - 0.001])
def test_no_rate_over_a_tiny_interval(seconds: float):
    assert progress_rate(110, seconds) == ""
