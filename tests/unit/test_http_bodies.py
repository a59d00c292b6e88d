"""Differential: the msgspec bodies of the engagement routes (adapters/http/bodies.py)
against their reference, the pydantic models of adapters/http/schemas.py.

The same JSON goes to both: valid bodies must give the same Signal, invalid ones must be
rejected by both (msgspec names the field). Generated bodies mix valid values with the
mistakes clients make (wrong types, out-of-range numbers, unknown enum values, unknown
fields, naive times, bad UUIDs). pydantic's lax coercions ("3" for 3, "true" for true)
are the one documented difference: msgspec follows the schema.
"""

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from adapters.http import bodies, schemas

UUIDS = st.uuids().map(str)
TIMES = st.sampled_from(
    ["2026-01-01T10:00:00Z", "2026-01-01T10:00:00+02:00", "2026-06-30T23:59:59.123456-05:00"]
)
GOOD = {
    "viewer_id": UUIDS,
    "video_id": UUIDS,
    "creator_id": UUIDS,
    "comment_id": UUIDS,
    "occurred_at": TIMES,
    "client_event_id": st.text(min_size=1, max_size=64),
    "watch_seconds": st.one_of(st.floats(0, 1e6), st.integers(0, 10_000)),
    "completed": st.booleans(),
    "traffic_source": st.sampled_from(sorted(schemas.TRAFFIC_SOURCES)),
    "device": st.sampled_from(sorted(schemas.DEVICES)),
    "channel": st.sampled_from(sorted(schemas.SHARE_CHANNELS)),
    "text": st.text(min_size=1, max_size=50),
    "expected_version": st.integers(1, 1000),
}
# Per field: values the schema refuses (and None: null is refused where a value is required
# and accepted where the field is optional, by both).
BAD = {
    "viewer_id": ["not-a-uuid", "", 7, None],
    "video_id": ["not-a-uuid", 7, None],
    "creator_id": ["not-a-uuid", [], None],
    "comment_id": ["not-a-uuid", None, 1.5],
    "occurred_at": ["2026-01-01T10:00:00", "yesterday", "2026-13-01T10:00:00Z", None, 1e9],
    "client_event_id": ["", "x" * 65, 7, None],
    "watch_seconds": [-1, -0.001, "3", None, []],
    "completed": ["true", None, "yes"],
    "traffic_source": ["fax", "", None, 1],
    "device": ["fax", "IOS", None],
    "channel": ["fax", "", None],
    "text": ["", "x" * 2201, None, 5],
    "expected_version": [0, -3, 1.5, "2", None],
}
ITEM_FIELDS = {  # (required, optional) besides viewer_id, occurred_at, client_event_id
    "view": (["video_id", "watch_seconds"], ["completed", "traffic_source", "device"]),
    "like": (["video_id"], []),
    "unlike": (["video_id"], []),
    "share": (["video_id"], ["channel"]),
    "comment": (["video_id", "text"], ["comment_id"]),
    "delete_comment": (["video_id", "comment_id"], []),
    "follow": (["creator_id"], []),
    "unfollow": (["creator_id"], []),
}
pydantic_item = TypeAdapter(schemas.BatchItem)


@st.composite
def bodies_of(draw: st.DrawFn, required: list[str], optional: list[str]) -> dict[str, Any]:
    """A valid body, and in most examples exactly one mistake: a field with a value the
    schema refuses, a required field left out, or a field the schema does not know."""
    body = {name: draw(GOOD[name]) for name in required}
    for name in optional:
        if draw(st.booleans()):
            body[name] = draw(GOOD[name])
    mistake = draw(st.sampled_from(["none", "bad", "bad", "bad", "drop", "unknown"]))
    if mistake == "bad":
        name = draw(st.sampled_from(required + optional))
        body[name] = draw(st.sampled_from(BAD[name]))
    elif mistake == "drop":
        del body[draw(st.sampled_from(required))]
    elif mistake == "unknown":
        body["colour"] = "red"
    return body


