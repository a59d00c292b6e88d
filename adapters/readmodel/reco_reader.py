"""recommendations(viewer, first): one list, ordered by one score, over the read model.

The score is the projection's (projections/reco_taste.py): the video's views per hour
(decayed to the newest event time recorded) times the viewer's taste lift for its
hashtags raised to the taste weight, times the follow boost when the viewer follows its
creator. Every item carries that score and the reason that lifted it (following,
personal, trending), and the list is ordered by the score (ties by video id).

Candidates are bounded pools of the read model: the most popular videos (by stored
rate), the newest ones and the newest of the creators the viewer follows. Seen videos
(rm_reco_seen) and videos that are not active (rm_videos.status) are left out. An
unknown viewer has lift 1 everywhere: the list is the popular one.

With `explore` the stored bandit draws the taste weight (its arms are weights, learned
from every sampled view) instead of the served one. The draw uses the policy's learned
statistics with its random generator seeded from the viewer and the policy's sample
count, so it is stable for one viewer until the policy learns again, and varies across
viewers.
"""

import math
import pickle
import random
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import (
    rm_follow_pairs,
    rm_reco_bandit,
    rm_reco_items,
    rm_reco_seen,
    rm_reco_viewers,
    rm_videos,
)
from adapters.readmodel.times import as_utc
from projections import reco_taste
from projections.recommendations import BANDIT_NAME, DEFAULT_PARAMS

MAX_FIRST = 100
POOL = 300  # popular candidates read (before decay re-orders them)
RECENT = 100
FOLLOW_VIDEOS = 100


@dataclass(frozen=True)
class RecommendationDTO:
    video_id: UUID
    score: float  # views per hour as the viewer's taste weighs them (one scale)
    source: str  # personal | trending | following: what lifted it


def recommendations(
    conn: sa.Connection, viewer_id: UUID, first: int = 10, explore: bool = False
) -> list[RecommendationDTO]:
    if not 1 <= first <= MAX_FIRST:
        raise ValueError(f"first must be between 1 and {MAX_FIRST}")
    items = _candidates(conn, viewer_id)
    if not items:
        return []
    now = max(as_utc(r.updated_at) for r in items.values())
    me = conn.execute(
        sa.select(rm_reco_viewers).where(rm_reco_viewers.c.viewer_id == viewer_id)
    ).first()
    lifts, other = (dict(me.factors), me.bias) if me is not None else ({}, 1.0)
    creators = _followed_creators(conn, viewer_id)
    p = DEFAULT_PARAMS
    weight = _drawn_weight(conn, viewer_id) if explore else p.taste_weight
    scored = []
    for video, r in items.items():
        lift = reco_taste.video_lift(list(r.factors), lifts, other)
        follows = r.creator_id in creators
        value = reco_taste.score(
            _decayed(r.popularity, as_utc(r.updated_at), now), lift, follows,
            floor=p.popularity_floor, taste_weight=weight, follow_boost=p.follow_boost,
        )  # fmt: skip
        scored.append((value, video, reco_taste.reason(lift, follows, weight)))
    scored.sort(key=lambda s: (-s[0], str(s[1])))
    return [RecommendationDTO(video, value, source) for value, video, source in scored[:first]]


def _candidates(conn: sa.Connection, viewer_id: UUID) -> dict[UUID, sa.Row]:
    available = (
        sa.select(rm_reco_items)
        .join(rm_videos, rm_videos.c.video_id == rm_reco_items.c.video_id)
        .where(rm_videos.c.status == "active")
        .where(
            ~sa.exists().where(
                rm_reco_seen.c.viewer_id == viewer_id,
                rm_reco_seen.c.video_id == rm_reco_items.c.video_id,
            )
        )
    )
    follows = sa.select(rm_follow_pairs.c.creator_id).where(
        rm_follow_pairs.c.viewer_id == viewer_id, rm_follow_pairs.c.following.is_(True)
    )
    queries = [
        available.order_by(rm_reco_items.c.popularity.desc()).limit(POOL),
        available.order_by(rm_reco_items.c.published_at.desc()).limit(RECENT),
        available.where(rm_reco_items.c.creator_id.in_(follows))
        .order_by(rm_reco_items.c.published_at.desc())
        .limit(FOLLOW_VIDEOS),
    ]
    items: dict[UUID, sa.Row] = {}
    for q in queries:
        for r in conn.execute(q):
            items[r.video_id] = r
    return items


def _followed_creators(conn: sa.Connection, viewer_id: UUID) -> set[UUID]:
    return set(
        conn.scalars(
            sa.select(rm_follow_pairs.c.creator_id).where(
                rm_follow_pairs.c.viewer_id == viewer_id, rm_follow_pairs.c.following.is_(True)
            )
        )
    )


def _decayed(popularity: float, at: datetime, now: datetime) -> float:
    age = max((now - at).total_seconds(), 0.0)
    return popularity * math.exp(-age / DEFAULT_PARAMS.popularity_tau_seconds)


def _drawn_weight(conn: sa.Connection, viewer_id: UUID) -> float:
    p = DEFAULT_PARAMS
    weights = dict(zip(p.arms, p.taste_weights, strict=True))
    row = conn.execute(
        sa.select(rm_reco_bandit.c.state).where(rm_reco_bandit.c.name == BANDIT_NAME)
    ).first()
    if row is None:
        return random.Random(viewer_id.int).choice(p.taste_weights)  # no evidence yet
    policy = pickle.loads(bytes(row.state))  # written by our own projection
    # River's policies (and Beta posteriors) draw from their own generators: reseed them.
    seed = viewer_id.int ^ policy._n
    policy._rng = random.Random(seed)
    for k, reward in enumerate(policy._rewards.values()):
        if hasattr(reward, "_rng"):
            reward._rng = random.Random(seed + k + 1)
    return weights[str(policy.pull(list(p.arms)))]
