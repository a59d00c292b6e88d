"""RecommendationsProjection: online matrix factorisation and a bandit over candidate sources.

The model is river's BiasedMF, learned in event time from implicit ratings: a view rates
the video by its watch fraction (a completion is 1.0) and a like adds a strong positive.
Besides the model the projection keeps what candidate lists need: per-viewer seen sets,
follow relations, video availability (restricted, removed or deleted videos are never
recommended) and an event-time decaying view rate per video (popularity).

Three candidate sources produce a viewer's top-K at a point in event time:
  trending  - the most popular videos (the trivial baseline);
  personal  - the model's score plus a small popularity term, over a bounded pool;
  following - recent videos of the creators the viewer follows.
All three draw from bounded pools (the popular pool is refreshed every few minutes of
event time from the previous pool plus the videos viewed since), so a list costs the
same whatever the catalogue size.

Progressive validation (predict, then learn): every view is first predicted (MAE/RMSE
against the global mean rating), and every `sample_every`-th view also checks whether
the watched video was in each source's top-K (hit rate; trending is the baseline).
The same sampled views train a river bandit by the replay method: the policy pulls a
source; only when that source's list holds the watched video is the policy rewarded
(1.0 for a completion, else 0.0), otherwise the sample is skipped.

Ids are interned to small ints (cheap to pickle and hash), all state lives in one
pickled dataclass checkpointed with the position, time comes from events and every
random choice from seeded generators in that state: a restart or a rebuild reproduces
every output exactly.

Per event the projection learns and keeps its counters; the rows it reports (an item's
or a viewer's factors, the error metrics) are callables that the view evaluates once per
key per batch, when it writes: they read the state as the batch's last event for that
key left it (the model's learning step is in reco_model.py).
"""

import collections
import copy
import heapq
import itertools
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
from projections.base import Projection
from projections.reco_model import add_error, learn, predict, predict_dot

MODEL = "recommendations"
BASELINE = "recommendations_baseline"
ARMS = ("trending", "personal", "following")
BANDIT_NAME = "sources"
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
    popularity_tau_seconds: float = 6 * 3600.0
    pool_size: int = 100  # popular candidates kept between refreshes
    recent_size: int = 50  # newest available videos, so fresh ones can be recommended
    pool_refresh_seconds: float = 600.0
    follow_videos_per_creator: int = 3
    top_k: int = 10
    sample_every: int = 20  # views between hit-rate checks and bandit replays
    personal_popularity_weight: float = 0.1  # score += weight * log1p(views per hour)
    # Thompson sampling (Beta posteriors) by default: under replay an arm whose lists rarely
    # hold the watched video is rarely updated, and UCB's bound for it then stays infinite.
    bandit: str = "thompson"  # thompson | ucb | epsilon
    ucb_delta: float = 0.5
    epsilon: float = 0.1


DEFAULT_PARAMS = RecommendationParams()


def personal_score(
    viewer_bias: float, item_bias: float, dot: float, popularity: float, weight: float
) -> float:
    """The personal source's ranking score; the reader uses the same formula. The global
    mean is left out: it shifts every item of a viewer alike."""
    return viewer_bias + item_bias + dot + weight * math.log1p(popularity)


def decayed(value: float, since: float, now: float, tau: float) -> float:
    return value * math.exp(-max(now - since, 0.0) / tau)


class ItemRow(NamedTuple):
    creator_id: UUID
    published_at: datetime
    bias: float
    factors: list[float]
    popularity: float  # views per hour at the row's event time


