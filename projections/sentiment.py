"""SentimentProjection: audience sentiment from comments, as they arrive, in event time.

Each comment is scored once by a `CommentScorer` (an adapter provides it: VADER, a
lexicon model that ships in its package; the projection stays pure). A scorer may
decline a comment (a language it does not support): the comment is counted, not scored.
Labels follow VADER's standard thresholds: compound >= 0.05 positive, <= -0.05 negative.

Aggregates: every comment counts for its video, the video's creator, each of its
hashtags and its sound, in tumbling event-time buckets (15 minutes): comments, scored,
positive / negative / neutral and the compound sum. The view keeps the buckets of the
last `retention_hours`, so readers sum any window up to that (1 h, 24 h) ending at the
newest comment. A deleted comment leaves them: its row goes, and while its bucket is kept
it is taken out of the tallies it was counted in (the projection remembers, per comment
of the kept buckets, the keys, bucket and score it counted). It stays in the turn rule's
recent comments: the audience did say it, and the alert may already have been raised.

"Turning negative": a video whose recent comments (the last `recent_hours`) average
`drop` below its own earlier baseline, with at least `min_recent` of them and a recent
mean at or below `max_recent_mean`. The baseline is the mean of the video's comments
before the recent window, shrunk toward a neutral audience (`prior`) by `prior_weight`
pseudo-comments: a video with few earlier comments is compared with neutral. A
turn raises one alert (action auto_flag, id from the video and the turn's number); the
video is re-armed only once its recent comments, all written at least `recent_hours`
after the turn, average within drop/2 of its baseline again.

Comments count as polarity (+1 positive, 0 neutral, -1 negative) in the turn rule: the
share of negative comments moves it, where VADER's compound is diluted by neutral words.

State (video metadata, each video's recent comments and baseline) is pickled with the
projection's position; time only comes from events, so replays give the same calls.
"""

import pickle
from abc import abstractmethod
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from eventsourcing.utils import get_topic

from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import Alert, AlertSink
from projections.base import Projection

POSITIVE, NEGATIVE, NEUTRAL = "positive", "negative", "neutral"
KIND_VIDEO, KIND_CREATOR, KIND_HASHTAG, KIND_SOUND = "video", "creator", "hashtag", "sound"
KINDS = (KIND_VIDEO, KIND_CREATOR, KIND_HASHTAG, KIND_SOUND)
TURNING_NEGATIVE, STEADY = "turning_negative", "steady"
RULE = "sentiment_turning_negative"
POSITIVE_AT, NEGATIVE_AT = 0.05, -0.05  # VADER's standard thresholds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Key = tuple[str, str]  # (kind, key)


def label_of(compound: float) -> str:
    if compound >= POSITIVE_AT:
        return POSITIVE
    return NEGATIVE if compound <= NEGATIVE_AT else NEUTRAL


POLARITY = {POSITIVE: 1.0, NEUTRAL: 0.0, NEGATIVE: -1.0}  # a label as a number


@dataclass(frozen=True)
class CommentScore:
    language: str  # ISO 639-1, as the scorer detected it
    compound: float | None  # -1..1; None: not scored (a language the scorer lacks)

    @property
    def label(self) -> str | None:
        return None if self.compound is None else label_of(self.compound)


class CommentScorer(Protocol):
    def prepare(self) -> None:
        """Start getting ready to score (loading a model, in the background): called when
        the projection starts, not when it is built, so a process that never runs the
        projection never pays for it."""
        ...

    def score(self, text: str) -> CommentScore:
        """Score one comment (cheap: it runs on every comment as it arrives)."""
        ...


@dataclass(frozen=True)
class SentimentParams:
    bucket_minutes: int = 15
    retention_hours: int = 72  # buckets older than this (before the newest) are dropped
    recent_hours: float = 3.0
    min_recent: int = 10
    drop: float = 0.4  # polarity units (+1 positive, 0 neutral, -1 negative) below the baseline
    max_recent_mean: float = -0.1  # more negative than positive comments, by 10 points
    prior: float = 0.0  # a video's baseline before its comments say otherwise: neutral
    prior_weight: float = 4.0  # that many pseudo-comments at `prior` in the baseline

    def __post_init__(self) -> None:
        if self.bucket_minutes < 1 or self.retention_hours < 1 or self.min_recent < 1:
            raise ValueError("bucket_minutes, retention_hours and min_recent must be at least 1")
        if self.recent_hours <= 0 or self.drop <= 0 or self.prior_weight < 0:
            raise ValueError("recent_hours and drop must be positive, prior_weight not negative")
        if not (-1 <= self.prior <= 1 and -1 <= self.max_recent_mean <= 1):
            raise ValueError("prior and max_recent_mean are polarities between -1 and 1")


