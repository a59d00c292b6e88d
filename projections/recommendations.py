"""RecommendationsProjection: one ranked list per viewer, by one score (reco_taste.py).

A viewer's list ranks candidates by one score on one scale: the video's event-time
decaying view rate (popularity), times the viewer's taste lift for its hashtags raised to
a taste weight, times a boost when the viewer follows its creator (see reco_taste.py).
What the projection keeps for it: per-viewer hashtag view counts, every hashtag's share of
all views, per-viewer seen sets, follow relations, video availability (restricted,
removed or deleted videos are never recommended) and the view rates.

Candidates come from bounded pools, so a list costs the same whatever the catalogue
size: the most popular videos (refreshed every few minutes of event time from the
previous pool plus the videos viewed since), the newest videos, each hashtag's most
popular videos (refreshed alike; a viewer draws on its strongest few hashtags) and the
latest videos of the creators the viewer follows.

Progressive validation (predict, then learn): every `sample_every`-th view, before the
projection learns from it, checks whether the watched video was in the served top-K
(the hit rate; the popularity arm's is the baseline's). The same check for each weight
in `taste_weights` trains a river bandit with full feedback (the view answers for every
arm); the read path's `explore` lets it draw the taste weight. The served weight itself
is a parameter, tuned on the tuning seed: the bandit's own evidence includes bots'
views, which favour popularity.

Besides, river's BiasedMF learns in event time from implicit ratings (a view rates the
video by its watch fraction, a like is 1.0) and reports its progressive error (MAE/RMSE
against the running mean rating): the expected watch fraction of a video for a viewer.
It is not part of the list's score: on the workload, which videos people pick does not
depend on how much of them they watch.

Ids are interned to small ints (cheap to pickle and hash), all state lives in one
pickled dataclass checkpointed with the position, time comes from events and every
random choice from seeded generators in that state: a restart or a rebuild reproduces
every output exactly.

Per event the projection learns and keeps its counters; the rows it reports (an item's
or a viewer's, the error metrics) are callables that the view evaluates once per key per
batch, when it writes: they read the state as the batch's last event for that key left
it (the rating model's learning step is in reco_model.py).

The rows hold what the read path needs to serve exactly the list `recommend` makes as of
the batch's end: a viewer's views per hashtag (not its lifts, which move with every
hashtag's share), every hashtag's views and interned index (`hashtag`), and the shared
row (`shared`): the event-time watermark, the tagged views and the candidate pools.
"""

import collections
import copy
import heapq
import math
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np
from eventsourcing.utils import get_topic
from river import bandit, metrics, optim, proba, reco, stats

from domain.engagement import Engagement
from domain.erasure import Erasure
from domain.following import Following
from domain.video import Video
from projections import reco_taste
from projections.base import Projection
from projections.reco_model import add_error, learn, predict, predict_dot

MODEL = "recommendations"
BASELINE = "recommendations_baseline"
SOURCES = ("personal", "trending", "following")  # the reasons an item is listed for
POPULAR, RECENT = "", "#"  # pool names that no hashtag has (hashtags are words)
BANDIT_NAME = "taste_weight"
ERASED_VIEWER = UUID(int=0)  # stands in for a forgotten viewer in the interned ids


@dataclass(frozen=True)
class RecommendationParams:
    n_factors: int = 8
    bias_lr: float = 0.02
    latent_lr: float = 0.05
    l2_bias: float = 0.001
    l2_latent: float = 0.01
    like_rating: float = 1.0  # a like is a full-strength positive on the [0, 1] scale
    seed: int = 42
    # Popularity: the view rate with a short memory (what is hot now; tuned on seed 42).
    popularity_tau_seconds: float = 1300.0
    pool_size: int = 100  # popular candidates kept between refreshes
    recent_size: int = 50  # newest available videos, so fresh ones can be recommended
    tag_pool_size: int = 20  # popular candidates kept per hashtag
    taste_tags: int = 3  # a viewer's strongest hashtags whose pools join its candidates
    pool_refresh_seconds: float = 600.0
    follow_videos_per_creator: int = 3
    top_k: int = 10
    sample_every: int = 20  # views between hit-rate checks (the bandit's feedback)
    # The score (reco_taste.py): smoothing in views, views/hour floor, follow boost.
    taste_smoothing: float = 2.0
    popularity_floor: float = 0.05
    follow_boost: float = 1.0
    taste_weight: float = 1.0  # the served lists' (tuned on seed 42)
    # The bandit's arms for explore: taste weights (0: popularity alone).
    taste_weights: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    # Thompson sampling (Beta posteriors) by default; explore draws an arm from it.
    bandit: str = "thompson"  # thompson | ucb | epsilon
    ucb_delta: float = 0.5
    epsilon: float = 0.1

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(arm_name(w) for w in self.taste_weights)


