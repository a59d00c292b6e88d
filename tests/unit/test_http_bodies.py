"""Differential: the msgspec bodies of the engagement routes (adapters/http/bodies.py)
against their reference, the pydantic models of adapters/http/schemas.py.

The same JSON goes to both: valid bodies must give the same Signal, invalid ones must be
rejected by both (msgspec names the field). Generated bodies mix valid values with the
mistakes clients make (wrong types, out-of-range numbers, unknown enum values, unknown
fields, naive times, bad UUIDs). pydantic's lax coercions ("3" for 3, "true" for true)
are the one documented difference: msgspec follows the schema.
"""

import itertools
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from adapters.http import bodies, schemas
from domain.errors import InvalidValue
from domain.values import check_event_time, check_storable, check_text

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
    # JSON Schema's integers include their float spelling (3.0): both take it as 3.
    "expected_version": st.integers(1, 1000) | st.integers(1, 2**53).map(float),
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
    "expected_version": [0, -3, 1.5, 0.0, 0.5, 2.000001, "2", None],
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


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), (3010.0, 3010), (1e3, 1000), (1.5, None), (0.0, None), (0.999, None),
     (-2.0, None), ("3", None), (True, None)],
)  # fmt: skip
@pytest.mark.parametrize("fast_type", [bodies.ViewerBody, bodies.RecordView])
def test_integral_floats_are_integers_for_both(fast_type, value, expected):
    """Found by schemathesis (`expected_version: 3010.0`, valid JSON Schema, was 422
    "Expected `int | null`, got `float`"): an integral float is the integer, as pydantic
    takes it; any other float, a string or a boolean is refused (pydantic's lax "3" and
    true are its documented difference, not asserted here)."""
    body: dict[str, Any] = {"viewer_id": str(UUID(int=7)), "expected_version": value}
    model = schemas.ViewerBody
    if fast_type is bodies.RecordView:
        body["watch_seconds"], model = 1, schemas.RecordView
    raw = orjson.dumps(body)
    if expected is None:
        with pytest.raises(msgspec.ValidationError) as caught:
            msgspec.json.decode(raw, type=fast_type)
        assert bodies.field_error(caught.value)[0] == "expected_version"
        if not isinstance(value, str | bool):
            with pytest.raises(ValidationError):
                model.model_validate_json(raw)
        return
    got = msgspec.json.decode(raw, type=fast_type).expected_version
    assert type(got) is int and got == expected
    assert model.model_validate_json(raw).expected_version == expected


# -- text patterns: the OpenAPI document describes what the domain stores ----------------
def _domain_takes(check: Any, value: str, multiline: bool) -> bool:
    try:
        check("field", value, multiline=multiline)
    except InvalidValue:
        return False
    return True


@pytest.mark.parametrize("multiline", [False, True], ids=["one-line", "multiline"])
def test_text_patterns_describe_the_domains_rules_character_by_character(multiline):
    """Every character but the surrogates (which a pattern cannot name; the description
    does): the pattern takes exactly the text the domain takes, inside a text and alone
    (blank or not)."""
    storable = re.compile(schemas.text_pattern(multiline=multiline, blank=True))
    filled = re.compile(schemas.text_pattern(multiline=multiline, blank=False))
    for code in itertools.chain(range(0xD800), range(0xE000, sys.maxunicode + 1)):
        char = chr(code)
        stored = _domain_takes(check_storable, f"a{char}b", multiline)
        assert bool(storable.fullmatch(f"a{char}b")) == stored, hex(code)
        assert bool(filled.fullmatch(f"a{char}b")) == stored, hex(code)
        taken = _domain_takes(check_text, char * 3, multiline)
        assert bool(filled.fullmatch(char * 3)) == taken, hex(code)
    assert not filled.fullmatch("") and storable.fullmatch("")


def test_text_fields_carry_their_pattern_in_the_document():
    """Each text field of the documented bodies names the domain's rule for it."""
    one_line = schemas.text_pattern(multiline=False, blank=False)
    multiline = schemas.text_pattern(multiline=True, blank=False)
    expected = {
        ("RegisterCreator", "display_name"): one_line,
        ("AutoFlag", "model"): one_line,
        ("Decide", "policy"): one_line,
        ("Decide", "note"): schemas.text_pattern(multiline=True, blank=True),
        ("PublishVideo", "caption"): schemas.text_pattern(multiline=True, blank=True),
        ("SuspensionChange", "reason"): multiline,
        ("Appeal", "statement"): multiline,
        ("RecordComment", "text"): multiline,
        ("ViewerBody", "client_event_id"): schemas.text_pattern(multiline=False, blank=True),
    }
    for (model, field), pattern in expected.items():
        prop = getattr(schemas, model).model_json_schema()["properties"][field]
        found = [p.get("pattern") for p in [prop, *prop.get("anyOf", [])]]
        assert pattern in found, (model, field, prop)
    reasons = schemas.AutoFlag.model_json_schema()["properties"]["reasons"]["items"]
    assert reasons["pattern"] == one_line


@settings(max_examples=400, deadline=None)
@given(
    moment=st.datetimes(datetime(1999, 12, 30), datetime(2000, 1, 3)) | st.datetimes(),
    offset_minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_the_event_time_pattern_takes_only_times_the_domain_takes(moment, offset_minutes):
    """Found by reading the domain against the document: event times before 2000 were 422
    with nothing in the schema saying so. What the pattern takes the domain takes; what
    leaves out that the domain takes is only the edge a pattern cannot compute: 1 January
    2000 east of UTC, 31 December 1999 west of it."""
    text = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()
    matches = re.match(schemas.EVENT_TIME_PATTERN, text) is not None
    try:
        check_event_time(datetime.fromisoformat(text))
        taken = True
    except InvalidValue:
        taken = False
    assert not matches or taken, text
    if taken and not matches:
        east = text.startswith("2000-01-01") and offset_minutes > 0
        west = text.startswith("1999-12-31") and offset_minutes < 0
        assert east or west, text
