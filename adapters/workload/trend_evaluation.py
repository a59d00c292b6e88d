"""Synthetic streams for EmergingTrendsProjection, and the older organic-entries measure.

The workload's own trends (new hashtags and sounds, some taking off, some fizzling; see
adapters/workload/trends.py) are scored by adapters/evaluation/trends.py. Here:

- synthetic streams (`synthetic_stream`), for tests: a dozen hashtags, each on a few
  videos, with Zipf shares of a diurnal platform rate (peak-to-trough 4:1). Without
  changes they measure false alarms on stationary traffic; `step` multiplies one key's
  share at a known time, `surge` the whole platform's rate, and `launch` adds a tag that
  did not exist, whose share grows and then decays (a take-off, or a fizzle when its top
  is low);
- a workload's event stream against organic "top-5 entries" (`evaluate_events`, the
  measure the first `reelpulse evaluate` report used, kept until that report is
  replaced): a detection is confirmed when the key's share of views in the 2 hours after
  it is at least 1.5 times its share in the 6 hours before, and it is "early" when the
  key then ENTERS the top 5 of its kind by views in the trailing hour within 6 hours.
  MIN_PER_HOUR is the volume floor those entries were defined with. Its trivial
  baseline flags a key when a bucket's count exceeds 2x the key's running mean per
  bucket, with the same floor.
"""

import math
import random
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import Alert
from projections.emerging_trends import (
    EmergingTrendsProjection,
    EmergingTrendsView,
    Key,
    TrendParams,
)

START = datetime(2026, 3, 2, tzinfo=UTC)
TAGS = tuple(f"tag{i:02d}" for i in range(12))
CONFIRM_LIFT, BEFORE, AFTER = 1.5, timedelta(hours=6), timedelta(hours=2)
TOP_K, ENTRY_HORIZON = 5, timedelta(hours=6)
MIN_PER_HOUR = 30.0


