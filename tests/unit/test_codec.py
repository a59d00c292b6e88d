"""The orjson codec writes and reads exactly the library's stored-event JSON.

Reference: eventsourcing's own JSONTranscoder with the transcodings every ReelPulse
application registers. Both directions are checked: what the library wrote decodes equal
with ours, and ours decodes equal with the library's; for the value types events hold the
bytes are identical too.
"""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from adapters.erasure.mapper import Sealed, SealedAsJSON
from adapters.eventstore.codec import OrjsonTranscoder, uuid_from_hex


def registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), SealedAsJSON()):
        transcoder.register(transcoding)
    return transcoder


LIBRARY = registered(JSONTranscoder())
FAST = registered(OrjsonTranscoder())

# Floats whose repr both libraries print alike (not 1e-07 vs 1e-7): byte equality holds.
plain_floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: "e" not in repr(x))
# UTC and naive datetimes are written by orjson inside the tag, others by isoformat().
times = st.datetimes(
    min_value=datetime(1, 1, 2),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), None]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    plain_floats,
    st.text(),
    st.uuids(),
    times,
    st.decimals(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
states = st.dictionaries(st.text(), values, max_size=8)


@given(states)
def test_same_bytes_as_the_library(state):
    assert FAST.encode(state) == LIBRARY.encode(state)


@given(states)
def test_reads_what_the_library_wrote_and_the_library_reads_ours(state):
    assert FAST.decode(LIBRARY.encode(state)) == LIBRARY.decode(LIBRARY.encode(state))
    assert LIBRARY.decode(FAST.encode(state)) == LIBRARY.decode(LIBRARY.encode(state))


def test_sealed_values_and_nested_tags_round_trip():
    state = {
        "text": Sealed(uuid4(), b"123456789012", b"cipher"),
        "ids": [uuid4(), {"inner": uuid4()}],
        "tagged_lookalike": {"_type_": "not a tag"},
        "at": datetime.now(UTC),
        "amount": Decimal("1.50"),
    }
    assert FAST.encode(state) == LIBRARY.encode(state)
    assert FAST.decode(FAST.encode(state)) == state


def test_floats_in_exponent_form_parse_to_the_same_value():
    state = {"tiny": 1e-07, "huge": 1.5e300}
    assert FAST.decode(FAST.encode(state)) == LIBRARY.decode(LIBRARY.encode(state)) == state


def test_an_unregistered_type_is_refused_as_the_library_refuses_it():
    class Unknown:
        pass

    with pytest.raises(TranscodingNotRegisteredError):
        LIBRARY.encode({"x": Unknown()})
    with pytest.raises(TranscodingNotRegisteredError):
        FAST.encode({"x": Unknown()})


@pytest.mark.parametrize("where", ["value", "list", "top"])
def test_a_datetime_subclass_is_refused_as_the_library_refuses_it(where):
    # (The library looks transcodings up by exact type; orjson would write a subclass
    # as plain text, untagged, if it ever saw one.)
    class Moment(datetime):
        pass

    moment = Moment(2025, 3, 1, 12, tzinfo=UTC)
    obj = {"x": moment} if where == "value" else [moment] if where == "list" else moment
    with pytest.raises(TranscodingNotRegisteredError):
        LIBRARY.encode(obj)
    with pytest.raises(TranscodingNotRegisteredError):
        FAST.encode(obj)


@given(st.uuids())
def test_uuid_from_hex_equals_the_constructor(u):
    fast = uuid_from_hex(u.hex)
    assert fast == u and hash(fast) == hash(u) and str(fast) == str(u)
    assert uuid_from_hex(str(u)) == u  # other forms still parse
    assert isinstance(fast, UUID)