def arm_name(weight: float) -> str:
    return f"taste^{weight:g}"


DEFAULT_PARAMS = RecommendationParams()


def decayed(value: float, since: float, now: float, tau: float) -> float:
    return value * math.exp(-max(now - since, 0.0) / tau)


class ItemRow(NamedTuple):
    creator_id: UUID
    published_at: datetime
    bias: float  # the rating model's item bias (how much of it people watch)
    topics: dict[str, float]  # hashtag -> 1/k for its k hashtags
    popularity: float  # views per hour at the row's event time
    position: int  # the video's interned index: ties in a list go to the lower


class ViewerRow(NamedTuple):
    tagged: float  # the viewer's tagged views (n in reco_taste.lifts)
    counts: dict[str, float]  # hashtag -> the viewer's views of it (1/k per video)


class SharedRow(NamedTuple):
    """What every list reads besides the video's and the viewer's rows, as of `now`."""

    now: datetime  # the event-time watermark: popularities decay to it
    total: float  # all tagged views
    pools: dict[str, list[UUID]]  # candidate pools: POPULAR, RECENT, hashtag -> its popular


class Recommendation(NamedTuple):
    video_id: UUID
    score: float
    source: str  # personal | trending | following: what lifted it


class RecommendationsView(ABC):
    """`item`, `viewer` and `metric` end with a callable and its arguments: the row (value)
    as of the event at `at`, the same until the projection reports that key again. A view
    keeps the last call per key and makes the call once, when it writes (at flush). Plain
    arguments rather than closures: pending entries then stay out of the garbage
    collector's way."""

    @abstractmethod
    def item(
        self, video_id: UUID, at: datetime, row: Callable[[int, float], ItemRow], i: int,
        t: float,
    ) -> None: ...  # fmt: skip

    @abstractmethod
    def viewer(
        self, viewer_id: UUID, at: datetime, row: Callable[[int], ViewerRow], u: int
    ) -> None: ...

    @abstractmethod
    def hashtag(self, name: str, position: int, views: float) -> None:
        """The hashtag's views so far (1/k per view of a video with k hashtags) and its
        interned index (the order in which strongest hashtags tie)."""

    @abstractmethod
    def shared(self, at: datetime, row: Callable[[], SharedRow]) -> None:
        """The watermark, the tagged views and the candidate pools, as the batch's last
        event left them (the latest call wins)."""

    @abstractmethod
    def seen(self, viewer_id: UUID, video_id: UUID) -> None: ...

    @abstractmethod
    def bandit(
        self, name: str, at: datetime, row: Callable[[], tuple[bytes, dict[str, dict[str, float]]]]
    ) -> None:
        """The policy (pickled) and its arms' statistics, as of `at` (the latest call wins)."""

    @abstractmethod
    def metric(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None: ...

    @abstractmethod
    def forget_viewer(self, viewer_id: UUID) -> None:
        """Drop the viewer's rows (taste, seen pairs), including ones not yet written."""


def new_model(p: RecommendationParams) -> Any:
    return reco.BiasedMF(
        n_factors=p.n_factors,
        bias_optimizer=optim.SGD(p.bias_lr),
        latent_optimizer=optim.SGD(p.latent_lr),
        l2_bias=p.l2_bias,
        l2_latent=p.l2_latent,
        latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=p.seed),
        seed=p.seed,
    )


def new_policy(p: RecommendationParams) -> Any:
    if p.bandit == "epsilon":
        return bandit.EpsilonGreedy(epsilon=p.epsilon, seed=p.seed)
    if p.bandit == "ucb":
        return bandit.UCB(delta=p.ucb_delta, seed=p.seed)
    # The prototype posterior is seeded too: it is pickled with the policy (clones get seeds).
    return bandit.ThompsonSampling(reward_obj=proba.Beta(seed=p.seed), seed=p.seed)


def arm_value(reward: Any) -> float:
    """An arm's expected reward, whether river keeps it as a statistic or a Beta posterior."""
    if isinstance(reward, proba.Beta):
        return reward.alpha / (reward.alpha + reward.beta)
    return float(reward.get())