class RecordingTrendsView(EmergingTrendsView):
    """Keeps every call, in order (tests compare these lists)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.alerts: list[Alert] = []

    def trend(
        self, kind: str, key: str, status: str, velocity: float, baseline: float,
        detections: int, detected_at: datetime | None, at: datetime,
    ) -> None:  # fmt: skip
        self.calls.append(
            ("trend", kind, key, status, velocity, baseline, detections, detected_at, at)
        )

    def raise_alert(self, alert: Alert) -> None:
        self.calls.append(("alert", alert.id, alert.subject_id, alert.window, alert.position))
        self.alerts.append(alert)


# -- synthetic streams -------------------------------------------------------------------
VIDEOS_PER_TAG = 8  # a tag's views spread over several videos, as a trend's do


@dataclass(frozen=True)
class Step:
    key: str
    at: datetime
    factor: float


@dataclass(frozen=True)
class Launch:
    """A tag nobody used before, from `at` on: its share of views grows by `rate` an hour
    (exponentially) from `first` until it reaches `top`, then halves every `half_life`
    hours. Its `videos` are published one every 20 minutes from `at`."""

    key: str
    at: datetime
    top: float
    rate: float = 0.4
    first: float = 0.003
    half_life: float = 2.0
    videos: int = 6

    @property
    def peak(self) -> datetime:
        return self.at + timedelta(hours=math.log(self.top / self.first) / self.rate)

    def share(self, t: datetime) -> float:
        if t < self.at:
            return 0.0
        hours = (t - self.peak) / timedelta(hours=1)
        if hours <= 0:
            return self.top * math.exp(self.rate * hours)
        return self.top * 0.5 ** (hours / self.half_life)


def _published(video: UUID, tag: str, at: datetime) -> Video.Published:
    return Video.Published(
        originator_id=video, originator_version=1, timestamp=at, originator_topic="",
        creator_id=UUID(int=1), caption=tag, hashtags=[tag], sound_id=None,
        duration_seconds=10.0, occurred_at=at,
    )  # fmt: skip


def synthetic_stream(
    seed: int = 0, days: float = 2.0, views_per_minute: float = 12.0, amplitude: float = 0.6,
    step: Step | None = None, surge: Step | None = None, launch: Launch | None = None,
) -> list[Any]:  # fmt: skip
    """Video.Published (VIDEOS_PER_TAG videos per tag) then Engagement.Viewed events in
    time order. `step` multiplies one tag's share; `surge` the whole platform's rate (its
    key unused); `launch` adds a new tag whose share follows its curve."""
    rng = random.Random(seed)
    videos = {tag: [UUID(int=rng.getrandbits(128)) for _ in range(VIDEOS_PER_TAG)] for tag in TAGS}
    events: list[Any] = [_published(v, tag, START) for tag, vs in videos.items() for v in vs]
    launched: list[tuple[datetime, UUID]] = []
    if launch is not None:
        launched = [
            (launch.at + timedelta(minutes=20 * i), UUID(int=rng.getrandbits(128)))
            for i in range(launch.videos)
        ]
    weights = [1.0 / rank for rank in range(1, len(TAGS) + 1)]
    for minute in range(int(days * 1440)):
        t0 = START + timedelta(minutes=minute)
        while launched and launched[0][0] <= t0:
            at, video = launched.pop(0)
            assert launch is not None
            events.append(_published(video, launch.key, at))
            videos.setdefault(launch.key, []).append(video)
        hour = minute / 60.0 % 24
        rate = views_per_minute * (1 + amplitude * math.sin(2 * math.pi * (hour - 14) / 24))
        if surge is not None and t0 >= surge.at:
            rate *= surge.factor
        w = weights
        if step is not None and t0 >= step.at:
            w = [
                x * (step.factor if tag == step.key else 1.0)
                for tag, x in zip(TAGS, w, strict=True)
            ]
        new = launch.share(t0) if launch is not None and launch.key in videos else 0.0
        n = int(rate) + (rng.random() < rate - int(rate))
        seconds = sorted(rng.uniform(0, 60) for _ in range(n))
        for tag, s in zip(rng.choices(TAGS, weights=w, k=n), seconds, strict=True):
            if new and rng.random() < new:
                assert launch is not None
                tag = launch.key
            video = rng.choice(videos[tag])
            events.append(_viewed(video, t0 + timedelta(seconds=s), rng))
    return events


def _viewed(video_id: UUID, at: datetime, rng: random.Random) -> Engagement.Viewed:
    return Engagement.Viewed(
        originator_id=UUID(int=rng.getrandbits(128)), originator_version=2, timestamp=at,
        video_id=video_id, viewer_id=UUID(int=rng.getrandbits(128)), watch_seconds=5.0,
        completed=False, traffic_source="for_you", device="ios", client_event_id=None,
        occurred_at=at,
    )  # fmt: skip


def run(projection: EmergingTrendsProjection, events: Iterable[Any]) -> RecordingTrendsView:
    view = RecordingTrendsView()
    for position, e in enumerate(events, start=1):
        projection.process(e, position, view)
    return view


@dataclass(frozen=True)
class SyntheticReport:
    false_alarms_per_day: float  # alerts on stationary diurnal traffic
    detected: int  # injected steps detected (of `steps`)
    steps: int
    median_delay_minutes: float | None  # from the step to the alert's bucket end
    wrong_key_alerts: int  # alerts on other keys in the step streams


def evaluate_synthetic(
    params: TrendParams | None = None, seeds: Iterable[int] = range(5), factor: float = 3.0
) -> SyntheticReport:
    seeds, days = list(seeds), 2.0
    false_alarms, delays, wrong = 0, [], 0
    for seed in seeds:
        false_alarms += len(run(EmergingTrendsProjection(params), synthetic_stream(seed)).alerts)
        # The step hits a mid-ranked tag at a quiet hour (04:00 on day 2): the hardest case.
        step = Step(TAGS[5], START + timedelta(days=1, hours=4), factor)
        alerts = run(EmergingTrendsProjection(params), synthetic_stream(seed, step=step)).alerts
        hits = [a for a in alerts if a.subject_id == step.key and a.raised_at >= step.at]
        wrong += len(alerts) - len(hits)
        if hits:
            delays.append((hits[0].raised_at - step.at) / timedelta(minutes=1))
    return SyntheticReport(
        false_alarms / (len(seeds) * days), len(delays), len(seeds),
        statistics.median(delays) if delays else None, wrong,
    )  # fmt: skip


# -- a workload's event stream -----------------------------------------------------------
@dataclass
class _Series:
    """Views per (kind, key) per bucket, and per bucket in total, straight from the events."""

    bucket: timedelta
    counts: dict[Key, dict[int, int]] = field(default_factory=dict)
    totals: dict[int, int] = field(default_factory=dict)

    def share(self, key: Key, start: int, stop: int) -> float:
        total = sum(self.totals.get(b, 0) for b in range(start, stop))
        mine = self.counts.get(key, {})
        return sum(mine.get(b, 0) for b in range(start, stop)) / total if total else 0.0


def _series(events: Iterable[Any], bucket: timedelta) -> _Series:
    s, videos = _Series(bucket), {}
    for e in events:
        if isinstance(e, Video.Published):
            videos[e.originator_id] = [("hashtag", t) for t in e.hashtags] + (
                [("sound", e.sound_id)] if e.sound_id else []
            )
        elif isinstance(e, Video.CaptionEdited) and e.originator_id in videos:
            sound = [k for k in videos[e.originator_id] if k[0] == "sound"]
            videos[e.originator_id] = [("hashtag", t) for t in e.hashtags] + sound
        elif isinstance(e, Engagement.Viewed) and e.video_id in videos:
            b = (e.occurred_at - START) // bucket
            s.totals[b] = s.totals.get(b, 0) + 1
            for key in videos[e.video_id]:
                per = s.counts.setdefault(key, {})
                per[b] = per.get(b, 0) + 1
    return s


def _baseline_detections(s: _Series, p: TrendParams) -> list[tuple[Key, int]]:
    """The trivial rule: count > 2x the key's running mean per bucket (and the volume floor)."""
    out, per_hour = [], 60.0 / p.bucket_minutes
    for key, per in s.counts.items():
        mean, emerging = 0.0, False
        for n, b in enumerate(range(min(per), max(s.totals) + 1)):
            c = per.get(b, 0)
            if n and not emerging and c > 2 * mean and c * per_hour >= MIN_PER_HOUR:
                emerging = True
                out.append((key, b + 1))  # known when the bucket closes
            elif emerging and c < p.exit_lift * mean:
                emerging = False
            mean += (c - mean) / (n + 1)
    return out


