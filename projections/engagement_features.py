"""EngagementFeaturesProjection: online engagement features per video and per creator.

Velocity is an exponentially weighted event rate in event time: each view adds 1/τ and
the rate decays with exp(-Δt/τ), so `velocity` (τ = 10 min) follows bursts and
`baseline_velocity` (τ = 60 min) the trend; `acceleration` is their difference per hour.
An event older than the last one seen for the video adds its contribution already
decayed, so out-of-order delivery gives (nearly) the same rates. Ratios are plain
running counts; `follower_share` is the share of views from viewers who followed the
creator at the time of the view. State (rates, follow pairs) lives in memory and is
checkpointed with the position.

Per event the projection only updates counters and rates; the features (the output) are
computed by `snapshot` when the view writes, once per video and creator per batch, from
the record as the batch's last event for that key left it. The view is given the function
and its plain arguments, not a closure: a view holds one entry per key until flush, and
a closure per key would be thousands of objects for the garbage collector to track and
promote, where a tuple of plain values is untracked.
"""

import math
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable
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

# A record (per video, per creator) is a plain list: the state holds thousands of them
# and is pickled at every checkpoint. Slots: counts, then each rate's value (events per
# second) and the epoch seconds of its last update (None before the first).
VIEWS, LIKES, SHARES, COMPLETIONS, FOLLOWER_VIEWS, FAST, FAST_AT, SLOW, SLOW_AT = range(9)
Record = list[Any]
Snapshot = Callable[[int, float], dict[str, float]]  # (key as UUID.int, epoch seconds)


def new_record() -> Record:
    return [0, 0, 0, 0, 0, 0.0, None, 0.0, None]


def add_rate(r: Record, slot: int, tau: float, t: float) -> None:
    """One event at epoch seconds `t` into the rate at `slot` (its time at `slot + 1`)."""
    at = r[slot + 1]
    if at is None or t >= at:
        if at is not None:
            r[slot] *= math.exp(-(t - at) / tau)
        r[slot] += 1.0 / tau
        r[slot + 1] = t
    else:  # late event: its contribution has already decayed by now
        r[slot] += math.exp(-(at - t) / tau) / tau


def rate_at(r: Record, slot: int, tau: float, t: float) -> float:
    at = r[slot + 1]
    if at is None:
        return 0.0
    return r[slot] * math.exp(-max(t - at, 0.0) / tau)


def snapshot(r: Record, now: float) -> dict[str, float]:
    views = max(r[VIEWS], 1)
    velocity = rate_at(r, FAST, FAST_TAU, now) * 3600
    baseline = rate_at(r, SLOW, SLOW_TAU, now) * 3600
    return {
        "views": float(r[VIEWS]),
        "velocity": velocity,
        "baseline_velocity": baseline,
        "acceleration": velocity - baseline,
        "completion_rate": r[COMPLETIONS] / views,
        "like_rate": r[LIKES] / views,
        "share_rate": r[SHARES] / views,
        "follower_share": r[FOLLOWER_VIEWS] / views,
    }


class EngagementFeaturesView(ABC):
    """`features(key, t)` gives the features as of the event at `at`; the result stays the
    same until the projection changes that video (creator) again, which it reports with
    another call. So a view keeps the last call per id and calls `features` once, when it
    writes (at flush)."""

    @abstractmethod
    def video_features(
        self, video_id: UUID, at: datetime, features: Snapshot, key: int, t: float
    ) -> None: ...

    @abstractmethod
    def creator_features(
        self, creator_id: UUID, at: datetime, features: Snapshot, key: int, t: float
    ) -> None: ...