class SentimentView(AlertSink):
    @abstractmethod
    def comment(
        self, comment_id: str, video_id: str, language: str, label: str | None,
        compound: float | None, at: datetime,
    ) -> None:  # fmt: skip
        """One comment's score (label and compound None: counted, not scored)."""

    @abstractmethod
    def count(
        self, keys: tuple[Key, ...], bucket: datetime, label: str | None,
        compound: float | None, at: datetime,
    ) -> None:  # fmt: skip
        """The same comment, for each (kind, key), in the bucket starting at `bucket`."""

    @abstractmethod
    def video_status(
        self, video_id: str, status: str, recent_comments: int, recent_mean: float,
        baseline: float, turns: int, turned_at: datetime | None, at: datetime,
    ) -> None:  # fmt: skip
        """A video's turning-negative state after a scored comment at `at`."""

    @abstractmethod
    def deleted(
        self, comment_id: str, keys: tuple[Key, ...], bucket: datetime | None,
        label: str | None, compound: float | None, at: datetime,
    ) -> None:  # fmt: skip
        """A comment was deleted: its row goes, and when its bucket is still kept (not
        None) it leaves that bucket's tallies for each of `keys`, as `count` added it."""

    @abstractmethod
    def expire(self, before: datetime) -> None:
        """Buckets starting before `before` are outside every window: drop them."""


@dataclass(slots=True)
class _VideoMood:
    recent: deque[tuple[float, float]] = field(default_factory=deque)  # (timestamp, polarity)
    recent_sum: float = 0.0
    base_n: int = 0
    base_sum: float = 0.0
    status: str = STEADY
    turns: int = 0
    turned_at: datetime | None = None


@dataclass
class SentimentState:
    params: SentimentParams
    # video (UUID.int) -> the keys its comments count for: video, creator, hashtags, sound
    videos: dict[int, tuple[Key, ...]] = field(default_factory=dict)
    moods: dict[int, _VideoMood] = field(default_factory=dict)
    # comment (UUID.int) -> (keys, bucket number, compound) it was counted with, for the
    # kept buckets only, in arrival order (pruned from the front as buckets expire)
    counted: dict[int, tuple[tuple[Key, ...], int, float | None]] = field(default_factory=dict)
    comments: int = 0
    scored: int = 0
    expired_before: int | None = None  # bucket number

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A checkpoint from before deletions were handled has no `counted`: comments it
        # counted are then deleted from their rows only.
        state.setdefault("counted", {})
        self.__dict__.update(state)


