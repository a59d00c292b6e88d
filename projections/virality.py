"""ViralityProjection: will a video be viral 24 hours after publication? An online model.

One hour after a video's publication (in event time) the projection predicts, from what
it has seen so far, the probability that the video reaches VIRAL_VIEWS views within 24
hours. When 24 hours have passed (the event-time watermark), the label is known: the
progressive-validation metrics are updated with the earlier prediction (predict, then
learn: never scored on what it trained on) and the model learns. Delayed labels are
held in a heap ordered by due time. Time comes only from events, the model is seeded and
its state is checkpointed with the projection's position, so a restart or a rebuild
gives identical predictions.
"""

import heapq
import math
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from river import compose, linear_model, optim, preprocessing

from domain.engagement import Engagement
from domain.following import Following
from domain.video import Video
from projections.base import Projection
from projections.progressive import ProgressiveScore

VIRAL_VIEWS = 30  # about the top 6 % of videos by 24-hour views in the demo workload
PREDICT_AFTER = timedelta(hours=1)
LABEL_AFTER = timedelta(hours=24)
MODEL = "virality"
BASELINE = "virality_base_rate"


class ViralityView(ABC):
    @abstractmethod
    def prediction(
        self, video_id: UUID, at: datetime, probability: float, features: dict[str, float]
    ) -> None: ...

    @abstractmethod
    def label(self, video_id: UUID, at: datetime, viral: bool, views_24h: int) -> None: ...

    @abstractmethod
    def metric(self, model: str, name: str, value: float, samples: int) -> None: ...


@dataclass
class _VideoWindow:
    creator_id: UUID
    published_at: datetime
    views: int = 0
    likes: int = 0
    shares: int = 0
    comments: int = 0
    completions: int = 0
    viewers: set[UUID] = field(default_factory=set)
    features: dict[str, float] | None = None
    probability: float | None = None


@dataclass
class _CreatorHistory:
    followers: int = 0
    videos: int = 0
    views_24h: int = 0
    viral: int = 0


def new_model() -> Any:
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.05)),
    )


@dataclass
class ViralityState:
    model: Any = field(default_factory=new_model)
    score: ProgressiveScore = field(default_factory=ProgressiveScore)
    watermark: datetime | None = None
    videos: dict[UUID, _VideoWindow] = field(default_factory=dict)
    creators: dict[UUID, _CreatorHistory] = field(default_factory=dict)
    follow_pairs: dict[UUID, UUID] = field(default_factory=dict)
    due: list[tuple[datetime, int, str, UUID]] = field(default_factory=list)
    seq: int = 0


class ViralityProjection(Projection[ViralityView]):
    name = "virality"
    topics = tuple(
        get_topic(cls)
        for cls in (
            Video.Published, Engagement.Viewed, Engagement.Liked, Engagement.Shared,
            Engagement.Commented, Following.Started, Following.Followed, Following.Unfollowed,
        )
    )  # fmt: skip

    def __init__(self) -> None:
        self.state = ViralityState()

    # -- checkpointing (with the position, in the projection's transaction) ---------------
    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        self.state = pickle.loads(data) if data else ViralityState()  # our own checkpoint blob

    # -- events ---------------------------------------------------------------------------
    def process(self, event: Any, position: int, view: ViralityView) -> None:
        s = self.state
        # Advance event time first: predictions and labels due before this event are made
        # from what happened strictly before it (the first hour is [publish, publish + 1h)).
        when = getattr(event, "occurred_at", None)
        if when is not None and (s.watermark is None or when > s.watermark):
            s.watermark = when
            self._run_due(view)
        match event:
            case Video.Published():
                s.videos[event.originator_id] = _VideoWindow(event.creator_id, event.occurred_at)
                self._schedule(event.occurred_at + PREDICT_AFTER, "predict", event.originator_id)
                self._schedule(event.occurred_at + LABEL_AFTER, "label", event.originator_id)
            case Engagement.Viewed():
                w = self._window(event.video_id, event.occurred_at)
                if w is not None:
                    w.views += 1
                    w.completions += int(event.completed)
                    w.viewers.add(event.viewer_id)
            case Engagement.Liked() | Engagement.Shared() | Engagement.Commented():
                w = self._window(event.video_id, event.occurred_at)
                if w is not None:
                    attr = {Engagement.Liked: "likes", Engagement.Shared: "shares"}.get(
                        type(event), "comments"
                    )
                    setattr(w, attr, getattr(w, attr) + 1)
            case Following.Started():
                s.follow_pairs[event.originator_id] = event.creator_id
            case Following.Followed() | Following.Unfollowed():
                creator = s.follow_pairs.get(event.originator_id)
                if creator is not None:
                    h = s.creators.setdefault(creator, _CreatorHistory())
                    h.followers += 1 if isinstance(event, Following.Followed) else -1

    def _window(self, video_id: UUID, when: datetime) -> _VideoWindow | None:
        w = self.state.videos.get(video_id)
        if w is None or when >= w.published_at + LABEL_AFTER:
            return None  # unknown, or outside its 24-hour window
        return w

    def _schedule(self, due: datetime, kind: str, video_id: UUID) -> None:
        self.state.seq += 1
        heapq.heappush(self.state.due, (due, self.state.seq, kind, video_id))

    def _run_due(self, view: ViralityView) -> None:
        s = self.state
        while s.due and s.watermark is not None and s.due[0][0] <= s.watermark:
            due, _, kind, video_id = heapq.heappop(s.due)
            w = s.videos.get(video_id)
            if w is None:
                continue
            if kind == "predict":
                self._predict(video_id, w, due, view)
            else:
                self._label(video_id, w, due, view)

    def features(self, w: _VideoWindow) -> dict[str, float]:
        h = self.state.creators.get(w.creator_id, _CreatorHistory())
        views = max(w.views, 1)
        published = w.published_at.astimezone(UTC)
        hour = (published.hour + published.minute / 60) / 24 * 2 * math.pi
        return {
            "log_views_1h": math.log1p(w.views),
            "log_viewers_1h": math.log1p(len(w.viewers)),
            "like_rate_1h": w.likes / views,
            "share_rate_1h": w.shares / views,
            "completion_rate_1h": w.completions / views,
            "log_creator_followers": math.log1p(max(h.followers, 0)),
            "log_creator_avg_views": math.log1p(h.views_24h / h.videos) if h.videos else 0.0,
            "creator_viral_rate": h.viral / h.videos if h.videos else 0.0,
            # Time of day of publication (UTC): traffic is diurnal, so a video published
            # before the evening peak collects more of its first day's views.
            "publish_hour_sin": math.sin(hour),
            "publish_hour_cos": math.cos(hour),
        }

    def _predict(self, video_id: UUID, w: _VideoWindow, at: datetime, view: ViralityView) -> None:
        x = self.features(w)
        p = float(self.state.model.predict_proba_one(x).get(True, 0.5))
        w.features, w.probability = x, p
        view.prediction(video_id, at, p, x)

    def _label(self, video_id: UUID, w: _VideoWindow, at: datetime, view: ViralityView) -> None:
        s = self.state
        viral = w.views >= VIRAL_VIEWS
        if w.features is not None and w.probability is not None:
            # Progressive validation: score the earlier prediction, then learn.
            s.score.update(viral, w.probability)
            s.model.learn_one(w.features, viral)
            s.score.report(view.metric, MODEL, BASELINE)
        h = s.creators.setdefault(w.creator_id, _CreatorHistory())
        h.videos += 1
        h.views_24h += w.views
        h.viral += int(viral)
        view.label(video_id, at, viral, w.views)
        del s.videos[video_id]