@dataclass
class FeatureState:
    # Keyed by UUID.int: ints hash and pickle many times faster than UUID objects.
    videos: dict[int, Record] = field(default_factory=dict)
    creators: dict[int, Record] = field(default_factory=dict)
    creator_of: dict[int, int] = field(default_factory=dict)  # video -> creator
    follow_pairs: dict[int, tuple[int, int]] = field(default_factory=dict)  # viewer, creator
    following: set[tuple[int, int]] = field(default_factory=set)  # (viewer, creator)


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
        self._creator_ids: dict[int, UUID] = {}  # a cache, not state: UUID(int=) per event is slow
        # Bound once: attribute access would make a new bound method per event.
        self._video_snapshot: Snapshot = self.video_snapshot
        self._creator_snapshot: Snapshot = self.creator_snapshot
        self._handlers: dict[type, Callable[[Any, EngagementFeaturesView], None]] = {
            Video.Published: self._published,
            Following.Started: self._follow_started,
            Following.Followed: self._followed,
            Following.Unfollowed: self._unfollowed,
            Engagement.Viewed: self._viewed,
            Engagement.Liked: self._counted(LIKES, +1),
            Engagement.Unliked: self._counted(LIKES, -1),
            Engagement.Shared: self._counted(SHARES, +1),
        }

    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        self.state = pickle.loads(data) if data else FeatureState()  # our own checkpoint blob

    def process(self, event: Any, position: int, view: EngagementFeaturesView) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event, view)

    # -- catalogue and follows ------------------------------------------------------------
    def _published(self, event: Video.Published, view: EngagementFeaturesView) -> None:
        s, creator = self.state, event.creator_id.int
        s.creator_of[event.originator_id.int] = creator
        s.videos[event.originator_id.int] = new_record()
        if creator not in s.creators:
            s.creators[creator] = new_record()

    def _follow_started(self, event: Following.Started, view: EngagementFeaturesView) -> None:
        pair = (event.viewer_id.int, event.creator_id.int)
        self.state.follow_pairs[event.originator_id.int] = pair

    def _followed(self, event: Following.Followed, view: EngagementFeaturesView) -> None:
        self.state.following.add(self.state.follow_pairs[event.originator_id.int])

    def _unfollowed(self, event: Following.Unfollowed, view: EngagementFeaturesView) -> None:
        self.state.following.discard(self.state.follow_pairs[event.originator_id.int])

    # -- engagement -------------------------------------------------------------------------
    def _viewed(self, event: Engagement.Viewed, view: EngagementFeaturesView) -> None:
        s, video = self.state, event.video_id.int
        creator = s.creator_of.get(video)
        if creator is None:
            return
        t = event.occurred_at.timestamp()
        fan = (event.viewer_id.int, creator) in s.following
        for r in (s.videos[video], s.creators[creator]):
            r[VIEWS] += 1
            r[COMPLETIONS] += int(event.completed)
            r[FOLLOWER_VIEWS] += int(fan)
            add_rate(r, FAST, FAST_TAU, t)
            add_rate(r, SLOW, SLOW_TAU, t)
        self._changed(event, creator, t, view)

    def _counted(self, slot: int, delta: int) -> Callable[[Any, EngagementFeaturesView], None]:
        def count(event: Any, view: EngagementFeaturesView) -> None:
            s = self.state
            creator = s.creator_of.get(event.video_id.int)
            if creator is None:
                return
            s.videos[event.video_id.int][slot] += delta
            s.creators[creator][slot] += delta
            self._changed(event, creator, event.occurred_at.timestamp(), view)

        return count

    def _changed(self, event: Any, creator: int, t: float, view: EngagementFeaturesView) -> None:
        creator_id = self._creator_ids.get(creator)
        if creator_id is None:
            creator_id = self._creator_ids[creator] = UUID(int=creator)
        at = event.occurred_at
        view.video_features(event.video_id, at, self._video_snapshot, event.video_id.int, t)
        view.creator_features(creator_id, at, self._creator_snapshot, creator, t)

    # -- outputs (called by views at flush) -------------------------------------------------
    def video_snapshot(self, video: int, t: float) -> dict[str, float]:
        return snapshot(self.state.videos[video], t)

    def creator_snapshot(self, creator: int, t: float) -> dict[str, float]:
        return snapshot(self.state.creators[creator], t)
