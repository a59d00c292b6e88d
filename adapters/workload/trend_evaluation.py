"""Synthetic streams for EmergingTrendsProjection, for tests and `evaluate_synthetic`.

The workload's own trends (new hashtags and sounds, some taking off, some fizzling; see
adapters/workload/trends.py) are scored by adapters/evaluation/trends.py. A synthetic
stream (`synthetic_stream`) has a dozen hashtags, each on a few videos, with Zipf shares
of a diurnal platform rate (peak-to-trough 4:1). Without changes it measures false alarms
on stationary traffic; `step` multiplies one key's share at a known time, `surge` the
whole platform's rate, and `launch` adds a tag that did not exist, whose share grows and
then decays (a take-off, or a fizzle when its top is low).
"""

import math
import random
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import Alert
from projections.emerging_trends import (
    EmergingTrendsProjection,
    EmergingTrendsView,
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