@dataclass
class RecoState:
    model: Any
    policy: Any
    mae: Any = field(default_factory=metrics.MAE)
    rmse: Any = field(default_factory=metrics.RMSE)
    base_mae: Any = field(default_factory=metrics.MAE)
    base_rmse: Any = field(default_factory=metrics.RMSE)
    base_mean: Any = field(default_factory=stats.Mean)  # the trivial model: mean rating so far
    views: int = 0
    samples: int = 0
    hits: dict[str, int] = field(default_factory=dict)  # per arm, and "served"
    # Ids are UUID.int (an int hashes and pickles many times faster than a UUID).
    # videos, by interned index (publication order)
    video_ids: list[int] = field(default_factory=list)
    video_index: dict[int, int] = field(default_factory=dict)
    creator_of: list[int] = field(default_factory=list)
    published: list[float] = field(default_factory=list)  # epoch seconds: cheap to pickle
    duration: list[float] = field(default_factory=list)
    pop_value: list[float] = field(default_factory=list)  # views/s at pop_at
    pop_at: list[float] = field(default_factory=list)
    unavailable: set[int] = field(default_factory=set)  # restricted, removed or deleted
    creator_ids: list[int] = field(default_factory=list)
    creator_index: dict[int, int] = field(default_factory=dict)
    creator_videos: dict[int, list[int]] = field(default_factory=dict)
    # hashtags, interned; each video's; their share of all tagged views
    tag_names: list[str] = field(default_factory=list)
    tag_index: dict[str, int] = field(default_factory=dict)
    video_tags: list[tuple[int, ...]] = field(default_factory=list)
    tag_views: list[float] = field(default_factory=list)
    tag_total: float = 0.0
    # viewers (a forgotten viewer's id becomes ERASED_VIEWER.int; its index stays taken)
    viewer_ids: list[int] = field(default_factory=list)
    viewer_index: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[int]] = field(default_factory=dict)
    taste: dict[int, dict[int, float]] = field(default_factory=dict)  # viewer: tag: views
    tasted: dict[int, float] = field(default_factory=dict)  # viewer: tagged views
    follow_pairs: dict[int, tuple[int, int]] = field(default_factory=dict)  # viewer, creator
    following: dict[int, dict[int, None]] = field(default_factory=dict)  # ordered sets
    # bounded candidate pools
    pool: list[int] = field(default_factory=list)
    tag_pools: dict[int, list[int]] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)
    recent: list[int] = field(default_factory=list)
    pool_at: float = -math.inf
    now: float = -math.inf  # event-time watermark (epoch seconds)

    # Thousands of small numpy vectors pickle one by one; packed they are one buffer each.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        model = copy.copy(self.model)  # shallow: shares optimisers and the initialiser
        for attr in ("u_latents", "i_latents"):
            latents = getattr(self.model, attr)
            keys = list(latents)
            matrix = np.stack(list(latents.values())) if keys else None
            state[attr] = (keys, matrix)
            setattr(model, attr, collections.defaultdict(latents.default_factory))
        state["model"] = model
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for attr in ("u_latents", "i_latents"):
            keys, matrix = state.pop(attr)
            latents = getattr(state["model"], attr)
            for k, key in enumerate(keys):
                latents[key] = matrix[k].copy()
        self.__dict__.update(state)


