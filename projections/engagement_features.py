"""EngagementFeaturesProjection: online engagement features per video and per creator.

Velocity is an exponentially weighted event rate in event time: each view adds 1/τ and
the rate decays with exp(-Δt/τ), so `velocity` (τ = 10 min) follows bursts and
`baseline_velocity` (τ = 60 min) the trend; `acceleration` is their difference per hour.
An event older than the last one seen for the video adds its contribution already
decayed, so out-of-order delivery gives (nearly) the same rates. Ratios are plain
running counts; `follower_share` is the share of views from viewers who followed the
creator at the time of the view. State (rates, follow pairs) lives in memory and is
checkpointed with the position.
"""

import math
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.engagement import Engagement
from domain.following import Following
from domain.video import Video
from projections.base import Projection

FAST_TAU = 600.0  # seconds
SLOW_TAU = 3600.0


@dataclass
class Rate:
    """An exponentially decaying event rate (events per second) in event time."""

    tau: float
    value: float = 0.0
    at: float | None = None  # epoch seconds of the last update

    def add(self, t: float) -> None:
        if self.at is None or t >= self.at:
            if self.at is not None:
                self.value *= math.exp(-(t - self.at) / self.tau)
            self.value += 1.0 / self.tau
            self.at = t
        else:  # late event: its contribution has already decayed by now
            self.value += math.exp(-(self.at - t) / self.tau) / self.tau

    def at_time(self, t: float) -> float:
        if self.at is None:
            return 0.0
        return self.value * math.exp(-max(t - self.at, 0.0) / self.tau)


@dataclass
class Features:
    views: int = 0
    likes: int = 0
    shares: int = 0
    completions: int = 0
    follower_views: int = 0
    fast: Rate = field(default_factory=lambda: Rate(FAST_TAU))
    slow: Rate = field(default_factory=lambda: Rate(SLOW_TAU))

    def snapshot(self, now: float) -> dict[str, float]:
        views = max(self.views, 1)
        velocity = self.fast.at_time(now) * 3600
        baseline = self.slow.at_time(now) * 3600
        return {
            "views": float(self.views),
            "velocity": velocity,
            "baseline_velocity": baseline,
            "acceleration": velocity - baseline,
            "completion_rate": self.completions / views,
            "like_rate": self.likes / views,
            "share_rate": self.shares / views,
            "follower_share": self.follower_views / views,
        }


class EngagementFeaturesView(ABC):
    @abstractmethod
    def video_features(self, video_id: UUID, at: datetime, features: dict[str, float]) -> None: ...

    @abstractmethod
    def creator_features(
        self, creator_id: UUID, at: datetime, features: dict[str, float]
    ) -> None: ...


@dataclass
class FeatureState:
    videos: dict[UUID, Features] = field(default_factory=dict)
    creators: dict[UUID, Features] = field(default_factory=dict)
    creator_of: dict[UUID, UUID] = field(default_factory=dict)
    follow_pairs: dict[UUID, tuple[UUID, UUID]] = field(
        default_factory=dict
    )  # pair -> viewer, creator
    following: set[tuple[UUID, UUID]] = field(default_factory=set)


class EngagementFeaturesProjection(Projection[EngagementFeaturesView]):
    name = "engagement_features"
    topics = tuple(
        get_topic(cls)
        for cls in (
            Video.Published, Engagement.Viewed, Engagement.Liked, Engagement.Unliked,
            Engagement.Shared, Following.Started, Following.Followed, Following.Unfollowed,
        )
    )  # fmt: skip

    def __init__(self) -> None:
        self.state = FeatureState()

    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        self.state = pickle.loads(data) if data else FeatureState()  # our own checkpoint blob

    def process(self, event: Any, position: int, view: EngagementFeaturesView) -> None:
        s = self.state
        match event:
            case Video.Published():
                s.creator_of[event.originator_id] = event.creator_id
                s.videos[event.originator_id] = Features()
                s.creators.setdefault(event.creator_id, Features())
            case Following.Started():
                s.follow_pairs[event.originator_id] = (event.viewer_id, event.creator_id)
            case Following.Followed():
                s.following.add(s.follow_pairs[event.originator_id])
            case Following.Unfollowed():
                s.following.discard(s.follow_pairs[event.originator_id])
            case (
                Engagement.Viewed()
                | Engagement.Liked()
                | Engagement.Unliked()
                | Engagement.Shared()
            ):
                self._engagement(event, view)

    def _engagement(self, event: Any, view: EngagementFeaturesView) -> None:
        s = self.state
        creator = s.creator_of.get(event.video_id)
        if creator is None:
            return
        t = event.occurred_at.timestamp()
        for features in (s.videos[event.video_id], s.creators[creator]):
            match event:
                case Engagement.Viewed():
                    features.views += 1
                    features.completions += int(event.completed)
                    features.follower_views += int((event.viewer_id, creator) in s.following)
                    features.fast.add(t)
                    features.slow.add(t)
                case Engagement.Liked():
                    features.likes += 1
                case Engagement.Unliked():
                    features.likes -= 1
                case Engagement.Shared():
                    features.shares += 1
        view.video_features(event.video_id, event.occurred_at, s.videos[event.video_id].snapshot(t))
        view.creator_features(creator, event.occurred_at, s.creators[creator].snapshot(t))
