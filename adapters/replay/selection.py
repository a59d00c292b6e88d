"""Which part of the history a replay or an export takes, and reading it from the store.

A selection combines (all optional, all ANDed):
- a position range `[from_position, to_position]` (global notification ids, inclusive),
- an event-time range `[since, until)` on each event's `occurred_at`,
- event types (`Engagement.Viewed`, `ModerationCase.Reported`, ...), filtered in the
  event store query,
- a sample of videos: a share of video ids chosen by hashing the id with a seed, so the
  same seed and share always pick the same videos. An event belongs to a video when it
  names one (`video_id`), is a Video event, or is an event of a moderation case whose
  `Opened` event was seen; other events (creators, follows) are always kept.

Context events: the events that create a stream and carry its identities
(`CONTEXT_TYPES`: a creator's registration, a video's publication with its creator and
hashtags, the first event of a viewer-video or follow pair, a case's opening) are also
replayed from before the window and whatever `types` says (the video sample still
applies), because projections must know a video before they can count anything about it.
They are marked as context, not counted as the window's events.

Filters work on the stored state (JSON) before an event is decoded, so an export can
apply them without the domain classes, and an export and the store give the same events.
"""

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from commands.base import SharedStore
from domain.creator import Creator
from domain.engagement import Engagement
from domain.erasure import Erasure
from domain.following import Following
from domain.moderation import ModerationCase
from domain.video import Video

AGGREGATES = (Creator, Video, Engagement, Following, ModerationCase, Erasure)
CONTEXT_TYPES = (
    Creator.Registered, Video.Published, Engagement.Started, Following.Started,
    ModerationCase.Opened,
)  # fmt: skip
CONTEXT_TOPICS = tuple(sorted(get_topic(cls) for cls in CONTEXT_TYPES))


class SelectionError(ValueError):
    """A selection that cannot be used (unknown event type, empty range, bad share)."""


def event_types() -> dict[str, str]:
    """'Engagement.Viewed' -> its stored topic, for every event class of every aggregate."""
    out: dict[str, str] = {}
    for aggregate in AGGREGATES:
        for name, cls in vars(aggregate).items():
            if isinstance(cls, type) and issubclass(cls, DomainEvent) and not name.startswith("_"):
                out[f"{aggregate.__name__}.{name}"] = get_topic(cls)
    return out