class RecommendationsProjection(Projection[RecommendationsView]):
    name = "recommendations"
    version = 3  # the reader ranks as the projection: per-hashtag views, pools (issue 17)
    topics = tuple(
        get_topic(cls)
        for cls in (
            Video.Published, Video.CaptionEdited, Video.Restricted, Video.Removed,
            Video.Restored, Video.DeletedByCreator, Engagement.Viewed, Engagement.Liked,
            Following.Started, Following.Followed, Following.Unfollowed,
            Erasure.ViewerForgotten,
        )
    )  # fmt: skip

    def __init__(self, params: RecommendationParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self.arms = params.arms
        self.state = self._new_state()
        # Each handler gets the event, its time (epoch seconds) and the view.
        self._handlers: dict[type, Callable[[Any, float, RecommendationsView], None]] = {
            Engagement.Viewed: self._viewed,
            Engagement.Liked: self._liked,
            Video.Published: self._published,
            Video.CaptionEdited: self._caption_edited,
            Video.Restricted: self._unavailable,
            Video.Removed: self._unavailable,
            Video.DeletedByCreator: self._unavailable,
            Video.Restored: self._restored,
            Following.Started: self._follow_started,
            Following.Followed: self._followed,
            Following.Unfollowed: self._unfollowed,
            Erasure.ViewerForgotten: self._forget,
        }
        # Bound once: attribute access would make a new bound method per event.
        self._item_row: Callable[[int, float], ItemRow] = self.item_row
        self._viewer_row: Callable[[int], ViewerRow] = self.viewer_row
        self._shared_row: Callable[[], SharedRow] = self.shared_row
        self._uuids: list[UUID] = []  # video ids by interned index, made once (not state)

    def _new_state(self) -> RecoState:
        hits = dict.fromkeys((*self.arms, "served"), 0)
        return RecoState(model=new_model(self.params), policy=new_policy(self.params), hits=hits)

    # -- checkpointing (with the position, in the projection's transaction) ---------------
    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        self.state = pickle.loads(data) if data else self._new_state()  # our own checkpoint
        self._uuids = []

    # -- events ---------------------------------------------------------------------------
    def process(self, event: Any, position: int, view: RecommendationsView) -> None:
        s = self.state
        t = event.occurred_at.timestamp()
        if t > s.now:
            s.now = t
            if t - s.pool_at >= self.params.pool_refresh_seconds:
                self._refresh_pools(t)
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event, t, view)
        view.shared(event.occurred_at, self._shared_row)

    def _published(self, event: Video.Published, t: float, view: RecommendationsView) -> None:
        s = self.state
        if event.originator_id.int in s.video_index:
            return
        i = len(s.video_ids)
        c = self._creator(event.creator_id)
        s.video_ids.append(event.originator_id.int)
        s.video_index[event.originator_id.int] = i
        s.creator_of.append(c)
        s.published.append(t)
        s.duration.append(max(event.duration_seconds, 0.1))
        s.pop_value.append(0.0)
        s.pop_at.append(t)
        s.video_tags.append(self._tags(event.hashtags, view))
        s.creator_videos.setdefault(c, []).append(i)
        s.recent.append(i)
        del s.recent[: -self.params.recent_size]
        view.item(event.originator_id, event.occurred_at, self._item_row, i, t)

    def _caption_edited(
        self, event: Video.CaptionEdited, t: float, view: RecommendationsView
    ) -> None:
        """New hashtags count for the views from now on (past views keep what they were)."""
        s = self.state
        if (i := s.video_index.get(event.originator_id.int)) is not None:
            s.video_tags[i] = self._tags(event.hashtags, view)
            view.item(event.originator_id, event.occurred_at, self._item_row, i, t)

    def _tags(self, hashtags: list[str], view: RecommendationsView) -> tuple[int, ...]:
        s, out = self.state, []
        for name in dict.fromkeys(hashtags):
            tag = s.tag_index.get(name)
            if tag is None:
                tag = s.tag_index[name] = len(s.tag_names)
                s.tag_names.append(name)
                s.tag_views.append(0.0)
                view.hashtag(name, tag, 0.0)  # it counts among the hashtags (lifts)
            out.append(tag)
        return tuple(out)

    def _unavailable(self, event: Any, t: float, view: RecommendationsView) -> None:
        if (i := self.state.video_index.get(event.originator_id.int)) is not None:
            self.state.unavailable.add(i)

    def _restored(self, event: Video.Restored, t: float, view: RecommendationsView) -> None:
        if (i := self.state.video_index.get(event.originator_id.int)) is not None:
            self.state.unavailable.discard(i)

    def _follow_started(
        self, event: Following.Started, t: float, view: RecommendationsView
    ) -> None:
        pair = (self._viewer(event.viewer_id), self._creator(event.creator_id))
        self.state.follow_pairs[event.originator_id.int] = pair

    def _followed(self, event: Following.Followed, t: float, view: RecommendationsView) -> None:
        if (pair := self.state.follow_pairs.get(event.originator_id.int)) is not None:
            self.state.following.setdefault(pair[0], {})[pair[1]] = None

    def _unfollowed(self, event: Following.Unfollowed, t: float, view: RecommendationsView) -> None:
        if (pair := self.state.follow_pairs.get(event.originator_id.int)) is not None:
            self.state.following.get(pair[0], {}).pop(pair[1], None)

    def _viewed(self, event: Engagement.Viewed, t: float, view: RecommendationsView) -> None:
        s, p = self.state, self.params
        i = s.video_index.get(event.video_id.int)
        if i is None:
            return
        u = self._viewer(event.viewer_id)
        rating = 1.0 if event.completed else min(event.watch_seconds / s.duration[i], 1.0)
        # Predict, then learn: the metrics never score what the model was trained on.
        # Ratings live in [0, 1]: so do predictions (the clamp only helps the model).
        predicted, dot = predict_dot(s.model, u, i)
        predicted = min(max(predicted, 0.0), 1.0)
        base = s.base_mean.get()
        add_error(s.mae, s.rmse, rating, predicted)
        add_error(s.base_mae, s.base_rmse, rating, base)
        s.base_mean.update(rating)
        s.views += 1
        if s.views % p.sample_every == 0:
            self._sample(u, i, event.occurred_at, view)
        learn(s.model, u, i, rating, dot)  # _sample only read the state
        self._add_view(i, t)
        self._add_taste(u, i, view)
        seen = s.seen.get(u)
        if seen is None:
            seen = s.seen[u] = set()
        if i not in seen:
            seen.add(i)
            view.seen(event.viewer_id, event.video_id)
        self._learned(event, u, i, t, view)
        for model, name, metric in (
            (MODEL, "mae", s.mae), (MODEL, "rmse", s.rmse),
            (BASELINE, "mae", s.base_mae), (BASELINE, "rmse", s.base_rmse),
        ):  # fmt: skip
            view.metric(model, name, s.views, metric.get)

    def _add_taste(self, u: int, i: int, view: RecommendationsView) -> None:
        """The view counts for the viewer's hashtags and every hashtag's share."""
        s, names = self.state, self.state.tag_names
        tags = s.video_tags[i]
        if not tags:
            return
        share = 1.0 / len(tags)
        counts = s.taste.get(u)
        if counts is None:
            counts = s.taste[u] = {}
        for tag in tags:
            counts[tag] = counts.get(tag, 0.0) + share
            s.tag_views[tag] += share
            view.hashtag(names[tag], tag, s.tag_views[tag])
        s.tasted[u] = s.tasted.get(u, 0.0) + 1.0
        s.tag_total += 1.0

    def _liked(self, event: Engagement.Liked, t: float, view: RecommendationsView) -> None:
        s = self.state
        i = s.video_index.get(event.video_id.int)
        if i is None:
            return
        u = self._viewer(event.viewer_id)
        learn(s.model, u, i, self.params.like_rating)
        self._learned(event, u, i, t, view)

    def _learned(self, event: Any, u: int, i: int, t: float, view: RecommendationsView) -> None:
        """The item's and the viewer's rows changed (the item's popularity, the taste)."""
        view.item(event.video_id, event.occurred_at, self._item_row, i, t)
        view.viewer(event.viewer_id, event.occurred_at, self._viewer_row, u)

    # -- progressive hit rates: the bandit's full feedback ----------------------------------
    def _sample(self, u: int, i: int, at: datetime, view: RecommendationsView) -> None:
        """Was the watched video in the served top-K, and in each arm's, made before the
        view?"""
        s, p = self.state, self.params
        candidates = self._candidates(u, s.now)
        s.samples += 1
        hits = {w: i in candidates.top(w, p.top_k).tolist() for w in p.taste_weights}
        if p.taste_weight not in hits:
            hits[p.taste_weight] = i in candidates.top(p.taste_weight, p.top_k).tolist()
        s.hits["served"] += hits[p.taste_weight]
        for weight, arm in zip(p.taste_weights, self.arms, strict=True):
            s.hits[arm] += hits[weight]
            s.policy.update(arm, float(hits[weight]))
        k = self.params.top_k
        popularity = arm_name(0.0)
        view.metric(MODEL, f"hit_rate_at_{k}", s.samples, self._hit_rate("served"))
        if popularity in s.hits:
            view.metric(BASELINE, f"hit_rate_at_{k}", s.samples, self._hit_rate(popularity))
        view.bandit(BANDIT_NAME, at, self._bandit_row)

    def _bandit_row(self) -> tuple[bytes, dict[str, dict[str, float]]]:
        return pickle.dumps(self.state.policy, protocol=5), self.bandit_arms()

    def _hit_rate(self, arm: str) -> Callable[[], float]:
        s = self.state
        return lambda: s.hits[arm] / s.samples

    def bandit_arms(self) -> dict[str, dict[str, float]]:
        policy = self.state.policy
        return {
            arm: {
                "pulls": float(policy._counts[arm]),  # river keeps these on the policy
                "reward": arm_value(policy._rewards[arm]) if arm in policy._rewards else 0.0,
            }
            for arm in self.arms
        }

    # -- the list (read-only: calling it never changes the state) ------------------------
    def recommend(
        self, viewer_id: UUID, at: datetime, weight: float | None = None
    ) -> list[Recommendation]:
        """The viewer's top-K at an event time, by the score with the served taste weight
        (or `weight`)."""
        s, p = self.state, self.params
        u = s.viewer_index.get(viewer_id.int, -1)
        weight = p.taste_weight if weight is None else weight
        c = self._candidates(u, at.timestamp())
        scores = c.scores(weight)
        return [
            Recommendation(
                UUID(int=s.video_ids[c.items[k]]), float(scores[k]),
                reco_taste.reason(float(c.lift[k]), bool(c.follows[k]), weight),
            )
            for k in c.top(weight, p.top_k).tolist()
        ]  # fmt: skip

    def _candidates(self, u: int, now: float) -> "Candidates":
        """The viewer's bounded pools: popular, newest, its strongest hashtags' popular
        videos and its creators' latest; unseen and available only."""
        s, p = self.state, self.params
        seen = s.seen.get(u, ())
        lift, other = self.taste_of(u)
        strongest = heapq.nlargest(p.taste_tags, lift, key=lambda t: (lift[t], -t))
        followed = s.following.get(u, {})
        mine = [
            i for c in followed for i in s.creator_videos.get(c, [])[-p.follow_videos_per_creator :]
        ]
        pools = (s.pool, s.recent, *(s.tag_pools.get(t, ()) for t in strongest), mine)
        items = [
            i
            for i in dict.fromkeys(i for pool in pools for i in pool)
            if i not in seen and i not in s.unavailable
        ]
        tags = s.video_tags
        return Candidates(
            self,
            items,
            self._popularities(items, now),
            np.array([reco_taste.video_lift(tags[i], lift, other) for i in items], dtype=float),
            np.array([s.creator_of[i] in followed for i in items], dtype=bool),
        )

    def taste_of(self, u: int) -> tuple[dict[int, float], float]:
        s = self.state
        return reco_taste.lifts(
            s.taste.get(u, {}), s.tasted.get(u, 0.0), s.tag_views, s.tag_total,
            self.params.taste_smoothing,
        )  # fmt: skip

    def _predict(self, u: int, i: int) -> float:
        return predict(self.state.model, u, i)

    # -- popularity: an event-time decaying view rate ----------------------------------
    def _popularities(self, items: list[int], now: float) -> Any:
        """Views per hour at `now` of many videos (numpy, for the candidate lists)."""
        s = self.state
        value = np.array([s.pop_value[i] for i in items], dtype=float)
        since = np.array([s.pop_at[i] for i in items], dtype=float)
        tau = self.params.popularity_tau_seconds
        return value * np.exp(-np.maximum(now - since, 0.0) / tau) * 3600

    def _popularity(self, i: int, now: float) -> float:
        """Views per hour at `now`."""
        s = self.state
        return decayed(s.pop_value[i], s.pop_at[i], now, self.params.popularity_tau_seconds) * 3600

    def _add_view(self, i: int, t: float) -> None:
        s, tau = self.state, self.params.popularity_tau_seconds
        if t >= s.pop_at[i]:
            s.pop_value[i] = s.pop_value[i] * math.exp(-(t - s.pop_at[i]) / tau) + 1.0 / tau
            s.pop_at[i] = t
        else:  # a late view: its contribution has already decayed
            s.pop_value[i] += math.exp(-(s.pop_at[i] - t) / tau) / tau
        s.touched.add(i)

    def _refresh_pools(self, now: float) -> None:
        """The popular pools: the previous pool plus the videos viewed since, overall and
        per hashtag. Every rate decays alike, so a video that was neither in a pool nor
        viewed cannot outrank the pool's members now."""
        s, p = self.state, self.params
        ids = list({*s.pool, *s.touched, *(i for pool in s.tag_pools.values() for i in pool)})
        ids = [i for i in ids if i not in s.unavailable]
        # The most popular first; ties go to the older video (the lower interned id).
        order = np.lexsort((np.array(ids, dtype=np.int64), -self._popularities(ids, now)))
        ranked = [ids[k] for k in order.tolist()]
        s.pool = ranked[: p.pool_size]
        pools: dict[int, list[int]] = {}
        for i in ranked:
            for tag in s.video_tags[i]:
                pool = pools.setdefault(tag, [])
                if len(pool) < p.tag_pool_size:
                    pool.append(i)
        s.tag_pools = pools
        s.touched = set()
        s.pool_at = now

    def _forget(self, event: Erasure.ViewerForgotten, t: float, view: RecommendationsView) -> None:
        """Erasure: the viewer's latent factors, bias, taste, seen set and follows leave the
        model. The item side keeps what it learnt (aggregate weights and hashtag shares, not
        personal data). The viewer's interned index stays taken (others must not move) but
        names nobody; a later event of the same id starts a new, empty viewer."""
        s, m = self.state, self.state.model
        view.forget_viewer(event.viewer_id)
        u = s.viewer_index.pop(event.viewer_id.int, None)
        if u is None:
            return
        s.viewer_ids[u] = ERASED_VIEWER.int
        m.u_latents.pop(u, None)
        m.u_biases.pop(u, None)
        s.seen.pop(u, None)
        s.taste.pop(u, None)
        s.tasted.pop(u, None)
        s.following.pop(u, None)
        for pair in [k for k, (v, _) in s.follow_pairs.items() if v == u]:
            del s.follow_pairs[pair]

    # -- interning and rows -----------------------------------------------------------------
    def _viewer(self, viewer_id: UUID) -> int:
        s, key = self.state, viewer_id.int
        u = s.viewer_index.get(key)
        if u is None:
            u = s.viewer_index[key] = len(s.viewer_ids)
            s.viewer_ids.append(key)
        return u

    def _creator(self, creator_id: UUID) -> int:
        s, key = self.state, creator_id.int
        c = s.creator_index.get(key)
        if c is None:
            c = s.creator_index[key] = len(s.creator_ids)
            s.creator_ids.append(key)
        return c

    def item_row(self, i: int, t: float) -> ItemRow:
        """Video `i`'s row, its popularity at epoch seconds `t`."""
        s, m = self.state, self.state.model
        tags = s.video_tags[i]
        return ItemRow(
            UUID(int=s.creator_ids[s.creator_of[i]]),
            datetime.fromtimestamp(s.published[i], UTC),
            float(m.i_biases.get(i, 0.0)),
            {s.tag_names[tag]: 1.0 / len(tags) for tag in tags},
            self._popularity(i, t),
            i,
        )

    def viewer_row(self, u: int) -> ViewerRow:
        """The viewer's views per hashtag: with the hashtags' views (`hashtag`) and the
        total (`shared`), the taste lifts as of any later time (reco_taste.lifts)."""
        s = self.state
        names = s.tag_names
        counts = {names[t]: value for t, value in s.taste.get(u, {}).items()}
        return ViewerRow(s.tasted.get(u, 0.0), counts)

    def shared_row(self) -> SharedRow:
        s, ids = self.state, self._uuids
        ids += [UUID(int=v) for v in s.video_ids[len(ids) :]]
        pools = {POPULAR: [ids[i] for i in s.pool], RECENT: [ids[i] for i in s.recent]}
        names = s.tag_names
        for tag, pool in s.tag_pools.items():
            pools[names[tag]] = [ids[i] for i in pool]
        return SharedRow(datetime.fromtimestamp(s.now, UTC), s.tag_total, pools)


@dataclass(frozen=True)
class Candidates:
    """A viewer's candidates (interned ids) and their score's parts, as numpy arrays."""

    projection: RecommendationsProjection
    items: list[int]
    popularity: Any  # views per hour
    lift: Any  # the viewer's taste lift
    follows: Any  # the viewer follows the creator

    def scores(self, weight: float) -> Any:
        """reco_taste.score of every candidate, with this taste weight."""
        p = self.projection.params
        value = (self.popularity + p.popularity_floor) * self.lift**weight
        return np.where(self.follows, value * p.follow_boost, value)

    def top(self, weight: float, k: int) -> Any:
        """Positions of the K best by score, best first; ties go to the older video (the
        lower interned id)."""
        order = np.lexsort((np.array(self.items, dtype=np.int64), -self.scores(weight)))
        return order[:k]
