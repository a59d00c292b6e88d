"""Scoring detectors against the workload's ground truth: the bot detector's precision and
recall, beside trivial baselines measured on the same events in the same run.

An alert is a true positive when its video is a bot-burst video and it was raised between
the burst's start and its end plus `grace` (a detector needs the minute to close before it
can speak). Precision = true-positive alerts / alerts; recall = bursts with at least one
true-positive alert / bursts.

Baselines (one alert per run of flagged minutes, grouped like the model's, raised at the
minute's end, which is never later than the model):
- `random_same_rate`: as many active video-minutes as the model alerted, drawn uniformly
  (seeded) — what the model's alert budget buys without looking at the data;
- `views_gate`: the model's own volume gate alone (at least `min_views` views in the
  minute), to show what the anomaly score adds to it;
- `views_p99`: a video-minute with more views than the global 99th percentile of views per
  active video-minute over the WHOLE run (hindsight, which only favours the baseline).
"""

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from adapters.bootstrap import bootstrap
from adapters.readmodel.recount import stored_events
from adapters.settings import Settings
from adapters.workload.drivers import drive_application
from adapters.workload.generator import generate
from adapters.workload.model import GroundTruth, WorkloadConfig
from domain.engagement import Engagement
from projections.alerting import Alert
from projections.bot_detector import BotDetectorParams, BotDetectorProjection, BotDetectorView

GRACE = timedelta(minutes=5)
EVALUATION_CONFIG = WorkloadConfig(seed=42, days=3, bot_bursts=30)


@dataclass(frozen=True)
class DetectionScore:
    name: str
    alerts: int
    true_positives: int
    bursts: int
    detected: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.alerts if self.alerts else 0.0

    @property
    def recall(self) -> float:
        return self.detected / self.bursts if self.bursts else 0.0

    def line(self) -> str:
        return (
            f"{self.name}: precision {self.precision:.3f} ({self.true_positives}/{self.alerts}), "
            f"recall {self.recall:.3f} ({self.detected}/{self.bursts} bursts)"
        )


@dataclass(frozen=True)
class BotDetectionReport:
    model: DetectionScore
    baselines: tuple[DetectionScore, ...]
    minutes_scored: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [self.model.line(), *(b.line() for b in self.baselines)]


def score_alerts(
    alerts: Iterable[tuple[UUID, datetime]],
    truth: GroundTruth,
    *,
    grace: timedelta = GRACE,
    name: str = "bot_detector",
) -> DetectionScore:
    """Precision and recall of (video_id, raised_at) alerts against the injected bursts."""
    windows: dict[UUID, list[tuple[int, datetime, datetime]]] = {}
    for i, b in enumerate(truth.bot_bursts):
        windows.setdefault(b.video_id, []).append((i, b.start, b.end + grace))
    count, hits, detected = 0, 0, set()
    for video_id, raised_at in alerts:
        count += 1
        at = raised_at.astimezone(UTC)
        matched = [i for i, start, end in windows.get(video_id, ()) if start <= at <= end]
        hits += bool(matched)
        detected.update(matched)
    return DetectionScore(name, count, hits, len(truth.bot_bursts), len(detected))


def minute_runs(
    flagged: Iterable[tuple[UUID, datetime]], gap: timedelta
) -> list[tuple[UUID, datetime]]:
    """One alert per run of flagged minutes of a video (as the model groups them), raised
    when the run's first minute ends."""
    alerts, last = [], {}
    for video_id, minute in sorted(flagged, key=lambda f: (f[1], f[0])):
        previous = last.get(video_id)
        if previous is None or minute - previous >= gap:
            alerts.append((video_id, minute + timedelta(minutes=1)))
        last[video_id] = minute
    return alerts


def bot_detection_report(
    alerts: Sequence[tuple[UUID, datetime]],
    truth: GroundTruth,
    minute_views: Counter[tuple[UUID, datetime]],
    *,
    params: BotDetectorParams | None = None,
    grace: timedelta = GRACE,
    seed: int = 0,
) -> BotDetectionReport:
    """The model's score and the baselines', from per-(video, minute) view counts of the
    same events (`minute_views`, see `count_minute_views`)."""
    params = params or BotDetectorParams()
    gap = timedelta(minutes=params.run_gap_minutes)
    model = score_alerts(alerts, truth, grace=grace)
    active = sorted(minute_views)  # sorted: the draw must not depend on dict order
    picks = random.Random(seed).sample(active, min(len(alerts), len(active)))
    random_score = score_alerts(
        minute_runs(picks, gap), truth, grace=grace, name="random_same_rate"
    )
    counts = sorted(minute_views.values())
    p99 = counts[int(0.99 * (len(counts) - 1))] if counts else 0
    loud = [k for k, v in minute_views.items() if v > p99]
    volume = score_alerts(minute_runs(loud, gap), truth, grace=grace, name=f"views_p99(>{p99})")
    gated = [k for k, v in minute_views.items() if v >= params.min_views]
    gate = score_alerts(
        minute_runs(gated, gap), truth, grace=grace, name=f"views_gate(>={params.min_views})"
    )
    return BotDetectionReport(
        model, (random_score, gate, volume), len(active), {"p99_views": p99, "grace": str(grace)}
    )


def count_minute_views(events: Iterable[Any]) -> Counter[tuple[UUID, datetime]]:
    """Views per (video, event-time minute): only minutes with activity, as the model sees."""
    counts: Counter[tuple[UUID, datetime]] = Counter()
    for e in events:
        if isinstance(e, Engagement.Viewed):
            minute = e.occurred_at.astimezone(UTC).replace(second=0, microsecond=0)
            counts[(e.video_id, minute)] += 1
    return counts


class CollectingView(BotDetectorView):
    """Keeps alerts and the number of scored minutes in memory (backtests, evaluation)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.minutes = 0

    def score(self, video_id: UUID, minute_at: datetime, score: float,
              vector: dict[str, float], **totals: Any) -> None:  # fmt: skip
        self.minutes += 1

    def raise_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


def run_detector(
    events: Sequence[tuple[int, Any]], params: BotDetectorParams | None = None
) -> list[Alert]:
    """Replay (position, event) pairs through a fresh detector; return its alerts."""
    projection, view = BotDetectorProjection(params), CollectingView()
    for position, event in events:
        projection.process(event, position, view)
    return view.alerts


def load_events(container: Any) -> list[tuple[int, Any]]:
    """The detector's events from a container's store, in global order."""
    topics = BotDetectorProjection.topics
    return list(stored_events(container.store, container.content.mapper, topics))


def evaluate_bot_detector(
    config: WorkloadConfig = EVALUATION_CONFIG,
    params: BotDetectorParams | None = None,
    *,
    grace: timedelta = GRACE,
) -> BotDetectionReport:
    """End to end: generate the workload, drive it into an in-memory store through the
    applications, replay the stored events through the detector, score it and the baselines."""
    workload = generate(config)
    container = bootstrap(Settings(database_url="memory://"))
    try:
        drive_application(container, workload.commands)
        events = load_events(container)
    finally:
        container.close()
    alerts = run_detector(events, params)
    return bot_detection_report(
        [(UUID(a.subject_id), a.raised_at) for a in alerts],
        workload.truth,
        count_minute_views(e for _, e in events),
        params=params,
        grace=grace,
    )