@dataclass(frozen=True)
class Selection:
    from_position: int | None = None
    to_position: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    sample: float | None = None  # share of videos kept, (0, 1]
    sample_seed: int = 0

    def __post_init__(self) -> None:
        if self.from_position is not None and self.from_position < 1:
            raise SelectionError("--from-position must be at least 1")
        if (
            self.from_position is not None
            and self.to_position is not None
            and self.to_position < self.from_position
        ):
            raise SelectionError("--to-position is before --from-position")
        for name, when in (("--since", self.since), ("--until", self.until)):
            if when is not None and when.utcoffset() is None:
                raise SelectionError(f"{name} needs a timezone, e.g. 2026-03-02T12:00:00+00:00")
        if self.since and self.until and self.until <= self.since:
            raise SelectionError("--until must be after --since")
        known = event_types()
        unknown = [t for t in self.types if t not in known]
        if unknown:
            raise SelectionError(
                f"unknown event type {unknown[0]!r} (e.g. {', '.join(list(known)[:4])}, ...)"
            )
        if self.sample is not None and not 0 < self.sample <= 1:
            raise SelectionError("--sample-videos must be a share in (0, 1]")

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics to read (window and context), or () for every topic."""
        known = event_types()
        if not self.types:
            return ()
        return tuple(sorted({known[t] for t in self.types} | set(CONTEXT_TOPICS)))

    @property
    def type_topics(self) -> frozenset[str]:
        known = event_types()
        return frozenset(known[t] for t in self.types)

    def describe(self) -> dict[str, Any]:
        """Canonical form for reports and export headers."""
        return {
            "from_position": self.from_position,
            "to_position": self.to_position,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "types": sorted(self.types),
            "sample_videos": self.sample,
            "sample_seed": self.sample_seed if self.sample is not None else None,
        }

    def span(self, head: int) -> tuple[int, int]:
        """The positions to scan in a store whose head is `head`."""
        return self.from_position or 1, min(self.to_position or head, head)


def parse_time(text: str, option: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SelectionError(f"{option}: {text!r} is not an ISO 8601 time") from None
    if when.utcoffset() is None:
        raise SelectionError(f"{option} needs a timezone, e.g. {text}+00:00")
    return when


def _uuid(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("_type_") == "uuid_hex":
        return str(value["_data_"])
    return None


_VIDEO_MODULE = Video.__module__ + ":"
_CASE_MODULE = ModerationCase.__module__ + ":"


class Filter:
    """Applies a selection's event-time and video-sample filters to stored records, in log
    order (it remembers which video each moderation case is about)."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self._case_video: dict[str, str] = {}
        self._picked: dict[str, bool] = {}

    def classify(self, n: Notification, state: dict[str, Any]) -> str | None:
        """ "event" (in the window), "context" (a creation event it needs) or None."""
        s = self.selection
        context = n.topic in CONTEXT_TOPICS
        inside = not (s.from_position is not None and n.id < s.from_position)
        if s.types and n.topic not in s.type_topics:
            inside = False
        if inside and (s.since is not None or s.until is not None):
            at = state.get("occurred_at")
            if isinstance(at, dict) and at.get("_type_") == "datetime_iso":
                when = datetime.fromisoformat(at["_data_"])
                if s.until is not None and when >= s.until:
                    return None  # after the window: nothing in it can need this
                inside = s.since is None or when >= s.since
        if not inside and not context:
            return None
        if s.sample is not None:
            video = self._video_of(n, state)
            if video is not None and not self._sampled(video):
                return None
        return "event" if inside else "context"

    def _video_of(self, n: Notification, state: dict[str, Any]) -> str | None:
        video = _uuid(state.get("video_id"))
        if n.topic.startswith(_CASE_MODULE):
            case = UUID(str(n.originator_id)).hex
            if video is not None:
                self._case_video[case] = video  # the case's Opened event
                return video
            return self._case_video.get(case)
        if video is None and n.topic.startswith(_VIDEO_MODULE):
            return UUID(str(n.originator_id)).hex
        return video

    def _sampled(self, video_hex: str) -> bool:
        picked = self._picked.get(video_hex)
        if picked is None:
            digest = hashlib.sha256(f"{self.selection.sample_seed}:{video_hex}".encode()).digest()
            picked = int.from_bytes(digest[:8], "big") / 2**64 < (self.selection.sample or 1.0)
            self._picked[video_hex] = picked
        return picked


Record = tuple[Notification, dict[str, Any], bool]  # stored event, parsed state, context?
Batch = tuple[int, list[Record]]  # the last position scanned, the selected records


def store_batches(
    store: SharedStore, selection: Selection, *, batch_size: int = 2000
) -> tuple[tuple[int, int], Iterator[Batch]]:
    """The span of positions to scan and the selected records in batches, read-only.

    The head is read once at the start: events recorded during a replay are not part of
    it. Context events before the window are read first (only their topics are queried).
    """
    head = store.recorder.max_notification_id() or 0
    start, stop = selection.span(head)

    def batches() -> Iterator[Batch]:
        flt = Filter(selection)
        yield from _scan(store, flt, 1, min(start - 1, stop), CONTEXT_TOPICS, batch_size)
        yield from _scan(store, flt, start, stop, selection.topics, batch_size)

    return (start, stop), batches()


def _scan(
    store: SharedStore,
    flt: Filter,
    position: int,
    stop: int,
    topics: Sequence[str],
    batch_size: int,
) -> Iterator[Batch]:
    while position <= stop:
        page: Sequence[Notification] = store.recorder.select_notifications(
            start=position, limit=batch_size, stop=stop, topics=topics
        )
        if not page:
            return
        records = []
        for n in page:
            state = orjson.loads(n.state)
            kind = flt.classify(n, state)
            if kind is not None:
                records.append((n, state, kind == "context"))
        yield page[-1].id, records
        position = page[-1].id + 1
