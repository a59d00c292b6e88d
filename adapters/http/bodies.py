"""Engagement request bodies, decoded and validated with msgspec: the hot routes' path.

The pydantic models of schemas.py stay the reference: they document the bodies (OpenAPI)
and validate everywhere else. These Structs accept and reject the same JSON, strictly as
the schema says (a string is not a number, 1 is not true); tests/unit/test_http_bodies.py
feeds both the same bodies and compares the signals and the verdicts. msgspec decodes
and validates a view body in about a microsecond, pydantic through FastAPI in tens.

A batch body is split into its items' raw JSON once, and each item decoded on its own
(`decode_items`), so an invalid item is one rejected result naming its field, never a
failed request.
"""

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

from commands.engagement import Signal
from domain.engagement import DEVICES, SHARE_CHANNELS, TRAFFIC_SOURCES
from domain.values import MAX_COMMENT_LENGTH

TrafficSource = Literal[tuple(sorted(TRAFFIC_SOURCES))]  # type: ignore[valid-type]
Device = Literal[tuple(sorted(DEVICES))]  # type: ignore[valid-type]
Channel = Literal[tuple(sorted(SHARE_CHANNELS))]  # type: ignore[valid-type]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
ClientEventId = Annotated[str, Meta(min_length=1, max_length=64)]
# JSON Schema counts an integral number as an integer whatever its spelling (3 and 3.0 are
# the same value), and pydantic's models take 3.0 as 3: so do these. A number is decoded,
# then _Body.__post_init__ makes it an int >= 1 or refuses it (3.5, 0); a string or a
# boolean is refused by msgspec as before.
Version = int | float
WatchSeconds = Annotated[float, Meta(ge=0)]
CommentText = Annotated[str, Meta(min_length=1, max_length=MAX_COMMENT_LENGTH)]


class _Body(Struct, forbid_unknown_fields=True, kw_only=True):
    """What every single-signal body has (schemas.ViewerBody / FollowBody)."""

    viewer_id: UUID
    occurred_at: AwareDatetime | None = None
    expected_version: Version | None = None
    client_event_id: ClientEventId | None = None

    def __post_init__(self) -> None:
        version = self.expected_version
        if version is None:
            return
        # Errors name the field as msgspec's own do (field_error reads " - at `$.name`").
        if type(version) is float:
            if not version.is_integer():
                raise ValueError("Expected `int`, got `float` - at `$.expected_version`")
            version = self.expected_version = int(version)
        if version < 1:
            raise ValueError("Expected `int` >= 1 - at `$.expected_version`")


class ViewerBody(_Body):  # like, unlike, comment deletion, follow, unfollow
    pass


class RecordView(_Body):
    watch_seconds: WatchSeconds
    completed: bool = False
    traffic_source: TrafficSource = "for_you"
    device: Device = "other"


class RecordShare(_Body):
    channel: Channel = "other"


class RecordComment(_Body):
    text: CommentText
    comment_id: UUID | None = None


# -- batch items: one Struct per `type` (msgspec tags one value per class) -----------------
class _Item(Struct, forbid_unknown_fields=True, kw_only=True, tag_field="type"):
    """A batch item; `signal()` builds its Signal with plain attribute reads (a getattr
    with a default that misses raises and catches AttributeError: 1 us each)."""

    viewer_id: UUID
    occurred_at: AwareDatetime | None = None
    client_event_id: ClientEventId | None = None

    def signal(self) -> Signal:
        raise NotImplementedError


class ViewItem(_Item, tag="view"):
    video_id: UUID
    watch_seconds: WatchSeconds
    completed: bool = False
    traffic_source: TrafficSource = "for_you"
    device: Device = "other"

    def signal(self) -> Signal:
        return Signal(
            "view", self.viewer_id, self.video_id, None, self.occurred_at, self.client_event_id,
            self.watch_seconds, self.completed, self.traffic_source, self.device,
        )  # fmt: skip


class LikeItem(_Item, tag="like"):
    video_id: UUID

    def signal(self) -> Signal:
        return Signal(
            "like", self.viewer_id, self.video_id, None, self.occurred_at, self.client_event_id
        )


class UnlikeItem(_Item, tag="unlike"):
    video_id: UUID

    def signal(self) -> Signal:
        return Signal(
            "unlike", self.viewer_id, self.video_id, None, self.occurred_at, self.client_event_id
        )


class ShareItem(_Item, tag="share"):
    video_id: UUID
    channel: Channel = "other"

    def signal(self) -> Signal:
        return Signal(
            "share", self.viewer_id, self.video_id, None, self.occurred_at, self.client_event_id,
            channel=self.channel,
        )  # fmt: skip


class CommentItem(_Item, tag="comment"):
    video_id: UUID
    text: CommentText
    comment_id: UUID | None = None

    def signal(self) -> Signal:
        return Signal(
            "comment", self.viewer_id, self.video_id, None, self.occurred_at,
            self.client_event_id, comment_id=self.comment_id, text=self.text,
        )  # fmt: skip


class DeleteCommentItem(_Item, tag="delete_comment"):
    video_id: UUID
    comment_id: UUID

    def signal(self) -> Signal:
        return Signal(
            "delete_comment", self.viewer_id, self.video_id, None, self.occurred_at,
            self.client_event_id, comment_id=self.comment_id,
        )  # fmt: skip


class FollowItem(_Item, tag="follow"):
    creator_id: UUID

    def signal(self) -> Signal:
        return Signal(
            "follow", self.viewer_id, None, self.creator_id, self.occurred_at,
            self.client_event_id,
        )  # fmt: skip


class UnfollowItem(_Item, tag="unfollow"):
    creator_id: UUID

    def signal(self) -> Signal:
        return Signal(
            "unfollow", self.viewer_id, None, self.creator_id, self.occurred_at,
            self.client_event_id,
        )  # fmt: skip


BatchItem = (
    ViewItem | LikeItem | UnlikeItem | ShareItem | CommentItem | DeleteCommentItem
    | FollowItem | UnfollowItem
)  # fmt: skip


# -- errors: the field an error names, for 422 bodies and per-item messages ---------------
_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_NAMED = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>[^`]+)`$")


def field_error(error: msgspec.ValidationError) -> tuple[str, str]:
    """(field, message) of msgspec's error: "watch_seconds", "Expected `float` >= 0.0";
    a missing or unknown field is named too ("video_id", "field required")."""
    text = str(error)
    at = _AT.match(text)
    path, message = (at["path"].lstrip("."), at["message"]) if at else ("", text)
    named = _NAMED.match(message)
    if named:
        path = f"{path}.{named['name']}" if path else named["name"]
        message = "field required" if named["what"] == "missing required" else "unknown field"
    return path, message


_decode_item = msgspec.json.Decoder(BatchItem).decode


def decode_items(
    items: Sequence[bytes | msgspec.Raw],
) -> tuple[list[int], list[Signal], dict[int, str]]:
    """A batch's items (each its raw JSON), each decoded on its own: the valid ones'
    request indexes and signals, and for each invalid index a message naming the field
    ("watch_seconds: Expected `float` >= 0.0")."""
    indexes: list[int] = []
    signals: list[Signal] = []
    invalid: dict[int, str] = {}
    for index, item in enumerate(items):
        try:
            signal = _decode_item(item).signal()
        except msgspec.ValidationError as e:
            where, message = field_error(e)
            invalid[index] = f"{where or 'item'}: {message}"
            continue
        indexes.append(index)
        signals.append(signal)
    return indexes, signals, invalid
