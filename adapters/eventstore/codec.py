"""One fast codec for event state, in the library's stored-event format.

eventsourcing's `JSONTranscoder` writes event state as JSON with tagged objects for the
types JSON lacks (`{"_type_": "uuid_hex", "_data_": "..."}`, `datetime_iso`,
`decimal_str`, and ReelPulse's `reelpulse_sealed`), through the stdlib `json` module with
Python callbacks for every tagged value. `OrjsonTranscoder` writes and reads the same
JSON with orjson: same tags, same key order, same compact separators, UTF-8 text, so the
library (and every store written before) reads what it writes and it reads what the
library wrote (tests/unit/test_codec.py checks both ways, byte for byte). Only number
formatting may differ in bytes (orjson writes 1e-7 where json writes 1e-07); both parse
to the same float.

It is a `JSONTranscoder` subclass, so the library registers its transcodings on it as
usual and any other registered type still goes through its `Transcoding`; UUIDs and
datetimes (nearly every tagged value) take a short path.

Selected with the library's own setting: TRANSCODER_TOPIC (see factory.py).
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

# Dataclasses go to `_encode_obj` (the library's hook). Datetimes reach orjson only inside
# the tags `_prepare` builds (every other datetime is tagged there first): orjson writes a
# UTC or naive one exactly as `isoformat()` does, in C.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS
_UTC = UTC
UUID_HEX = "uuid_hex"
DATETIME_ISO = "datetime_iso"
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = SafeUUID.unknown


# Decoded UUIDs are interned: the same id decodes to the same object, so the dict
# lookups projections do with it (keyed by ids read from earlier events) hit on identity
# instead of calling UUID.__eq__, and no new object is built. Bounded: cleared when full.
_INTERNED: dict[str, UUID] = {}
MAX_INTERNED = 200_000


def uuid_from_hex(text: str) -> UUID:
    """`UUID(text)` for a 32-digit hex string, without the constructor's parsing
    (a third of its time), interned; any other form goes through the constructor."""
    u = _INTERNED.get(text)
    if u is not None:
        return u
    if len(text) != 32:
        return UUID(text)
    u = _new(UUID)
    _set(u, "int", int(text, 16))
    _set(u, "is_safe", _UNKNOWN)
    if len(_INTERNED) >= MAX_INTERNED:
        _INTERNED.clear()
    _INTERNED[text] = u
    return u


# The tag of a UUID is a small dict orjson only reads: one per id, shared by every event
# that names it (a viewer, a video), instead of one dict and one .hex per field. Bounded.
_UUID_TAGS: dict[int, dict[str, str]] = {}
MAX_UUID_TAGS = 50_000


def _uuid_tag(value: UUID) -> dict[str, str]:
    tag = {"_type_": UUID_HEX, "_data_": value.hex}
    if len(_UUID_TAGS) >= MAX_UUID_TAGS:
        _UUID_TAGS.clear()
    _UUID_TAGS[value.int] = tag
    return tag


def tag_uuid(value: UUID) -> dict[str, str]:
    return {"_type_": UUID_HEX, "_data_": value.hex}


def tag_datetime(value: datetime) -> dict[str, str]:
    return {"_type_": DATETIME_ISO, "_data_": value.isoformat()}


class OrjsonTranscoder(JSONTranscoder):
    """The library's JSON stored-event format, encoded and decoded with orjson."""

    def __init__(self) -> None:
        super().__init__()
        none: tuple[datetime | None, str] = (None, "")
        self._iso_slots = (none, none)

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._prepare(obj), default=self._encode_obj, option=_OPTIONS)
        except orjson.JSONEncodeError as e:
            # orjson wraps what the hook raised; the library raises it as it is.
            if isinstance(e.__cause__, TranscodingNotRegisteredError):
                raise e.__cause__ from None
            raise

    def decode(self, data: bytes) -> Any:
        return self._restore(orjson.loads(data))

    # orjson writes UUIDs natively (as a plain string) and datetimes as plain text, so
    # both are tagged before it sees them; subclasses of either and dataclasses go to
    # `_encode_obj` (the library's hook: a registered Transcoding, or
    # TranscodingNotRegisteredError), whose lookup is by exact type.
    def _prepare(self, value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            out = {}
            tags = _UUID_TAGS
            for k, v in value.items():
                t = type(v)
                if t is UUID:
                    tag = tags.get(v.int)
                    out[k] = tag if tag is not None else _uuid_tag(v)
                elif t is datetime:
                    zone = v.tzinfo
                    out[k] = {
                        "_type_": DATETIME_ISO,
                        "_data_": v if zone is _UTC or zone is None else self._iso(v),
                    }
                elif t is str or t is float or t is bool or t is int or v is None:
                    out[k] = v
                elif t is dict or t is list or t is tuple or isinstance(v, UUID | datetime):
                    out[k] = self._prepare(v)
                else:  # other types: orjson calls `_encode_obj`
                    out[k] = v
            return out
        if kind is UUID:
            return _uuid_tag(value)
        if kind is datetime:
            return {"_type_": DATETIME_ISO, "_data_": value.isoformat()}
        if kind is list or kind is tuple:
            return [self._prepare(v) for v in value]
        if isinstance(value, UUID | datetime):  # a subclass: the library's lookup is by exact type
            return self._encode_obj(value)
        return value

    def _iso(self, value: datetime) -> str:
        # The events of one decision share their recording time, and a signal's events
        # their event time: remember the last two texts, by identity (equal datetimes in
        # other zones print differently). Each slot is one tuple, swapped whole, so a
        # thread never pairs a datetime with another's text.
        recent, older = self._iso_slots
        if recent[0] is value:
            return recent[1]
        if older[0] is value:
            return older[1]
        text = value.isoformat()
        self._iso_slots = ((value, text), recent)
        return text

    def _encode_obj(self, o: Any) -> dict[str, Any]:
        if type(o) is datetime:
            return {"_type_": DATETIME_ISO, "_data_": o.isoformat()}
        tagged = super()._encode_obj(o)
        tagged["_data_"] = self._prepare(tagged["_data_"])
        return tagged

    # Like the library's object_hook: every dict, innermost first, that is exactly a tag.
    def _restore(self, value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            for k, v in value.items():
                t = type(v)
                if t is dict:
                    if len(v) == 2:
                        name = v.get("_type_")
                        if name == UUID_HEX:
                            data = v.get("_data_")
                            if type(data) is str:
                                value[k] = uuid_from_hex(data)
                                continue
                        elif name == DATETIME_ISO:
                            data = v.get("_data_")
                            if type(data) is str:
                                value[k] = datetime.fromisoformat(data)
                                continue
                    value[k] = self._restore(v)
                elif t is list:
                    value[k] = self._restore(v)
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                return self._decode_obj(value)
            return value
        if kind is list:
            for i, v in enumerate(value):
                t = type(v)
                if t is dict or t is list:
                    value[i] = self._restore(v)
        return value
