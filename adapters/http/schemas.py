"""Request and response bodies of the command API (pydantic, unknown fields rejected)."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.fields import FieldInfo

from commands.engagement import Signal
from domain.engagement import DEVICES, SHARE_CHANNELS, TRAFFIC_SOURCES
from domain.moderation import PRIORITIES, REPORT_REASONS
from domain.values import MAX_CAPTION_LENGTH, MAX_COMMENT_LENGTH, MAX_HASHTAGS

TrafficSource = Literal[tuple(sorted(TRAFFIC_SOURCES))]  # type: ignore[valid-type]
Device = Literal[tuple(sorted(DEVICES))]  # type: ignore[valid-type]
Channel = Literal[tuple(sorted(SHARE_CHANNELS))]  # type: ignore[valid-type]
ReportReason = Literal[tuple(sorted(REPORT_REASONS))]  # type: ignore[valid-type]
Priority = Literal[PRIORITIES]  # type: ignore[valid-type]

# -- text: what the domain stores (domain/values.py check_storable, check_text) ----------
# The domain refuses characters no read model can hold, with 422 `invalid_text` naming the
# field: NUL and the other C0 controls but tab, LF and CR, DEL, U+FFFE, U+FFFF and lone
# surrogates; one-line fields (names, ids, codes) refuse tab, LF and CR too. A required
# text is also refused when blank (only whitespace, as str.strip() sees it): 422
# `empty_<field>`. The patterns describe these rules in the OpenAPI document only
# (json_schema_extra): the domain stays the one check, with its message and code. A lone
# surrogate cannot be written in a pattern (the document is UTF-8 JSON): the description
# names it.
REFUSED = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff"
REFUSED_ONE_LINE = r"\x00-\x1f\x7f\ufffe\uffff"
# str.isspace() of the characters left (what strip() removes): \s differs between Python
# and ECMA-262 regular expressions, an explicit class does not.
BLANK = r"\t\n\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def text_pattern(*, multiline: bool, blank: bool) -> str:
    """The JSON Schema pattern of a text field (tests/unit/test_http_bodies.py holds it to
    the domain's rules, character by character)."""
    refused = REFUSED if multiline else REFUSED_ONE_LINE
    if blank:
        return f"^[^{refused}]*$"
    return f"^[^{refused}]*[^{refused}{BLANK}][^{refused}]*$"


def text(
    *, max_length: int, min_length: int = 0, multiline: bool = False, blank: bool = False
) -> FieldInfo:
    """A text field: lengths checked here, characters and blankness by the domain."""
    rules = "may span lines (tab, LF, CR allowed)" if multiline else "one line (no tab, LF or CR)"
    refused = (
        "other control characters, DEL, U+FFFE/U+FFFF and lone surrogates are refused "
        "(422 invalid_text)"
    )
    description = f"Text, {rules}; {refused}" + ("" if blank else "; not blank (422 empty_<field>)")
    return Field(
        min_length=min_length,
        max_length=max_length,
        description=description,
        json_schema_extra={"pattern": text_pattern(multiline=multiline, blank=blank)},
    )


ShortText = Annotated[str, text(min_length=1, max_length=500, multiline=True)]
DisplayName = Annotated[str, text(min_length=1, max_length=80)]
Code = Annotated[str, text(min_length=1, max_length=64)]  # model, policy, flag reasons
Note = Annotated[str, text(max_length=2000, multiline=True, blank=True)]
# Documented, checked by the domain (domain/creator.py, domain/values.py): the patterns
# tell OpenAPI clients (and schemathesis) what the domain accepts, without a second check.
Region = Annotated[
    str,
    Field(min_length=2, max_length=2, description="ISO 3166 alpha-2",
          json_schema_extra={"pattern": "^[A-Za-z]{2}$"}),
]  # fmt: skip
Handle = Annotated[
    str,
    Field(min_length=2, max_length=25, description="2-24 of a-z, 0-9, '.', '_' (an @ first)",
          json_schema_extra={"pattern": "^@?[A-Za-z0-9._]{2,24}$"}),
]  # fmt: skip


def _time_text(value: object) -> object:
    """Event times are ISO 8601 text, as the schema says: pydantic's lax mode would take a
    number as unix seconds (found by the long fuzz run: an integer accepted)."""
    if value is not None and not isinstance(value, str | datetime):
        raise ValueError("expected an ISO 8601 date-time with a timezone")
    return value


# domain/values.py MIN_EVENT_TIME: an event time before 2000-01-01T00:00:00Z is 422
# event_time_too_early. As a pattern (document only, like the text rules): a year after
# 2000, a day after 1 January 2000, or that day in UTC or west of it. The edge a pattern
# cannot compute (it would compare the time with the offset) is left out: 1 January 2000
# east of UTC, 31 December 1999 late west of it, partly accepted by the domain. "Not in
# the future" (422 event_time_in_future) depends on the clock, which no schema can state.
EVENT_TIME_PATTERN = (
    r"^(?:(?:200[1-9]|20[1-9][0-9]|2[1-9][0-9]{2}|[3-9][0-9]{3})-"
    r"|2000-(?:01-(?:0[2-9]|[12][0-9]|3[01])|(?:0[2-9]|1[0-2])-[0-9]{2})"
    r"|2000-01-01[Tt ][^+]*(?:[Zz]|[+-]00:00|-[0-9]{2}:[0-9]{2})$)"
)
EventTime = Annotated[
    AwareDatetime,
    BeforeValidator(_time_text),
    Field(
        description="ISO 8601 with a timezone, from 2000-01-01T00:00:00Z (earlier: 422 "
        "event_time_too_early) to now (later: 422 event_time_in_future)",
        json_schema_extra={"pattern": EVENT_TIME_PATTERN},
    ),
]
ClientEventId = Annotated[str, text(min_length=1, max_length=64, blank=True)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    occurred_at: EventTime | None = Field(
        None, description="When it happened (ISO 8601 with timezone); defaults to now"
    )


class VersionedBody(Body):
    expected_version: int | None = Field(
        None, ge=1, description="Optimistic concurrency: 409 if the aggregate is at another version"
    )


# -- content -----------------------------------------------------------------------------
class RegisterCreator(Body):
    creator_id: UUID | None = Field(
        None, description="The creator's account id; generated if absent"
    )
    handle: Handle
    display_name: DisplayName
    region: Region


class UpdateProfile(VersionedBody):
    display_name: DisplayName
    region: Region


class SuspensionChange(VersionedBody):
    reason: ShortText


class PublishVideo(Body):
    video_id: UUID | None = None
    creator_id: UUID
    caption: Annotated[str, text(max_length=MAX_CAPTION_LENGTH, multiline=True, blank=True)] = ""
    hashtags: Annotated[
        list[Annotated[str, Field(max_length=101)]], Field(max_length=MAX_HASHTAGS * 2)
    ] = []
    sound_id: Annotated[str, text(min_length=1, max_length=64, blank=True)] | None = None
    duration_seconds: Annotated[float, Field(gt=0, le=600)]


class EditCaption(VersionedBody):
    caption: Annotated[str, text(max_length=MAX_CAPTION_LENGTH, multiline=True, blank=True)]
    hashtags: Annotated[
        list[Annotated[str, Field(max_length=101)]], Field(max_length=MAX_HASHTAGS * 2)
    ] = []
    actor_id: UUID | None = Field(None, description="Acting creator; must own the video if given")


class DeleteVideo(VersionedBody):
    actor_id: UUID | None = None


# -- engagement --------------------------------------------------------------------------
class ViewerBody(VersionedBody):
    viewer_id: UUID
    client_event_id: ClientEventId | None = Field(
        None, description="Client's event id; a redelivered id is recorded once"
    )


class RecordView(ViewerBody):
    watch_seconds: Annotated[float, Field(ge=0)]
    completed: bool = False
    traffic_source: TrafficSource = "for_you"
    device: Device = "other"


class RecordShare(ViewerBody):
    channel: Channel = "other"


class RecordComment(ViewerBody):
    text: Annotated[str, text(min_length=1, max_length=MAX_COMMENT_LENGTH, multiline=True)]
    comment_id: UUID | None = None


class FollowBody(VersionedBody):
    viewer_id: UUID
    client_event_id: ClientEventId | None = None


# Batch items: one discriminated union, validated item by item.
class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    viewer_id: UUID
    occurred_at: EventTime | None = None
    client_event_id: ClientEventId | None = None


class ViewItem(_Item):
    type: Literal["view"]
    video_id: UUID
    watch_seconds: Annotated[float, Field(ge=0)]
    completed: bool = False
    traffic_source: TrafficSource = "for_you"
    device: Device = "other"


class LikeItem(_Item):
    type: Literal["like", "unlike"]
    video_id: UUID


class ShareItem(_Item):
    type: Literal["share"]
    video_id: UUID
    channel: Channel = "other"


class CommentItem(_Item):
    type: Literal["comment"]
    video_id: UUID
    text: Annotated[str, text(min_length=1, max_length=MAX_COMMENT_LENGTH, multiline=True)]
    comment_id: UUID | None = None


class DeleteCommentItem(_Item):
    type: Literal["delete_comment"]
    video_id: UUID
    comment_id: UUID


class FollowItem(_Item):
    type: Literal["follow", "unfollow"]
    creator_id: UUID


BatchItem = Annotated[
    ViewItem | LikeItem | ShareItem | CommentItem | DeleteCommentItem | FollowItem,
    Field(discriminator="type"),
]


# Bodies the engagement routes decode with msgspec (bodies.py), documented by these.
BODY_MODELS = {
    "RecordView": RecordView,
    "ViewerBody": ViewerBody,
    "RecordShare": RecordShare,
    "RecordComment": RecordComment,
    "FollowBody": FollowBody,
    "BatchItem": BatchItem,
}


def item_to_signal(item: _Item) -> Signal:
    """A validated batch item (HTTP batch or Kafka ingest message) -> the command's Signal."""
    return Signal(kind=item.type, **item.model_dump(exclude={"type"}))  # type: ignore[attr-defined]


# -- moderation --------------------------------------------------------------------------
class ReportVideo(Body):
    reporter_id: UUID
    reason: ReportReason


class AutoFlag(Body):
    model: Code
    score: Annotated[float, Field(ge=0, le=1)]
    reasons: Annotated[list[Code], Field(max_length=20)] = []


class Escalate(VersionedBody):
    priority: Priority


class Decide(VersionedBody):
    moderator_id: UUID
    outcome: Literal["keep", "restrict", "remove"]
    policy: Code
    note: Note = ""


class Appeal(VersionedBody):
    appellant_id: UUID
    statement: Annotated[str, text(min_length=1, max_length=2000, multiline=True)]


class ResolveAppeal(VersionedBody):
    moderator_id: UUID
    resolution: Literal["upheld", "overturned"]
    note: Note = ""


# -- responses ---------------------------------------------------------------------------
class CommandResponse(BaseModel):
    id: UUID
    version: int = Field(description="The aggregate's version after the command")
    position: int = Field(
        description="Global position of the last recorded event: the consistency token"
    )
    replayed: bool = Field(description="True when an Idempotency-Key matched an earlier request")
    details: dict[str, str] = {}


class ItemResponse(BaseModel):
    index: int
    status: Literal["recorded", "duplicate", "rejected"]
    id: UUID | None = None
    version: int | None = None
    error: str | None = None
    message: str | None = None
    details: dict[str, str] = {}


class BatchResponse(BaseModel):
    position: int
    replayed: bool
    recorded: int
    duplicates: int
    rejected: int
    items: list[ItemResponse]


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str
    fields: list[dict[str, str]] | None = None
    details: dict[str, object] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
