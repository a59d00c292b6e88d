"""BotDetectorProjection: bot campaigns on videos, by two stages over the same events.

1. Bursts (this module): online anomaly scores over per-video, per-minute engagement
   vectors, below.
2. Drips (bot_cohorts.py): bots that imitate people, spread over hours, are invisible
   minute by minute; every ten minutes, a video whose recent viewers are far more often
   new accounts watching mostly it than the platform's are is anomalous.
Both stages share one run per video: any anomalous evidence within `run_gap_minutes`
of the last continues the same campaign, which raises ONE alert (rule `bot_burst`,
`details["stage"]` says which stage saw it first).

Views and likes are counted per (video, event-time minute). A minute closes when the
event-time watermark (the latest event time seen) passes its end by `lateness_seconds`,
so events arriving a little out of order still land in their own minute. A closed
minute becomes a feature vector, scaled into [0, 1] with fixed caps (not a running
min-max: a burst would stretch the scale and squash every later minute), is scored by
river's HalfSpaceTrees, and only then learned (score before learn: never judged on
what it has just seen).

Quiet minutes produce no vector at all: the model describes what an *active* minute
looks like, and a minute without events carries no evidence of bots. Events for a
minute that has already closed are counted in `late_events` and otherwise ignored.

A score at or above `threshold` in a minute with at least `min_views` views is
anomalous. Anomalous minutes (and cohort slots) of one video less than `run_gap_minutes`
apart form a run, and a run raises ONE alert whose window is the run's first minute, so
a ten-minute burst is one alert, not ten, and its id is the same on every replay. Time
comes only from events; the model is seeded; everything lives in the pickled state, so a
restart from a checkpoint or a rebuild from the first event gives identical scores and
alerts.
"""

import heapq
import math
import pickle
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from river import anomaly

from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import Alert, AlertSink
from projections.base import Projection
from projections.bot_cohorts import CohortParams, CohortScore, CohortStage, CohortState

FEATURES = (
    "views", "viewers", "repeat_share", "watch_fraction", "completion_share",
    "like_share", "other_source_share", "top_device_share",
)  # fmt: skip


@dataclass(frozen=True)
class BotDetectorParams:
    # Scores depend on n_trees, height and window_size: retune the thresholds with them.
    threshold: float = 0.9  # HalfSpaceTrees score at which a minute is anomalous
    critical_threshold: float = 0.95  # ... and the alert critical rather than a warning
    min_views: int = 5  # fewer views in a minute never alert (too little evidence to act on)
    # Anomalous evidence (a minute, a cohort slot) this close to the last belongs to the
    # same campaign: one alert. Drips last hours and their slots come and go.
    run_gap_minutes: int = 120
    lateness_seconds: float = 60.0  # how long after its end a minute still accepts events
    window_size: int = 250  # HalfSpaceTrees: minutes per reference window
    n_trees: int = 10
    height: int = 6  # 8 features need no deeper trees; the model is pickled every batch
    seed: int = 42
    view_cap: int = 400  # views per minute at which the (log) volume features saturate
    # The cohort stage (bot_cohorts.CohortParams, flat here so that replay can --set them).
    fresh_hours: float = 6.0
    cohort_slot_minutes: int = 10
    cohort_window_slots: int = 18  # three hours: a careful drip needs them to show
    cohort_z: float = 13.0  # per-view counts are overdispersed: an empirical bar (seed 42)
    cohort_min_flagged: int = 8

    def cohort(self) -> CohortParams:
        return CohortParams(
            fresh_hours=self.fresh_hours, slot_minutes=self.cohort_slot_minutes,
            window_slots=self.cohort_window_slots, z_threshold=self.cohort_z,
            min_flagged=self.cohort_min_flagged,
        )  # fmt: skip


class BotDetectorView(AlertSink):
    @abstractmethod
    def score(
        self,
        video_id: UUID,
        minute_at: datetime,
        score: float,
        vector: dict[str, float],
        *,
        minutes: int,
        max_score: float,
        max_score_at: datetime,
    ) -> None:
        """One scored minute, with the video's running totals (absolute, so rewriting
        them is harmless)."""

    def cohort(self, video_id: UUID, slot_end: datetime, score: CohortScore) -> None:
        """One video's cohort score at the end of a slot. Not kept by default (the read
        model holds minute scores); evaluation views collect them."""


@dataclass
class _Minute:
    """What one video received in one minute of event time."""

    views: int = 0
    viewers: set[int] = field(default_factory=set)  # UUID.int: hashes faster than a UUID
    watch_fraction: float = 0.0  # sum over views of watch_seconds / duration (capped at 1)
    completions: int = 0
    likes: int = 0
    other_source: int = 0
    devices: dict[str, int] = field(default_factory=dict)


@dataclass
class _Video:
    duration: float | None = None
    minutes: int = 0  # minutes scored
    max_score: float = 0.0
    max_minute: int = 0
    run_until: int | None = None  # evidence up to this minute continues the current run


