"""EmergingTrendsProjection: hashtags and sounds taking off, found before their peak.

Views are counted per hashtag and sound in tumbling event-time buckets (10 minutes by
default). A bucket closes when the watermark (the latest event time seen) has passed its
end plus a grace period; later events for it are dropped and only counted. When a bucket
closes, every key seen in the last `idle_buckets` buckets is looked at once. A trend is a
change in what people watch, so everything is measured as a SHARE of the platform's
views: the platform's daily cycle (every morning ALL keys accelerate) divides out, and a
platform-wide surge moves no key's share.

A key turns "emerging" (one alert) when, over the trailing hour (`window_buckets`):

- it is big enough to matter: at least `min_views` views and `min_share` of the
  platform's views. This is what tells a take-off from the many new keys that grow for a
  few hours and fizzle out at a percent or two: early on the two look the same;
- it is far above its own baseline: `lift_factor` times its usual share (a fading mean
  with about a day of memory). A key with no history has no usual share: its baseline is
  `prior_share` (what one ordinary video gets): the day before it was first seen counts
  as its history at that share, so a brand-new key can be detected within its first
  hours, not only once a baseline of its own exists (before, its first bucket only set
  it, and by the time the baseline meant something, the key's growth was in it);
- it is carried by several videos: at least `min_videos` of the key's videos are watched
  in the window, and WITHOUT its most watched one the key is still `lift_factor` over
  its usual share. One video taking off (organically, or a bot burst of hundreds of
  views in minutes) lifts its hashtags and sound without making them a trend;
- optionally (`detector`, off by default: on seed 42 it only delayed detections), a river
  drift detector (Page-Hinkley, one-sided "up") on the key's clipped Poisson residual
  against its usual share has fired within `confirm_buckets`.

Nothing is detected in the projection's first `warmup_buckets` (every key is new to a new
projection; keys first seen then get no prior), and a key alerts at most once in
`rearm_buckets`. It returns to "steady" when its lift falls under `exit_lift` (the usual
share caught up, or the trend decayed). Keys quiet for `idle_buckets` buckets are
forgotten, so closing a bucket costs O(keys active recently), not O(keys ever seen). All
state (detectors included) is pickled with the projection's position: a restart or a
rebuild reproduces the same calls on the view. Tuned on the workload's seed 42
(adapters/evaluation/trends.py).
"""

import math
import pickle
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.utils import get_topic
from river import drift

from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import Alert, AlertSink
from projections.base import Projection

KIND_HASHTAG, KIND_SOUND = "hashtag", "sound"
EMERGING, STEADY = "emerging", "steady"
RULE = "emerging_trend"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Key = tuple[str, str]  # (kind, key)
# The shape of TrendState. A checkpoint of another shape (written before an upgrade) is
# dropped: the projection goes on from its position with fresh state and warms up again.
STATE_VERSION = 2


