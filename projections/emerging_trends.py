"""EmergingTrendsProjection: change detection on hashtag and sound velocity, in event time.

Views are counted per hashtag and sound in tumbling event-time buckets (10 minutes by
default). A bucket closes when the watermark (the latest event time seen) has passed its
end plus a grace period; later events for it are dropped and only counted. When a bucket
closes, every key seen in the last `idle_buckets` buckets gets one observation:

- the platform's own velocity is divided out. The workload (like real traffic) has a
  strong diurnal cycle: every morning ALL keys accelerate, which is not a trend. What is
  tested is the key's count against what its usual SHARE of the platform's views predicts
  for this bucket, as a Poisson residual z = (count - expected) / sqrt(expected + 1), so
  one detector threshold fits a key with 2 views per bucket and one with 200. z is clipped
  to +-z_clip (a winsorised CUSUM): a burst of a few minutes, such as the workload's bot
  bursts (hundreds of views on one video within 10 minutes), cannot cross the threshold
  alone; only a shift that lasts several buckets does;
- z goes to a river drift detector (Page-Hinkley, one-sided "up", by default), one per key,
  created lazily. A detection marks the key "emerging" only if, within `confirm_buckets`,
  its velocity is at least `min_volume` views per hour and `lift_factor` times its
  baseline (the views per hour its usual share would give now). It returns to "steady"
  when the lift falls under `exit_lift`.

Keys quiet for `idle_buckets` buckets are forgotten, so closing a bucket costs O(keys
active recently), not O(keys ever seen). All state (detectors included) is pickled with the
projection's position: a restart or a rebuild reproduces the same calls on the view.
"""

import math
import pickle
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.utils import get_topic
from river import drift, stats

from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import Alert, AlertSink
from projections.base import Projection

KIND_HASHTAG, KIND_SOUND = "hashtag", "sound"
EMERGING, STEADY = "emerging", "steady"
RULE = "emerging_trend"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Key = tuple[str, str]  # (kind, key)


@dataclass(frozen=True)
class TrendParams:
    bucket_minutes: int = 10
    grace_minutes: int = 2  # the workload batches signals within a minute
    idle_buckets: int = 36  # a key unseen for 6 hours is forgotten
    fast_half_life: float = 2.0  # buckets: velocity reacts within half an hour
    slow_half_life: float = 36.0  # buckets: the baseline share remembers about 6 hours
    detector: str = "page_hinkley"  # or "adwin", "kswin" (two-sided; the lift gives the sign)
    ph_min_instances: int = 6
    ph_delta: float = 0.5  # z-units of drift tolerated per bucket
    ph_threshold: float = 12.0
    z_clip: float = 4.0  # one bucket moves the detector at most this much (see module doc)
    adwin_delta: float = 0.002
    kswin_alpha: float = 0.005
    min_volume: float = 30.0  # views per hour
    lift_factor: float = 2.0
    exit_lift: float = 1.25
    confirm_buckets: int = 3
    seed: int = 42  # KSWIN samples its reference window

    def new_detector(self) -> Any:
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
    velocity: Any  # EWMean of views per bucket
    share: Any  # EWMean of the key's share of the platform's views (the baseline)
    last_seen: int  # bucket
    observed: int = 0
    status: str = STEADY
    detections: int = 0
    detected_at: datetime | None = None
    armed_until: int = -1  # a detection waits this long for volume and lift


@dataclass
class TrendState:
    params: TrendParams
    # video (UUID.int) -> the keys a view of it counts for (hashtags, then the sound), and
    # its sound (kept for caption edits). Keys are built once, not on every view.
    videos: dict[int, tuple[tuple[Key, ...], str | None]] = field(default_factory=dict)
    pending: dict[int, dict[Key, int]] = field(default_factory=dict)  # open buckets
    totals: dict[int, int] = field(default_factory=dict)  # platform views per open bucket
    platform: Any = None  # EWMean of the platform's views per bucket
    keys: dict[Key, _KeyState] = field(default_factory=dict)
    watermark: datetime | None = None
    closed_before: int | None = None  # buckets below this are closed
    next_due: datetime | None = None  # when the watermark reaches it, a bucket closes
    late_dropped: int = 0
    buckets_closed: int = 0