def new_model(params: BotDetectorParams) -> anomaly.HalfSpaceTrees:
    # Features are already in [0, 1] (the default limits), so no scaler is needed.
    return anomaly.HalfSpaceTrees(
        n_trees=params.n_trees,
        height=params.height,
        window_size=params.window_size,
        seed=params.seed,
    )


@dataclass
class BotDetectorState:
    model: anomaly.HalfSpaceTrees
    watermark: float | None = None  # epoch seconds of the latest event time seen
    # Keyed by video_id.int and minutes since the epoch rather than UUIDs and datetimes:
    # the state is pickled with every batch, and ints are far cheaper to pickle.
    videos: dict[int, _Video] = field(default_factory=dict)
    open: dict[tuple[int, int], _Minute] = field(default_factory=dict)
    due: list[tuple[int, int]] = field(default_factory=list)  # heap of open (minute, video)
    scored: int = 0
    alerts: int = 0
    late_events: int = 0
    cohort: CohortState = field(default_factory=CohortState)


def minute_at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


class BotDetectorProjection(Projection[BotDetectorView]):
    name = "bot_detector"
    topics = tuple(
        get_topic(c)
        for c in (
            Video.Published, Engagement.Viewed, Engagement.Liked, Engagement.Commented,
            Engagement.Shared,
        )
    )  # fmt: skip

    def __init__(self, params: BotDetectorParams | None = None) -> None:
        self.params = params or BotDetectorParams()
        self.state = BotDetectorState(new_model(self.params))
        # A minute closes when the watermark reaches this many seconds past its start.
        self._close_after = 60.0 + self.params.lateness_seconds
        self.cohorts = CohortStage(self.params.cohort(), self.params.lateness_seconds)

    # -- checkpointing (with the position, in the projection's transaction) ---------------
    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        # Our own checkpoint blob, written in the same transaction as the position. One
        # from before the cohort stage (no `cohort`) is dropped: the detector starts
        # afresh from that position (a rebuild gives the full history back).
        state = pickle.loads(data) if data else None
        if state is None or not hasattr(state, "cohort"):
            state = BotDetectorState(new_model(self.params))
        self.state = state

    # -- events ---------------------------------------------------------------------------
    def process(self, event: Any, position: int, view: BotDetectorView) -> None:
        s = self.state
        t = event.occurred_at.timestamp()
        # Close the minutes this event's time has moved past before counting it, so a
        # minute's vector only holds what happened up to its closing.
        if s.watermark is None or t > s.watermark:
            s.watermark = t
            self._close_due(position, view)
            if t >= s.cohort.due_at:  # a slot to close (checked here: most events have none)
                for score in self.cohorts.close_due(s.cohort, t):
                    self._cohort(score, position, view)
        match event:
            case Video.Published():
                v = s.videos.setdefault(event.originator_id.int, _Video())
                v.duration = max(float(event.duration_seconds), 1.0)
                self.cohorts.published(s.cohort, event.originator_id.int, t)
            case Engagement.Viewed():
                video, viewer = event.video_id.int, event.viewer_id.int
                m = self._minute(video, t)
                if m is not None:
                    m.views += 1
                    m.viewers.add(viewer)
                    duration = s.videos[video].duration
                    if duration is not None:
                        m.watch_fraction += min(event.watch_seconds / duration, 1.0)
                    m.completions += int(event.completed)
                    m.other_source += int(event.traffic_source == "other")
                    m.devices[event.device] = m.devices.get(event.device, 0) + 1
                self.cohorts.view(s.cohort, video, viewer, t)
            case Engagement.Liked():
                m = self._minute(event.video_id.int, t)
                if m is not None:
                    m.likes += 1
            case Engagement.Commented() | Engagement.Shared():
                self.cohorts.social(s.cohort, event.viewer_id.int)

    def _minute(self, video: int, t: float) -> _Minute | None:
        s = self.state
        minute = int(t // 60)
        key = (video, minute)
        m = s.open.get(key)
        if m is None:
            if s.watermark is not None and minute * 60 + self._close_after <= s.watermark:
                s.late_events += 1  # that minute is closed (and scored) already
                return None
            m = s.open[key] = _Minute()
            s.videos.setdefault(video, _Video())
            heapq.heappush(s.due, (minute, video))
        return m

    def _close_due(self, position: int, view: BotDetectorView) -> None:
        s = self.state
        assert s.watermark is not None
        while s.due and s.due[0][0] * 60 + self._close_after <= s.watermark:
            minute, video = heapq.heappop(s.due)
            self._score(video, minute, s.open.pop((video, minute)), position, view)

    # -- the model --------------------------------------------------------------------------
    def vector(self, m: _Minute) -> dict[str, float]:
        """Features in [0, 1]: volume on a log scale capped at `view_cap`, the rest shares."""
        views = max(m.views, 1)
        cap = math.log1p(self.params.view_cap)
        return {
            "views": min(math.log1p(m.views) / cap, 1.0),
            "viewers": min(math.log1p(len(m.viewers)) / cap, 1.0),
            "repeat_share": 1.0 - len(m.viewers) / views if m.views else 0.0,
            "watch_fraction": m.watch_fraction / views,
            "completion_share": m.completions / views,
            "like_share": min(m.likes / views, 1.0),
            "other_source_share": m.other_source / views,
            "top_device_share": max(m.devices.values()) / views if m.devices else 0.0,
        }

    def _score(
        self, video: int, minute: int, m: _Minute, position: int, view: BotDetectorView
    ) -> None:
        s, p = self.state, self.params
        video_id = UUID(int=video)
        x = self.vector(m)
        # Score first, then learn. A minute with fewer than `min_views` views can never
        # alert, so it is not scored (its score is 0) — most organic minutes hold one or
        # two views, and scoring is half the model's cost — but it is still learned: it is
        # part of what normal traffic looks like.
        score = float(s.model.score_one(x)) if m.views >= p.min_views else 0.0
        s.model.learn_one(x)
        s.scored += 1
        v = s.videos[video]
        v.minutes += 1
        if v.minutes == 1 or score > v.max_score:
            v.max_score, v.max_minute = score, minute
        view.score(
            video_id, minute_at(minute), score, x,
            minutes=v.minutes, max_score=v.max_score, max_score_at=minute_at(v.max_minute),
        )  # fmt: skip
        if score < p.threshold or m.views < p.min_views:
            return
        if self._new_run(v, minute):  # a new campaign: one alert, keyed by its first minute
            s.alerts += 1
            view.raise_alert(self._alert(video_id, minute, m, x, score, position))

    def _new_run(self, v: _Video, minute: int, since: int | None = None) -> bool:
        """Anomalous evidence at `minute` (from events since `since`, a cohort's window):
        does it start a new run (and alert)? Not if the current run reaches into it."""
        new = v.run_until is None or (minute if since is None else since) > v.run_until
        v.run_until = max(v.run_until or minute, minute + self.params.run_gap_minutes - 1)
        return new

    def _cohort(self, c: CohortScore, position: int, view: BotDetectorView) -> None:
        s, p = self.state, self.params
        video_id = UUID(int=c.video)
        end = (c.slot + 1) * p.cohort_slot_minutes  # minutes since the epoch
        view.cohort(video_id, minute_at(end), c)
        if c.z < p.cohort_z:
            return
        v = s.videos.setdefault(c.video, _Video())
        if self._new_run(v, end, since=end - p.cohort_slot_minutes * p.cohort_window_slots):
            s.alerts += 1
            view.raise_alert(self._cohort_alert(video_id, end, c, position))

    def _alert(
        self, video_id: UUID, minute: int, m: _Minute, x: dict[str, float], score: float,
        position: int,
    ) -> Alert:  # fmt: skip
        assert self.state.watermark is not None
        start = minute_at(minute)
        return Alert(
            rule="bot_burst",
            source=self.name,
            subject_type="video",
            subject_id=str(video_id),
            window=start.strftime("%Y-%m-%dT%H:%MZ"),  # the run's first minute: one per burst
            severity="critical" if score >= self.params.critical_threshold else "warning",
            score=score,
            summary=(
                f"bot-like engagement: {m.views} views from {len(m.viewers)} viewers in the "
                f"minute from {start:%H:%M} UTC (anomaly score {score:.2f})"
            ),
            raised_at=datetime.fromtimestamp(self.state.watermark, UTC),  # detection time
            position=position,
            details={
                "stage": "minute",
                "minute": start.isoformat(),
                "views": m.views,
                "viewers": len(m.viewers),
                "likes": m.likes,
                "vector": x,
            },
            action="auto_flag",
        )

    def _cohort_alert(self, video_id: UUID, end: int, c: CohortScore, position: int) -> Alert:
        assert self.state.watermark is not None
        at, z = minute_at(end), self.params.cohort_z
        hours = self.params.cohort_slot_minutes * self.params.cohort_window_slots / 60
        return Alert(
            rule="bot_burst",
            source=self.name,
            subject_type="video",
            subject_id=str(video_id),
            window=at.strftime("%Y-%m-%dT%H:%MZ"),  # the slot's end: one per campaign
            severity="critical" if c.z >= 2 * z else "warning",
            score=c.z / (c.z + z),  # in [0, 1): 0.5 at the threshold
            summary=(
                f"coordinated new accounts: {c.flagged} new accounts watching mostly this "
                f"video ({c.repeated} of them again) among its {c.views} views in the "
                f"{hours:g} hours to {at:%H:%M} UTC (platform: {c.share:.2f} per view, "
                f"z {c.z:.1f})"
            ),
            raised_at=datetime.fromtimestamp(self.state.watermark, UTC),  # detection time
            position=position,
            details={"stage": "cohort", "slot_end": at.isoformat(), **c.features},
            action="auto_flag",
        )