class SentimentProjection(Projection[SentimentView]):
    name = "sentiment"
    topics = tuple(
        get_topic(c)
        for c in (
            Video.Published,
            Video.CaptionEdited,
            Engagement.Commented,
            Engagement.CommentDeleted,
        )
    )

    def __init__(self, scorer: CommentScorer, params: SentimentParams | None = None) -> None:
        self.scorer = scorer
        self.params = params or SentimentParams()
        self.state = SentimentState(self.params)

    # -- checkpointing (with the position, in the projection's transaction) ---------------
    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        """The runner's first call when it starts the projection (with its checkpoint, or
        None): the scorer starts getting ready here."""
        self.scorer.prepare()
        self.state = pickle.loads(data) if data else SentimentState(self.params)
        self.params = self.state.params

    # -- events ---------------------------------------------------------------------------
    def process(self, event: Any, position: int, view: SentimentView) -> None:
        match event:
            case Engagement.Commented():
                self._comment(event, position, view)
            case Engagement.CommentDeleted():
                self._deleted(event, view)
            case Video.Published():
                creator = (KIND_CREATOR, str(event.creator_id))
                self.state.videos[event.originator_id.int] = self._keys(
                    str(event.originator_id), creator, event.hashtags, event.sound_id
                )
            case Video.CaptionEdited():
                old = self.state.videos.get(event.originator_id.int)
                if old is not None:
                    sound = next((k for kind, k in old if kind == KIND_SOUND), None)
                    self.state.videos[event.originator_id.int] = self._keys(
                        str(event.originator_id), old[1], event.hashtags, sound
                    )
            # anything else (a Tick of the evaluation harness...) only passes time

    @staticmethod
    def _keys(video: str, creator: Key, hashtags: list[str], sound: str | None) -> tuple[Key, ...]:
        keys = [(KIND_VIDEO, video), creator, *((KIND_HASHTAG, t) for t in dict.fromkeys(hashtags))]
        return tuple(keys if sound is None else [*keys, (KIND_SOUND, sound)])

    def _comment(self, event: Any, position: int, view: SentimentView) -> None:
        s, p = self.state, self.params
        video = event.video_id.int
        keys = s.videos.get(video) or ((KIND_VIDEO, str(event.video_id)),)
        result = self.scorer.score(event.text)
        at = event.occurred_at
        bucket = int(at.timestamp() // (p.bucket_minutes * 60))
        s.comments += 1
        s.counted[event.comment_id.int] = (keys, bucket, result.compound)
        view.comment(
            str(event.comment_id), str(event.video_id), result.language, result.label,
            result.compound, at,
        )  # fmt: skip
        view.count(keys, self._bucket_start(bucket), result.label, result.compound, at)
        self._expire(bucket, view)
        if result.compound is None:
            return
        s.scored += 1
        polarity = POLARITY[label_of(result.compound)]
        self._watch(video, str(event.video_id), polarity, at, position, view)

    def _deleted(self, event: Any, view: SentimentView) -> None:
        s = self.state
        found = s.counted.pop(event.comment_id.int, None)
        if found is not None and s.expired_before is not None and found[1] < s.expired_before:
            found = None  # a late comment, counted into a bucket already expired
        if found is None:  # its bucket expired (or a redelivered deletion): the row only
            view.deleted(str(event.comment_id), (), None, None, None, event.occurred_at)
            return
        keys, bucket, compound = found
        label = None if compound is None else label_of(compound)
        start = self._bucket_start(bucket)
        view.deleted(str(event.comment_id), keys, start, label, compound, event.occurred_at)

    def _bucket_start(self, bucket: int) -> datetime:
        return EPOCH + timedelta(minutes=bucket * self.params.bucket_minutes)

    def _expire(self, bucket: int, view: SentimentView) -> None:
        keep = self.params.retention_hours * 60 // self.params.bucket_minutes
        limit = bucket - keep
        s = self.state
        if s.expired_before is None or limit > s.expired_before:
            s.expired_before = limit
            view.expire(self._bucket_start(limit))
            counted = s.counted
            while counted:  # arrival order: stop at the first comment still kept
                first = next(iter(counted))
                if counted[first][1] >= limit:
                    break
                del counted[first]

    def _watch(
        self, video: int, video_id: str, polarity: float, at: datetime, position: int,
        view: SentimentView,
    ) -> None:  # fmt: skip
        s, p = self.state, self.params
        mood = s.moods.get(video)
        if mood is None:
            mood = s.moods[video] = _VideoMood()
        now = at.timestamp()
        mood.recent.append((now, polarity))
        mood.recent_sum += polarity
        horizon = now - p.recent_hours * 3600
        while mood.recent and mood.recent[0][0] < horizon:
            _, old = mood.recent.popleft()
            mood.recent_sum -= old
            mood.base_n += 1
            mood.base_sum += old
        n = len(mood.recent)
        recent_mean = mood.recent_sum / n
        baseline = (mood.base_sum + p.prior_weight * p.prior) / (mood.base_n + p.prior_weight)
        if mood.status == STEADY:
            if (
                n >= p.min_recent
                and recent_mean <= p.max_recent_mean
                and baseline - recent_mean >= p.drop
            ):
                mood.status, mood.turns, mood.turned_at = TURNING_NEGATIVE, mood.turns + 1, at
                view.raise_alert(self._alert(video_id, mood, n, recent_mean, baseline, position))
        elif (
            mood.turned_at is not None
            and now - mood.turned_at.timestamp() >= p.recent_hours * 3600
            and n >= p.min_recent
            and recent_mean > baseline - p.drop / 2
        ):  # recovered, on comments all written after the turn
            mood.status = STEADY
        view.video_status(
            video_id, mood.status, n, recent_mean, baseline, mood.turns, mood.turned_at, at
        )

    def _alert(
        self, video_id: str, mood: _VideoMood, n: int, recent_mean: float, baseline: float,
        position: int,
    ) -> Alert:  # fmt: skip
        assert mood.turned_at is not None
        drop = baseline - recent_mean
        negative = sum(1 for _, polarity in mood.recent if polarity < 0)
        return Alert(
            rule=RULE, source=self.name, subject_type=KIND_VIDEO, subject_id=video_id,
            window=str(mood.turns), severity="warning", score=drop,
            summary=(
                f"audience turning negative: the last {n} comments average {recent_mean:+.2f}"
                f" against a baseline of {baseline:+.2f}"
            ),
            raised_at=mood.turned_at, position=position, action="auto_flag",
            details={
                "recent_comments": n, "recent_mean": recent_mean, "baseline": baseline,
                "drop": drop, "negative_share": negative / n, "turn": mood.turns,
                "flag_score": min(1.0, drop / 2.0), "flag_reasons": [RULE],
            },
        )  # fmt: skip