def lax(value: Any, field: str) -> bool:
    """pydantic's lax coercions msgspec does not make (the documented difference): a
    numeric string for a number, "true" for true (also a bool for a number, not
    generated here)."""
    return (field in ("watch_seconds", "expected_version") and isinstance(value, str)) or (
        field == "completed" and isinstance(value, str)
    )


def reference(raw: bytes) -> Any:
    try:
        return schemas.item_to_signal(pydantic_item.validate_json(raw))
    except ValidationError:
        return None


def fast(raw: bytes) -> Any:
    _, signals, invalid = bodies.decode_items([raw])
    if invalid:
        assert invalid[0].split(": ", 1)[0], invalid  # a message that names the field
        return None
    return signals[0]


@pytest.mark.parametrize("kind", sorted(ITEM_FIELDS))
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_batch_items_decode_as_the_reference_does(kind, data):
    required, optional = ITEM_FIELDS[kind]
    item = {
        "type": kind,
        **data.draw(
            bodies_of(["viewer_id", *required], ["occurred_at", "client_event_id", *optional])
        ),
    }
    if any(lax(v, k) for k, v in item.items()):
        return
    raw = orjson.dumps(item)
    expected, got = reference(raw), fast(raw)
    assert (expected is None) == (got is None), (item, expected, got)
    assert got == expected
    if got is not None and got.occurred_at is not None:
        assert got.occurred_at.isoformat() == expected.occurred_at.isoformat()


SINGLES = [  # (msgspec type, pydantic model, required, optional) besides the common fields
    (
        bodies.RecordView,
        schemas.RecordView,
        ["watch_seconds"],
        ["completed", "traffic_source", "device"],
    ),
    (bodies.ViewerBody, schemas.ViewerBody, [], []),
    (bodies.ViewerBody, schemas.FollowBody, [], []),
    (bodies.RecordShare, schemas.RecordShare, [], ["channel"]),
    (bodies.RecordComment, schemas.RecordComment, ["text"], ["comment_id"]),
]
COMMON_OPTIONAL = ["occurred_at", "client_event_id", "expected_version"]


@pytest.mark.parametrize(("fast_type", "model", "required", "optional"), SINGLES)
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_single_bodies_validate_as_the_reference_does(fast_type, model, required, optional, data):
    body = data.draw(bodies_of(["viewer_id", *required], [*COMMON_OPTIONAL, *optional]))
    if any(lax(v, k) for k, v in body.items()):
        return
    raw = orjson.dumps(body)
    try:
        expected = model.model_validate_json(raw).model_dump()
    except ValidationError:
        expected = None
    try:
        got = msgspec.structs.asdict(msgspec.json.decode(raw, type=fast_type))
    except msgspec.ValidationError as e:
        assert bodies.field_error(e)[0], (body, e)
        got = None
    assert (expected is None) == (got is None), (body, expected, got)
    if got is not None:
        assert got == {k: v for k, v in expected.items() if k in got}


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (b'{"type":"view","viewer_id":"x"}', "viewer_id", "Invalid UUID"),
        (b'{"type":"like","video_id":"6f1c1a3e-8e1b-4f5e-9d6a-1a2b3c4d5e6f"}', "viewer_id",
         "field required"),
        (b'{"viewer_id":"6f1c1a3e-8e1b-4f5e-9d6a-1a2b3c4d5e6f"}', "type", "field required"),
        (b'{"type":"nap","viewer_id":"6f1c1a3e-8e1b-4f5e-9d6a-1a2b3c4d5e6f"}', "type",
         "Invalid value 'nap'"),
        (b'{"type":"follow","viewer_id":"6f1c1a3e-8e1b-4f5e-9d6a-1a2b3c4d5e6f",'
         b'"creator_id":"6f1c1a3e-8e1b-4f5e-9d6a-1a2b3c4d5e6f","video_id":"x"}', "video_id",
         "unknown field"),
        (b"[1]", "", "Expected `object`, got `array`"),
    ],
)  # fmt: skip
def test_errors_name_the_field(raw, field, message):
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(raw, type=bodies.BatchItem)
    assert bodies.field_error(caught.value) == (field, message)