@dataclass(frozen=True)
class TrendParams:
    bucket_minutes: int = 10
    grace_minutes: int = 2  # the workload batches signals within a minute
    idle_buckets: int = 36  # a key unseen for 6 hours is forgotten
    warmup_buckets: int = 12  # no detection before: every key is new to a new projection
    window_buckets: int = 6  # the trailing hour the share is measured over
    # Buckets: the usual share remembers about a day, the cycle of what each hour's
    # audience likes (topics' shares swing over the day; a trend's does not come back).
    slow_half_life: float = 144.0
    prior_share: float = 0.002  # the baseline of a key with no history...
    prior_buckets: float = 6.0  # ...weighs as much as this many buckets of its own
    min_views: float = 4.0  # in the trailing window
    min_share: float = 0.015  # of the platform's views in the trailing window
    lift_factor: float = 3.0
    min_videos: int = 3  # watched in the window
    exit_lift: float = 1.5  # steady again: the usual share (a day of memory) caught up
    rearm_buckets: int = 144  # a key alerts again a day after its last alert at the earliest
    detector: str = "none"  # or "page_hinkley", "adwin", "kswin": a drift must confirm
    confirm_buckets: int = 6  # how long a drift stays a confirmation
    ph_min_instances: int = 6
    ph_delta: float = 0.5  # z-units of drift tolerated per bucket
    ph_threshold: float = 12.0
    z_clip: float = 4.0  # one bucket moves the detector at most this much
    adwin_delta: float = 0.002
    kswin_alpha: float = 0.005
    seed: int = 42  # KSWIN samples its reference window

    def new_detector(self) -> Any:
        if self.detector == "none":
            return None
        if self.detector == "page_hinkley":
            return drift.PageHinkley(
                min_instances=self.ph_min_instances, delta=self.ph_delta,
                threshold=self.ph_threshold, mode="up",
            )  # fmt: skip
        if self.detector == "adwin":
            return drift.ADWIN(delta=self.adwin_delta, clock=1)
        if self.detector == "kswin":
            return drift.KSWIN(alpha=self.kswin_alpha, window_size=60, stat_size=20, seed=self.seed)
        raise ValueError(f"unknown detector {self.detector!r}")

    def fading(self, half_life: float) -> float:
        """river's EWMean weight of the newest value for this half-life (in buckets)."""
        return 1.0 - 0.5 ** (1.0 / half_life)


def counted(hashtags: list[str], sound: str | None) -> tuple[tuple[Key, ...], str | None]:
    """What a view of a video counts for: each hashtag (as often as it is listed), then the
    sound; and the sound itself."""
    keys = tuple((KIND_HASHTAG, tag) for tag in hashtags)
    return (keys if sound is None else (*keys, (KIND_SOUND, sound))), sound


class EmergingTrendsView(AlertSink):
    @abstractmethod
    def trend(
        self, kind: str, key: str, status: str, velocity: float, baseline: float,
        detections: int, detected_at: datetime | None, at: datetime,
    ) -> None:  # fmt: skip
        """The key's state after the bucket ending at `at` (views per hour, event time)."""


@dataclass
class _KeyState:
    detector: Any
    last_seen: int  # bucket
    counts: list[int] = field(default_factory=list)  # views per bucket in the window
    videos: list[dict[int, int]] = field(default_factory=list)  # views per video, last window
    # The usual share: sums of the key's bucket shares and of their weights, both fading
    # (see `usual`).
    share_sum: float = 0.0
    weight_sum: float = 0.0
    status: str = STEADY
    detections: int = 0
    detected_at: datetime | None = None
    armed_until: int = -1  # a drift confirms a detection until this bucket
    alerted_at: int | None = None  # bucket of the last alert (re-arms a day later)


@dataclass
class TrendState:
    params: TrendParams
    # video (UUID.int) -> the keys a view of it counts for (hashtags, then the sound), and
    # its sound (kept for caption edits). Keys are built once, not on every view.
    videos: dict[int, tuple[tuple[Key, ...], str | None]] = field(default_factory=dict)
    pending: dict[int, dict[int, int]] = field(default_factory=dict)  # open: video -> views
    recent: list[int] = field(default_factory=list)  # platform views per bucket in the window
    keys: dict[Key, _KeyState] = field(default_factory=dict)
    watermark: datetime | None = None
    closed_before: int | None = None  # buckets below this are closed
    next_due: datetime | None = None  # when the watermark reaches it, a bucket closes
    late_dropped: int = 0
    buckets_closed: int = 0
    version: int = STATE_VERSION