def _tops(s: _Series) -> dict[int, dict[str, set[str]]]:
    """Top-K keys per kind by views in the trailing hour, at every hour boundary (bucket)."""
    hour = timedelta(hours=1) // s.bucket
    out = {}
    for b in range(hour, max(s.totals) + 2, hour):
        top: dict[str, set[str]] = {}
        for kind in ("hashtag", "sound"):
            views = {
                k[1]: sum(per.get(x, 0) for x in range(b - hour, b))
                for k, per in s.counts.items()
                if k[0] == kind
            }
            top[kind] = set(sorted(views, key=lambda k: (-views[k], k))[:TOP_K])
        out[b] = top
    return out


@dataclass(frozen=True)
class StreamReport:
    detections: int
    confirmed: int  # share after >= 1.5x share before
    early: int  # detections after which the key entered the top 5
    median_lead_minutes: float | None
    entries: int  # top-5 entries (after the first 6 hours) in the stream
    caught: int  # entries with a detection of the key in the 6 hours before

    @property
    def precision(self) -> float:
        return self.confirmed / self.detections if self.detections else 0.0

    @property
    def recall(self) -> float:
        return self.caught / self.entries if self.entries else 0.0


def _entries(
    s: _Series, tops: dict[int, dict[str, set[str]]], min_per_hour: float,
    bursts: list[tuple[int, int]],
) -> list[tuple[Key, int]]:  # fmt: skip
    """Organic emergences: (key, hour bucket) where the key enters the top K (in none of the
    previous 6 hours), with at least `min_per_hour` views in that hour and twice its hourly
    average of those 6 hours, and no bot burst in that hour (a burst is not a trend)."""
    before, hour, out = BEFORE // s.bucket, timedelta(hours=1) // s.bucket, []
    for h, top in sorted(tops.items()):
        if h < before or any(a < h and h - hour <= z for a, z in bursts):
            continue  # everything "enters" while the platform warms up
        for kind, names in top.items():
            for name in sorted(names):
                per = s.counts[(kind, name)]
                last = sum(per.get(b, 0) for b in range(h - hour, h))
                prior = sum(per.get(b, 0) for b in range(h - before, h - hour)) / 5
                if last < min_per_hour or last < 2 * prior:
                    continue
                if not any(name in t[kind] for g, t in tops.items() if h - before <= g < h):
                    out.append(((kind, name), h))
    return out


