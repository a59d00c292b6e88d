"""TrendingProjection: per-minute engagement buckets per video, hashtag and sound.

Buckets are tumbling one-minute windows in EVENT time (minute = floor(epoch seconds / 60)).
Sliding windows (1 h, 24 h) are summed from buckets at query time (queries/trending.py),
so the projection only ever adds to one bucket per key and event.

The watermark is the largest minute of any engagement event seen so far. An event is
counted in its own minute as long as that minute is at least `watermark - GRACE_MINUTES`
(late, but within grace); older events are dropped and only counted in "late_dropped", so
a bucket that a query has already summed changes at most GRACE_MINUTES behind the head.
Buckets older than `watermark - RETENTION_MINUTES` are discarded: nothing can be added
to them any more and no query window reaches them.

The video -> hashtags / sound lookup is the projection's own copy (fed by Video.Published
and Video.CaptionEdited), so this read model can be rebuilt alone. A caption edit moves
the counts of events processed AFTER it (in log order) to the new hashtags; buckets
already counted stay with the old ones.
"""

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.engagement import Engagement
from domain.video import Video
from projections.base import Projection

# Late events up to this many minutes behind the watermark still count in their minute.
GRACE_MINUTES = 10
# Two 24 h windows (current and previous, for acceleration) plus the grace period.
RETENTION_MINUTES = 2 * 24 * 60 + GRACE_MINUTES

KIND_VIDEO, KIND_HASHTAG, KIND_SOUND = "video", "hashtag", "sound"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def minute_of(at: datetime) -> int:
    """Minutes since the Unix epoch, floored (exact integer arithmetic, no float): a
    timedelta keeps 0 <= seconds < 86400, so whole days and the day's minutes add up."""
    since = at - EPOCH
    return since.days * 1440 + since.seconds // 60


class Counts(NamedTuple):
    """Deltas for one bucket; likes and comments are net (unlike / delete subtract)."""

    views: int = 0
    likes: int = 0
    shares: int = 0
    comments: int = 0


class VideoKeys(NamedTuple):
    hashtags: list[str]
    sound_id: str | None


class TrendingView(ABC):
    """Transaction-scoped storage for the trending read model."""

    @abstractmethod
    def video_published(
        self, video_id: UUID, hashtags: list[str], sound_id: str | None, at: datetime
    ) -> None: ...

    @abstractmethod
    def video_hashtags(self, video_id: UUID, hashtags: list[str]) -> None: ...

    @abstractmethod
    def video_keys(self, video_id: UUID) -> VideoKeys | None:
        """The video's current hashtags and sound (None for a video never published)."""

    @abstractmethod
    def watermark_minute(self) -> int | None:
        """The largest event minute counted so far (None before the first): in global
        order, the largest minute of the WATERMARK_TOPICS events before this one."""

    @abstractmethod
    def set_watermark(self, minute: int) -> None: ...

    @abstractmethod
    def add(self, keys: list[tuple[str, str]], minute: int, counts: Counts) -> None:
        """Add `counts` to the bucket (kind, key, minute) of every (kind, key) of `keys`,
        creating those missing."""

    @abstractmethod
    def late_dropped(self) -> None:
        """Count one event dropped for arriving later than the grace period."""

    @abstractmethod
    def discard_before(self, minute: int) -> None:
        """Buckets of earlier minutes are no longer needed (may be deleted at flush)."""


ENGAGEMENT_COUNTS = {
    Engagement.Viewed: Counts(views=1),
    Engagement.Liked: Counts(likes=1),
    Engagement.Unliked: Counts(likes=-1),
    Engagement.Shared: Counts(shares=1),
    Engagement.Commented: Counts(comments=1),
    Engagement.CommentDeleted: Counts(comments=-1),
}


MAX_CACHED_VIDEOS = 100_000
# The event topics that move the watermark (all of ENGAGEMENT_COUNTS). The Kafka relay
# follows the same running maximum in global order and stamps it on the projection feed
# (adapters/kafka/relay.py), so that keyed workers drop the same late events as the
# single-process runner: see TrendingView.watermark_minute.
WATERMARK_TOPICS = frozenset(get_topic(cls) for cls in ENGAGEMENT_COUNTS)


class TrendingProjection(Projection[TrendingView]):
    name = "trending"
    # Per video; the watermark is global, stamped by the relay on the feed (see above).
    partition_by = "video"
    topics = tuple(
        get_topic(cls) for cls in (Video.Published, Video.CaptionEdited, *ENGAGEMENT_COUNTS)
    )

    def __init__(self) -> None:
        self._bucket_keys: dict[UUID, tuple[VideoKeys | None, list[tuple[str, str]]]] = {}

    def process(self, event: Any, position: int, view: TrendingView) -> None:
        counts = ENGAGEMENT_COUNTS.get(type(event))  # most events: one lookup, no match
        if counts is not None:
            self._count(event.video_id, event.occurred_at, counts, view)
            return
        match event:
            case Video.Published():
                view.video_published(
                    event.originator_id, list(event.hashtags), event.sound_id, event.occurred_at
                )
            case Video.CaptionEdited():
                view.video_hashtags(event.originator_id, list(event.hashtags))

    def _count(self, video_id: UUID, at: datetime, counts: Counts, view: TrendingView) -> None:
        minute = minute_of(at)
        watermark = view.watermark_minute()
        if watermark is not None and minute < watermark - GRACE_MINUTES:
            view.late_dropped()
            return
        if watermark is None or minute > watermark:
            view.set_watermark(minute)
            view.discard_before(minute - RETENTION_MINUTES)
        view.add(self._keys(video_id, view), minute, counts)

    def _keys(self, video_id: UUID, view: TrendingView) -> list[tuple[str, str]]:
        found = view.video_keys(video_id)
        # The keys of a video's buckets, built once per (video, hashtags, sound): they are
        # needed for every engagement event (str() of a UUID alone is a microsecond). The
        # view hands out the same VideoKeys until the video changes: identity first.
        cached = self._bucket_keys.get(video_id)
        if cached is not None and (cached[0] is found or cached[0] == found):
            return cached[1]
        keys = [(KIND_VIDEO, str(video_id))]
        if found is not None:
            keys += [(KIND_HASHTAG, tag) for tag in found.hashtags]
            if found.sound_id:
                keys.append((KIND_SOUND, found.sound_id))
        if len(self._bucket_keys) > MAX_CACHED_VIDEOS:
            self._bucket_keys.clear()
        self._bucket_keys[video_id] = (found, keys)
        return keys
