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
from collections.abc import Callable
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
    def metric(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None:
        """`value()` is the figure now; valid until the next call for the same metric, so a
        view evaluates only the batch's last call per metric, when it writes."""


# A video's first 24 hours, a plain list (the state holds one per video in flight and is
# pickled at every checkpoint). Times are epoch seconds of event time: comparisons of
# datetime.timestamp() values order exactly as the datetimes do (microseconds < 1 ulp).
(CREATOR, HOUR, LABEL_DUE, VIEWS, LIKES, SHARES, COMMENTS, COMPLETIONS, VIEWERS, FEATURES,
 PROBABILITY) = range(11)  # fmt: skip
Window = list[Any]
# A creator's history: followers, labelled videos, their 24-hour views, viral ones.
FOLLOWERS, VIDEOS, VIEWS_24H, VIRAL = range(4)
PREDICT, LABEL = "predict", "label"


def new_model() -> Any:
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.05)),
    )


@dataclass
class ViralityState:
    model: Any = field(default_factory=new_model)
    score: ProgressiveScore = field(default_factory=ProgressiveScore)
    watermark: float | None = None  # epoch seconds
    videos: dict[int, Window] = field(default_factory=dict)  # by video_id.int
    creators: dict[int, list[int]] = field(default_factory=dict)  # by creator_id.int
    follow_pairs: dict[int, int] = field(default_factory=dict)  # pair -> creator
    due: list[tuple[float, int, str, int]] = field(default_factory=list)  # (at, seq, kind, video)
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
        self._handlers: dict[type, Callable[[Any], None]] = {
            Video.Published: self._published,
            Engagement.Viewed: self._viewed,
            Engagement.Liked: self._counted(LIKES),
            Engagement.Shared: self._counted(SHARES),
            Engagement.Commented: self._counted(COMMENTS),
            Following.Started: self._follow_started,
            Following.Followed: self._followers(+1),
            Following.Unfollowed: self._followers(-1),
        }

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
        t = event.occurred_at.timestamp()
        if s.watermark is None or t > s.watermark:
            s.watermark = t
            if s.due and s.due[0][0] <= t:
                self._run_due(view)
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _published(self, event: Video.Published) -> None:
        published = event.occurred_at
        utc = published.astimezone(UTC)
        hour = (utc.hour + utc.minute / 60) / 24 * 2 * math.pi
        label_due = (published + LABEL_AFTER).timestamp()
        video = event.originator_id.int
        self.state.videos[video] = [
            event.creator_id.int,
            hour,
            label_due,
            0,
            0,
            0,
            0,
            0,
            set(),
            None,
            None,
        ]
        self._schedule((published + PREDICT_AFTER).timestamp(), PREDICT, video)
        self._schedule(label_due, LABEL, video)

    def _viewed(self, event: Engagement.Viewed) -> None:
        w = self._window(event)
        if w is not None:
            w[VIEWS] += 1
            w[COMPLETIONS] += int(event.completed)
            w[VIEWERS].add(event.viewer_id.int)

    def _counted(self, slot: int) -> Callable[[Any], None]:
        def count(event: Any) -> None:
            w = self._window(event)
            if w is not None:
                w[slot] += 1

        return count

    def _follow_started(self, event: Following.Started) -> None:
        self.state.follow_pairs[event.originator_id.int] = event.creator_id.int

    def _followers(self, delta: int) -> Callable[[Any], None]:
        def follow(event: Any) -> None:
            creator = self.state.follow_pairs.get(event.originator_id.int)
            if creator is not None:
                self._creator(creator)[FOLLOWERS] += delta

        return follow

    def _window(self, event: Any) -> Window | None:
        w = self.state.videos.get(event.video_id.int)
        if w is None or event.occurred_at.timestamp() >= w[LABEL_DUE]:
            return None  # unknown, or outside its 24-hour window
        return w

    def _creator(self, creator: int) -> list[int]:
        h = self.state.creators.get(creator)
        if h is None:
            h = self.state.creators[creator] = [0, 0, 0, 0]
        return h

    def _schedule(self, due: float, kind: str, video: int) -> None:
        self.state.seq += 1
        heapq.heappush(self.state.due, (due, self.state.seq, kind, video))

    def _run_due(self, view: ViralityView) -> None:
        s = self.state
        while s.due and s.watermark is not None and s.due[0][0] <= s.watermark:
            due, _, kind, video = heapq.heappop(s.due)
            w = s.videos.get(video)
            if w is None:
                continue
            at = datetime.fromtimestamp(due, UTC)
            if kind == PREDICT:
                self._predict(video, w, at, view)
            else:
                self._label(video, w, at, view)

    def features(self, w: Window) -> dict[str, float]:
        h = self.state.creators.get(w[CREATOR]) or [0, 0, 0, 0]
        views = max(w[VIEWS], 1)
        videos = h[VIDEOS]
        return {
            "log_views_1h": math.log1p(w[VIEWS]),
            "log_viewers_1h": math.log1p(len(w[VIEWERS])),
            "like_rate_1h": w[LIKES] / views,
            "share_rate_1h": w[SHARES] / views,
            "completion_rate_1h": w[COMPLETIONS] / views,
            "log_creator_followers": math.log1p(max(h[FOLLOWERS], 0)),
            "log_creator_avg_views": math.log1p(h[VIEWS_24H] / videos) if videos else 0.0,
            "creator_viral_rate": h[VIRAL] / videos if videos else 0.0,
            # Time of day of publication (UTC): traffic is diurnal, so a video published
            # before the evening peak collects more of its first day's views.
            "publish_hour_sin": math.sin(w[HOUR]),
            "publish_hour_cos": math.cos(w[HOUR]),
        }

    def _predict(self, video: int, w: Window, at: datetime, view: ViralityView) -> None:
        x = self.features(w)
        p = float(self.state.model.predict_proba_one(x).get(True, 0.5))
        w[FEATURES], w[PROBABILITY] = x, p
        view.prediction(UUID(int=video), at, p, x)

    def _label(self, video: int, w: Window, at: datetime, view: ViralityView) -> None:
        s = self.state
        viral = w[VIEWS] >= VIRAL_VIEWS
        if w[FEATURES] is not None and w[PROBABILITY] is not None:
            # Progressive validation: score the earlier prediction, then learn.
            s.score.update(viral, w[PROBABILITY])
            s.model.learn_one(w[FEATURES], viral)
            s.score.report(view.metric, MODEL, BASELINE)
        h = self._creator(w[CREATOR])
        h[VIDEOS] += 1
        h[VIEWS_24H] += w[VIEWS]
        h[VIRAL] += int(viral)
        view.label(UUID(int=video), at, viral, w[VIEWS])
        del s.videos[video]