class EmergingTrendsProjection(Projection[EmergingTrendsView]):
    name = "emerging_trends"
    topics = tuple(get_topic(c) for c in (Video.Published, Video.CaptionEdited, Engagement.Viewed))

    def __init__(self, params: TrendParams | None = None) -> None:
        self.params = params or TrendParams()
        self.state = self._fresh()

    def _fresh(self) -> TrendState:
        return TrendState(
            self.params, platform=stats.EWMean(self.params.fading(self.params.fast_half_life))
        )

    # -- checkpointing (with the position, in the projection's transaction) ---------------
    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        self.state = pickle.loads(data) if data else self._fresh()  # our own checkpoint blob
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
        s.totals[bucket] = s.totals.get(bucket, 0) + 1
        for key in found[0]:
            counts[key] = counts.get(key, 0) + 1

    def _close_due(self, position: int, view: EmergingTrendsView) -> None:
        s, p = self.state, self.params
        assert s.watermark is not None
        # Bucket b closes once watermark >= end(b) + grace.
        limit = self.bucket_of(s.watermark - timedelta(minutes=p.grace_minutes))
        if s.closed_before is not None and limit <= s.closed_before:
            return
        for bucket in sorted(b for b in s.pending if b < limit):
            self._close(bucket, s.pending.pop(bucket), s.totals.pop(bucket), position, view)
        s.closed_before = limit
        s.next_due = self.bucket_end(limit) + timedelta(minutes=p.grace_minutes)

    def _close(
        self, bucket: int, counts: dict[Key, int], total: int, position: int,
        view: EmergingTrendsView,
    ) -> None:  # fmt: skip
        # Buckets without any view are never pending: no platform traffic says nothing about
        # any key's share, so they are skipped rather than fed as zeros.
        s, p = self.state, self.params
        s.buckets_closed += 1
        s.platform.update(total)
        for key in counts:
            ks = s.keys.get(key)
            if ks is None:
                ks = s.keys[key] = _KeyState(
                    p.new_detector(), stats.EWMean(p.fading(p.fast_half_life)),
                    stats.EWMean(p.fading(p.slow_half_life)), bucket,
                )  # fmt: skip
            ks.last_seen = bucket
        at = self.bucket_end(bucket)
        gone = []
        for key, ks in s.keys.items():
            if ks.last_seen < bucket - p.idle_buckets:
                gone.append(key)
                continue
            self._observe(key, ks, bucket, counts.get(key, 0), total, at, position, view)
        for key in gone:
            ks = s.keys.pop(key)
            view.trend(*key, STEADY, 0.0, 0.0, ks.detections, ks.detected_at, at)

    def _observe(
        self, key: Key, ks: _KeyState, bucket: int, count: int, total: int, at: datetime,
        position: int, view: EmergingTrendsView,
    ) -> None:  # fmt: skip
        p = self.params
        per_hour = 60.0 / p.bucket_minutes
        if ks.observed:  # a new key has no baseline share yet: its first bucket only sets it
            expected = ks.share.get() * total
            z = (count - expected) / math.sqrt(expected + 1.0)
            ks.detector.update(max(-p.z_clip, min(p.z_clip, z)))
            if ks.detector.drift_detected:
                ks.armed_until = bucket + p.confirm_buckets
        ks.observed += 1
        ks.velocity.update(count)
        ks.share.update(count / total)
        velocity = ks.velocity.get() * per_hour
        baseline = ks.share.get() * self.state.platform.get() * per_hour
        lift = velocity / baseline if baseline > 0 else 0.0
        if ks.status == STEADY and bucket <= ks.armed_until:
            if velocity >= p.min_volume and lift >= p.lift_factor:
                ks.status, ks.armed_until = EMERGING, -1
                ks.detections += 1
                ks.detected_at = at
                view.raise_alert(self._alert(key, bucket, at, velocity, baseline, lift, position))
        elif ks.status == EMERGING and lift < p.exit_lift:
            ks.status = STEADY
        view.trend(*key, ks.status, velocity, baseline, ks.detections, ks.detected_at, at)

    def _alert(
        self, key: Key, bucket: int, at: datetime, velocity: float, baseline: float,
        lift: float, position: int,
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