def _score(
    s: _Series, detections: list[tuple[Key, int]], min_per_hour: float,
    bursts: list[tuple[int, int]],
) -> StreamReport:  # fmt: skip
    before, after = BEFORE // s.bucket, AFTER // s.bucket
    tops, horizon = _tops(s), ENTRY_HORIZON // s.bucket
    confirmed, leads = 0, []
    for key, b in detections:
        if s.share(key, b, b + after) >= CONFIRM_LIFT * s.share(key, b - before, b):
            confirmed += 1
        kind, name = key
        was_top = any(name in top[kind] for h, top in tops.items() if b - before <= h <= b)
        entry = next(
            (h for h, top in sorted(tops.items()) if b < h <= b + horizon and name in top[kind]),
            None,
        )
        if not was_top and entry is not None:
            leads.append((entry - b) * s.bucket / timedelta(minutes=1))
    entries = _entries(s, tops, min_per_hour, bursts)
    caught = sum(
        any(k == key and h - horizon <= b < h for k, b in detections) for key, h in entries
    )
    return StreamReport(
        len(detections), confirmed, len(leads), statistics.median(leads) if leads else None,
        len(entries), caught,
    )  # fmt: skip


def evaluate_events(
    events: list[Any], params: TrendParams | None = None,
    bursts: Iterable[tuple[datetime, datetime]] = (),
) -> dict[str, StreamReport]:  # fmt: skip
    """The projection and the trivial baseline on the same event stream (in log order).
    `bursts`: the workload's bot bursts (GroundTruth.bot_bursts start and end)."""
    p = params or TrendParams()
    bucket = timedelta(minutes=p.bucket_minutes)
    s = _series(events, bucket)
    spans = [((a - START) // bucket, (z - START) // bucket) for a, z in bursts]
    view = run(EmergingTrendsProjection(p), events)
    model = [((a.subject_type, a.subject_id), (a.raised_at - START) // bucket) for a in view.alerts]
    return {
        "emerging_trends": _score(s, model, MIN_PER_HOUR, spans),
        "baseline_2x_mean": _score(s, _baseline_detections(s, p), MIN_PER_HOUR, spans),
    }


def store_events(container: Any) -> list[Any]:
    """The event store's events that EmergingTrendsProjection reads, in log order."""
    from adapters.readmodel.recount import stored_events  # adapters: only when called

    topics = EmergingTrendsProjection.topics
    return [e for _, e in stored_events(container.store, container.content.mapper, topics)]


def evaluate_workload(
    config: Any = None, params: TrendParams | None = None
) -> dict[str, StreamReport]:
    """Generate a workload (default WorkloadConfig(seed=42, days=3)), run it through the
    applications into an in-memory store, and score the projection and the baseline."""
    from adapters.bootstrap import bootstrap  # the composition root: only when called
    from adapters.settings import Settings
    from adapters.workload import WorkloadConfig, drive_application, generate

    workload = generate(config or WorkloadConfig(seed=42, days=3))
    container = bootstrap(Settings(database_url="memory://"))
    try:
        drive_application(container, workload.commands)
        events = store_events(container)
    finally:
        container.close()
    bursts = [(b.start, b.end) for b in workload.truth.bot_bursts]
    return evaluate_events(events, params, bursts)
