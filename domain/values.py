"""Value rules shared by several aggregates. Pure functions, no I/O."""

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha1
from uuid import NAMESPACE_URL, UUID, SafeUUID, uuid5

from domain.errors import InvalidValue

# Stable namespace for ids derived from other ids (engagement pairs, moderation cases).
REELPULSE_NAMESPACE = uuid5(NAMESPACE_URL, "https://reelpulse.dev/ids")

MAX_CAPTION_LENGTH = 2200
MAX_HASHTAGS = 30
MAX_HASHTAG_LENGTH = 100
MAX_COMMENT_LENGTH = 2200
MAX_TEXT_FIELD = 500
_HASHTAG_CHARS = re.compile(r"[^\w]+", re.UNICODE)
_HANDLE = re.compile(r"^[a-z0-9._]{2,24}$")
# What no read model can hold or no client should receive: NUL (PostgreSQL text cannot
# hold it), the other C0 controls but tab and line breaks, DEL, lone surrogates (not
# encodable as UTF-8) and the two non-characters U+FFFE/U+FFFF. One-line fields (ids,
# names, codes) refuse tab and line breaks too.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_UNSTORABLE_LINE = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# Event times before this are refused (docs/api.md): no platform's history starts earlier,
# and a year-1 timestamp is a client bug that would skew every time window.
MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=65_536)  # pure; a signal derives the same pair id about three times
def derived_id(kind: str, *parts: UUID | str) -> UUID:
    """A deterministic id for an aggregate that is identified by other ids:
    uuid5(REELPULSE_NAMESPACE, "kind:part:part"), computed without the uuid module's
    constructor and with each part's text remembered (a new pair per signal is the write
    path's commonest case: 6 -> 2 us; tests/unit/test_values.py holds it to uuid5)."""
    name = ":".join([kind, *(_text(p) for p in parts)])
    digest = sha1(_NAMESPACE_BYTES + name.encode()).digest()
    value = int.from_bytes(digest[:16], "big")
    value = (value & _CLEAR_VARIANT) | _RFC_4122
    value = (value & _CLEAR_VERSION) | _VERSION_5
    u = object.__new__(UUID)
    object.__setattr__(u, "int", value)
    object.__setattr__(u, "is_safe", SafeUUID.unknown)
    return u


_NAMESPACE_BYTES = REELPULSE_NAMESPACE.bytes
_CLEAR_VARIANT, _RFC_4122 = ~(0xC000 << 48), 0x8000 << 48
_CLEAR_VERSION, _VERSION_5 = ~(0xF000 << 64), 5 << 76
_TEXTS: dict[int, str] = {}


def _text(part: UUID | str) -> str:
    if type(part) is not UUID:
        return str(part)
    text = _TEXTS.get(part.int)
    if text is None:
        if len(_TEXTS) >= 200_000:
            _TEXTS.clear()
        text = _TEXTS[part.int] = str(part)
    return text


def normalise_hashtag(raw: str) -> str:
    """'#Dance_Challenge ' -> 'dance_challenge' (NFKC, case-folded, word chars only)."""
    tag = unicodedata.normalize("NFKC", raw).strip().lstrip("#").casefold()
    tag = _HASHTAG_CHARS.sub("", tag)
    if not tag:
        raise InvalidValue(f"hashtag {raw!r} is empty after normalisation", code="invalid_hashtag")
    if len(tag) > MAX_HASHTAG_LENGTH:
        raise InvalidValue(
            f"hashtag longer than {MAX_HASHTAG_LENGTH} characters", code="invalid_hashtag"
        )
    return tag


def normalise_hashtags(raw: Iterable[str]) -> list[str]:
    """Normalise, de-duplicate (keeping first-seen order) and bound a hashtag list."""
    seen: dict[str, None] = {}
    for item in raw:
        seen.setdefault(normalise_hashtag(item), None)
    if len(seen) > MAX_HASHTAGS:
        raise InvalidValue(f"at most {MAX_HASHTAGS} hashtags", code="too_many_hashtags")
    return list(seen)


def check_storable(name: str, value: str, *, multiline: bool = False) -> str:
    """`value` unchanged, or InvalidValue (code `invalid_text`, naming the field and the
    character) when it holds a character no read model can store (see _UNSTORABLE)."""
    found = (_UNSTORABLE if multiline else _UNSTORABLE_LINE).search(value)
    if found is not None:
        char = ord(found.group())
        raise InvalidValue(
            f"{name} contains U+{char:04X} at offset {found.start()}: control characters"
            f"{'' if multiline else ', tabs, line breaks'}, NUL, lone surrogates and "
            "non-characters are not accepted",
            code="invalid_text",
            field=name,
        )
    return value


def check_caption(caption: str) -> str:
    caption = unicodedata.normalize("NFC", check_storable("caption", caption, multiline=True))
    caption = caption.strip()
    if len(caption) > MAX_CAPTION_LENGTH:
        raise InvalidValue(
            f"caption longer than {MAX_CAPTION_LENGTH} characters", code="caption_too_long"
        )
    return caption


def check_handle(handle: str) -> str:
    handle = handle.strip().lstrip("@").lower()
    if not _HANDLE.match(handle):
        raise InvalidValue(
            "handle must be 2-24 characters of a-z, 0-9, '.' or '_'", code="invalid_handle"
        )
    return handle


def check_text(
    name: str, value: str, *, max_length: int = MAX_TEXT_FIELD, multiline: bool = False
) -> str:
    value = check_storable(name, value, multiline=multiline).strip()
    if not value:
        raise InvalidValue(f"{name} must not be empty", code=f"empty_{name}")
    if len(value) > max_length:
        raise InvalidValue(f"{name} longer than {max_length} characters", code=f"{name}_too_long")
    return value


def check_event_time(occurred_at: datetime) -> datetime:
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise InvalidValue("event time must carry a timezone", code="naive_event_time")
    if occurred_at < MIN_EVENT_TIME:
        raise InvalidValue(
            f"event time is before {MIN_EVENT_TIME:%Y-%m-%d} (UTC), the earliest accepted",
            code="event_time_too_early",
        )
    return occurred_at