class ViewerRow(NamedTuple):
    bias: float
    factors: list[float]


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
    def seen(self, viewer_id: UUID, video_id: UUID) -> None: ...

    @abstractmethod
    def bandit(
        self, name: str, state: bytes, arms: dict[str, dict[str, float]], at: datetime
    ) -> None: ...

    @abstractmethod
    def metric(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None: ...

    @abstractmethod
    def forget_viewer(self, viewer_id: UUID) -> None:
        """Drop the viewer's rows (factors, seen pairs), including ones not yet written."""


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
    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ARMS, 0))
    replay_matches: int = 0
    replay_reward: float = 0.0
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
    # viewers (a forgotten viewer's id becomes ERASED_VIEWER.int; its index stays taken)
    viewer_ids: list[int] = field(default_factory=list)
    viewer_index: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[int]] = field(default_factory=dict)
    follow_pairs: dict[int, tuple[int, int]] = field(default_factory=dict)  # viewer, creator
    following: dict[int, dict[int, None]] = field(default_factory=dict)  # ordered sets
    # bounded candidate pools
    pool: list[int] = field(default_factory=list)
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
    topics = tuple(
        get_topic(cls)
        for cls in (
            Video.Published, Video.Restricted, Video.Removed, Video.Restored,
            Video.DeletedByCreator, Engagement.Viewed, Engagement.Liked, Following.Started,
            Following.Followed, Following.Unfollowed, Erasure.ViewerForgotten,
        )
    )  # fmt: skip

    def __init__(self, params: RecommendationParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self.state = self._new_state()
        # Each handler gets the event, its time (epoch seconds) and the view.
        self._handlers: dict[type, Callable[[Any, float, RecommendationsView], None]] = {
            Engagement.Viewed: self._viewed,
            Engagement.Liked: self._liked,
            Video.Published: self._published,
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

    def _new_state(self) -> RecoState:
        return RecoState(model=new_model(self.params), policy=new_policy(self.params))

    # -- checkpointing (with the position, in the projection's transaction) ---------------
    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        self.state = pickle.loads(data) if data else self._new_state()  # our own checkpoint

    # -- events ---------------------------------------------------------------------------
    def process(self, event: Any, position: int, view: RecommendationsView) -> None:
        s = self.state
        t = event.occurred_at.timestamp()
        if t > s.now:
            s.now = t
            if t - s.pool_at >= self.params.pool_refresh_seconds:
                self._refresh_pool(t)
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event, t, view)

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
        s.creator_videos.setdefault(c, []).append(i)
        s.recent.append(i)
        del s.recent[: -self.params.recent_size]
        view.item(event.originator_id, event.occurred_at, self._item_row, i, t)

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
            self._sample(u, i, event.completed, event.occurred_at, view)
        learn(s.model, u, i, rating, dot)  # _sample only read the model
        self._add_view(i, t)
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

    def _liked(self, event: Engagement.Liked, t: float, view: RecommendationsView) -> None:
        s = self.state
        i = s.video_index.get(event.video_id.int)
        if i is None:
            return
        u = self._viewer(event.viewer_id)
        learn(s.model, u, i, self.params.like_rating)
        self._learned(event, u, i, t, view)

    def _learned(self, event: Any, u: int, i: int, t: float, view: RecommendationsView) -> None:
        """The item's and the viewer's rows changed (their weights; the item's popularity)."""
        view.item(event.video_id, event.occurred_at, self._item_row, i, t)
        view.viewer(event.viewer_id, event.occurred_at, self._viewer_row, u)

    # -- progressive hit rates and the bandit's replay ----------------------------------
    def _sample(
        self, u: int, i: int, completed: bool, at: datetime, view: RecommendationsView
    ) -> None:
        s = self.state
        lists = self._lists(u, s.now)
        s.samples += 1
        for arm in ARMS:
            s.hits[arm] += int(i in lists[arm])
        k = self.params.top_k
        for model, name, arm in (
            (MODEL, f"hit_rate_at_{k}", "personal"), (BASELINE, f"hit_rate_at_{k}", "trending"),
            (MODEL, f"following_hit_rate_at_{k}", "following"),
        ):  # fmt: skip
            view.metric(model, name, s.samples, self._hit_rate(arm))
        arm = s.policy.pull(list(ARMS))
        if i not in lists[arm]:
            return  # replay: the logged view says nothing about this arm's list
        reward = 1.0 if completed else 0.0
        s.policy.update(arm, reward)
        s.replay_matches += 1
        s.replay_reward += reward
        view.metric(MODEL, "bandit_reward", s.replay_matches, self._bandit_reward)
        view.bandit(BANDIT_NAME, pickle.dumps(s.policy, protocol=5), self.bandit_arms(), at)

    def _hit_rate(self, arm: str) -> Callable[[], float]:
        s = self.state
        return lambda: s.hits[arm] / s.samples

    def _bandit_reward(self) -> float:
        return self.state.replay_reward / self.state.replay_matches

    def bandit_arms(self) -> dict[str, dict[str, float]]:
        policy = self.state.policy
        return {
            arm: {
                "pulls": float(policy._counts[arm]),  # river keeps these on the policy
                "reward": arm_value(policy._rewards[arm]) if arm in policy._rewards else 0.0,
            }
            for arm in ARMS
        }

    # -- candidate lists (read-only: calling them never changes the state) ---------------
    def candidates(self, viewer_id: UUID, at: datetime) -> dict[str, list[UUID]]:
        """Each source's top-K for a viewer at an event time, as video ids."""
        u = self.state.viewer_index.get(viewer_id.int, -1)
        lists = self._lists(u, at.timestamp())
        ids = self.state.video_ids
        return {arm: [UUID(int=ids[i]) for i in items] for arm, items in lists.items()}

    def _lists(self, u: int, now: float) -> dict[str, list[int]]:
        s, p = self.state, self.params
        seen = s.seen.get(u, set())
        pool = [
            i for i in dict.fromkeys(s.pool + s.recent) if i not in seen and i not in s.unavailable
        ]
        items = np.array(pool, dtype=np.int64)
        pop = self._popularities(pool, now)
        # lexsort: the last key is the primary one; ties go to the older video (lower index).
        trending = items[np.lexsort((items, -pop))[: p.top_k]].tolist()
        score = self._raw_scores(u, pool) + p.personal_popularity_weight * np.log1p(pop)
        personal = items[np.lexsort((items, -score))[: p.top_k]].tolist()
        followed = [
            i
            for c in s.following.get(u, {})
            for i in s.creator_videos.get(c, [])[-p.follow_videos_per_creator :]
            if i not in seen and i not in s.unavailable
        ]
        mine = np.array(followed, dtype=np.int64)
        # The newest first among equally popular ones (a new video has no views yet).
        order = np.lexsort((-mine, -self._popularities(followed, now)))[: p.top_k]
        following = mine[order].tolist()
        return {"trending": trending, "personal": personal, "following": following}

    def _predict(self, u: int, i: int) -> float:
        return predict(self.state.model, u, i)

    def _raw_scores(self, u: int, items: list[int]) -> Any:
        """bu + bi + <pu, qi> for many items at once (as predict, without the mean)."""
        m = self.state.model
        # bu + bi elementwise: numpy's float64 addition rounds as Python's does.
        scores = m.u_biases.get(u, 0.0) + np.array(
            list(map(m.i_biases.get, items, itertools.repeat(0.0))), dtype=float
        )
        pu = m.u_latents.get(u)
        if pu is not None and items:
            known = [(k, m.i_latents[i]) for k, i in enumerate(items) if i in m.i_latents]
            if known:
                rows, vectors = zip(*known, strict=True)
                scores[list(rows)] += np.array(vectors) @ pu  # np.stack's matrix, faster
        return scores

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

    def _refresh_pool(self, now: float) -> None:
        """The popular pool: the previous pool plus the videos viewed since. Every rate
        decays alike, so a video that was neither in the pool nor viewed cannot outrank
        the pool's members now."""
        s = self.state
        candidates = [i for i in set(s.pool) | s.touched if i not in s.unavailable]
        s.pool = heapq.nlargest(
            self.params.pool_size, candidates, key=lambda i: (self._popularity(i, now), -i)
        )
        s.touched = set()
        s.pool_at = now

    def _forget(self, event: Erasure.ViewerForgotten, t: float, view: RecommendationsView) -> None:
        """Erasure: the viewer's latent factors, bias, seen set and follows leave the model.
        The item side keeps what it learnt (aggregate weights, not personal data). The
        viewer's interned index stays taken (others must not move) but names nobody; a
        later event of the same id starts a new, empty viewer."""
        s, m = self.state, self.state.model
        view.forget_viewer(event.viewer_id)
        u = s.viewer_index.pop(event.viewer_id.int, None)
        if u is None:
            return
        s.viewer_ids[u] = ERASED_VIEWER.int
        m.u_latents.pop(u, None)
        m.u_biases.pop(u, None)
        s.seen.pop(u, None)
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
        latent = m.i_latents.get(i)
        return ItemRow(
            UUID(int=s.creator_ids[s.creator_of[i]]),
            datetime.fromtimestamp(s.published[i], UTC),
            float(m.i_biases.get(i, 0.0)),
            [] if latent is None else latent.tolist(),
            self._popularity(i, t),
        )

    def viewer_row(self, u: int) -> ViewerRow:
        m = self.state.model
        latent = m.u_latents.get(u)
        return ViewerRow(float(m.u_biases.get(u, 0.0)), [] if latent is None else latent.tolist())