class EmergingTrendsProjection(Projection[EmergingTrendsView]):
    name = "emerging_trends"
    topics = tuple(get_topic(c) for c in (Video.Published, Video.CaptionEdited, Engagement.Viewed))

    def __init__(self, params: TrendParams | None = None) -> None:
        self.params = params or TrendParams()
        self.state = self._fresh()

    def _fresh(self) -> TrendState:
        return TrendState(self.params)

    def usual(self, ks: _KeyState) -> float:
        """The key's usual share: the fading mean of its bucket shares, with `prior_share`
        counted as `prior_buckets` buckets, so that a brand-new key's is small but finite
        and an old key's is its own (a plain EWMean starting at zero would make every
        young key look lifted for hours)."""
        p = self.params
        prior = p.prior_buckets
        return (ks.share_sum + p.prior_share * prior) / (ks.weight_sum + prior)

    # -- checkpointing (with the position, in the projection's transaction) ---------------
    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        state = pickle.loads(data) if data else None  # our own checkpoint blob
        if getattr(state, "version", None) != STATE_VERSION:
            state = self._fresh()
        self.state = state
        self.params = self.state.params  # the checkpoint's detectors were built with these

    # -- events ---------------------------------------------------------------------------
    def process(self, event: Any, position: int, view: EmergingTrendsView) -> None:
        s = self.state
        match event:
            case Engagement.Viewed():
                self._count(event.video_id.int, event.occurred_at)
            case Video.Published():
                s.videos[event.originator_id.int] = counted(event.hashtags, event.sound_id)
            case Video.CaptionEdited():
                old = s.videos.get(event.originator_id.int)
                if old is not None:
                    s.videos[event.originator_id.int] = counted(event.hashtags, old[1])
        # Anything else with an event time (another event, a clock tick) only moves time on.
        when = getattr(event, "occurred_at", None)
        if when is not None and (s.watermark is None or when > s.watermark):
            s.watermark = when
            if s.next_due is None or when >= s.next_due:  # cheap test on the hot path
                self._close_due(position, view)

    def bucket_of(self, at: datetime) -> int:
        # Bucket bounds are whole seconds, exactly representable as floats, and rounding is
        # monotonic: flooring the float timestamp never puts an event in the wrong bucket
        # (and is several times faster than timedelta arithmetic on the hot path).
        return int(at.timestamp() // (self.params.bucket_minutes * 60))

    def bucket_end(self, bucket: int) -> datetime:
        return EPOCH + (bucket + 1) * timedelta(minutes=self.params.bucket_minutes)

    def _count(self, video: int, at: datetime) -> None:
        s = self.state
        found = s.videos.get(video)
        if found is None:
            return
        bucket = self.bucket_of(at)
        if s.closed_before is not None and bucket < s.closed_before:
            s.late_dropped += 1
            return
        counts = s.pending.get(bucket)
        if counts is None:
            counts = s.pending[bucket] = {}
        counts[video] = counts.get(video, 0) + 1  # its keys are counted when the bucket closes

    def _close_due(self, position: int, view: EmergingTrendsView) -> None:
        s, p = self.state, self.params
        assert s.watermark is not None
        # Bucket b closes once watermark >= end(b) + grace.
        limit = self.bucket_of(s.watermark - timedelta(minutes=p.grace_minutes))
        if s.closed_before is not None and limit <= s.closed_before:
            return
        for bucket in sorted(b for b in s.pending if b < limit):
            self._close(bucket, s.pending.pop(bucket), position, view)
        s.closed_before = limit
        s.next_due = self.bucket_end(limit) + timedelta(minutes=p.grace_minutes)

    def _close(
        self, bucket: int, watched: dict[int, int], position: int, view: EmergingTrendsView
    ) -> None:
        # Buckets without any view are never pending: no platform traffic says nothing about
        # any key's share, so they are skipped rather than fed as zeros.
        s, p = self.state, self.params
        s.buckets_closed += 1
        counts: dict[Key, int] = {}
        by_video: dict[Key, dict[int, int]] = {}
        total = sum(watched.values())
        for video, views in watched.items():
            for key in s.videos[video][0]:
                counts[key] = counts.get(key, 0) + views
                by_video.setdefault(key, {})[video] = views
        s.recent.append(total)
        del s.recent[: -p.window_buckets]
        for key in counts:
            ks = s.keys.get(key)
            if ks is None:
                ks = s.keys[key] = _KeyState(p.new_detector(), bucket)
                if s.buckets_closed > p.warmup_buckets:
                    # New to the platform, not to us: the hours before it was seen count
                    # as its history, at the prior share (a full memory's weight).
                    memory = 1.0 / (1.0 - 0.5 ** (1.0 / p.slow_half_life))
                    ks.share_sum, ks.weight_sum = p.prior_share * memory, memory
            ks.last_seen = bucket
        at = self.bucket_end(bucket)
        gone = []
        for key, ks in s.keys.items():
            if ks.last_seen < bucket - p.idle_buckets:
                gone.append(key)
                continue
            ks.videos.append(by_video.get(key, {}))
            del ks.videos[: -p.window_buckets]
            self._observe(key, ks, bucket, counts.get(key, 0), total, at, position, view)
        for key in gone:
            ks = s.keys.pop(key)
            view.trend(*key, STEADY, 0.0, 0.0, ks.detections, ks.detected_at, at)

    def _observe(
        self, key: Key, ks: _KeyState, bucket: int, count: int, total: int, at: datetime,
        position: int, view: EmergingTrendsView,
    ) -> None:  # fmt: skip
        p, recent = self.params, self.state.recent
        w = p.window_buckets
        ks.counts.append(count)
        del ks.counts[:-w]
        views, platform = sum(ks.counts), sum(recent)
        share = views / platform if platform else 0.0
        usual = self.usual(ks)
        if ks.detector is not None:
            expected = usual * total
            z = (count - expected) / math.sqrt(expected + 1.0)
            ks.detector.update(max(-p.z_clip, min(p.z_clip, z)))
            if ks.detector.drift_detected:
                ks.armed_until = bucket + p.confirm_buckets
        lift = share / usual if usual > 0 else math.inf
        per_hour = 60.0 / (w * p.bucket_minutes)
        velocity, baseline = views * per_hour, usual * platform * per_hour
        if ks.status == STEADY:
            if (
                self.state.buckets_closed > p.warmup_buckets
                and (ks.alerted_at is None or bucket >= ks.alerted_at + p.rearm_buckets)
                and views >= p.min_views
                and share >= p.min_share
                and lift >= p.lift_factor
                and (ks.detector is None or bucket <= ks.armed_until)
                and self._carried(ks, platform, usual)
            ):
                ks.status, ks.armed_until, ks.alerted_at = EMERGING, -1, bucket
                ks.detections += 1
                ks.detected_at = at
                view.raise_alert(self._alert(key, at, velocity, baseline, lift, position))
        elif lift < p.exit_lift:
            ks.status = STEADY
        # After the decision: the bucket is not part of its own baseline.
        fade = 0.5 ** (1.0 / p.slow_half_life)
        ks.share_sum = ks.share_sum * fade + count / total
        ks.weight_sum = ks.weight_sum * fade + 1.0
        view.trend(*key, ks.status, velocity, baseline, ks.detections, ks.detected_at, at)

    def _carried(self, ks: _KeyState, platform: int, usual: float) -> bool:
        """Several of the key's videos are watched in the window, and without the most
        watched one the key is still `lift_factor` over its usual share: one video taking
        off (or a bot burst on it) lifts its hashtags and sound, it is not a trend."""
        p = self.params
        per_video: dict[int, int] = {}
        for bucket in ks.videos:
            for video, views in bucket.items():
                per_video[video] = per_video.get(video, 0) + views
        if len(per_video) < p.min_videos:
            return False
        rest = sum(per_video.values()) - max(per_video.values())
        return rest >= p.lift_factor * usual * platform

    def _alert(
        self, key: Key, at: datetime, velocity: float, baseline: float, lift: float,
        position: int,
    ) -> Alert:  # fmt: skip
        kind, name = key
        window = (at - timedelta(minutes=self.params.bucket_minutes)).isoformat()
        return Alert(
            rule=RULE, source=self.name, subject_type=kind, subject_id=name, window=window,
            severity="info", score=lift,
            summary=f"{kind} {name} is emerging: {velocity:.0f} views/h, {lift:.1f}x its baseline",
            raised_at=at, position=position,
            details={"velocity": velocity, "baseline": baseline, "lift": lift},
        )  # fmt: skip
