"""recommendations(viewer, first): candidates from three sources over the read model.

Sources (the same ones the projection evaluates and its bandit chooses between):
  personal  - the viewer's factors against a bounded pool of popular and recent videos,
              scored as the projection scores them (projections.recommendations);
  trending  - popularity (views per hour, decayed to the newest event time recorded);
  following - the newest videos of creators the viewer follows (rm_follow_pairs).
Seen videos (rm_reco_seen) and videos that are not active (rm_videos.status) are left out.

Without explore the sources are merged by reciprocal-rank fusion (their scores are not on
one scale; a video ranked high by several sources comes first), ties by video id. With
explore the stored bandit policy pulls the source that leads: its list comes first, then
the fused rest. The pull uses the policy's learned statistics with its random generator
seeded from the viewer and the policy's sample count, so it is stable for one viewer
until the policy learns again, and varies across viewers. Unknown viewers get trending.
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
from projections.recommendations import ARMS, BANDIT_NAME, DEFAULT_PARAMS, personal_score

MAX_FIRST = 100
POOL = 300  # popular candidates read (before decay re-orders them)
RECENT = 100
FOLLOW_VIDEOS = 100
RRF_K = 60  # the usual reciprocal-rank-fusion constant


@dataclass(frozen=True)
class RecommendationDTO:
    video_id: UUID
    score: float
    source: str  # personal | trending | following


def recommendations(
    conn: sa.Connection, viewer_id: UUID, first: int = 10, explore: bool = False
) -> list[RecommendationDTO]:
    if not 1 <= first <= MAX_FIRST:
        raise ValueError(f"first must be between 1 and {MAX_FIRST}")
    items = _candidates(conn, viewer_id)
    if not items:
        return []
    now = max(as_utc(r.updated_at) for r in items.values())
    popularity = {v: _decayed(r.popularity, as_utc(r.updated_at), now) for v, r in items.items()}
    lists: dict[str, list[tuple[UUID, float]]] = {
        "trending": _ranked(popularity),
    }
    me = conn.execute(sa.select(rm_reco_viewers).where(rm_reco_viewers.c.viewer_id == viewer_id))
    row = me.first()
    if row is not None:
        w = DEFAULT_PARAMS.personal_popularity_weight
        lists["personal"] = _ranked(
            {
                v: personal_score(row.bias, r.bias, _dot(row.factors, r.factors), popularity[v], w)
                for v, r in items.items()
            }
        )
    followed = _followed_videos(conn, viewer_id, items)
    if followed:
        lists["following"] = _ranked({v: popularity[v] for v in followed})
    leader = _pull(conn, viewer_id, list(lists)) if explore else None
    return _merge(lists, first, leader)


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


def _followed_videos(
    conn: sa.Connection, viewer_id: UUID, candidates: dict[UUID, sa.Row]
) -> list[UUID]:
    creators = {
        r.creator_id
        for r in conn.execute(
            sa.select(rm_follow_pairs.c.creator_id).where(
                rm_follow_pairs.c.viewer_id == viewer_id, rm_follow_pairs.c.following.is_(True)
            )
        )
    }
    if not creators:
        return []
    return [v for v, r in candidates.items() if r.creator_id in creators]


def _decayed(popularity: float, at: datetime, now: datetime) -> float:
    age = max((now - at).total_seconds(), 0.0)
    return popularity * math.exp(-age / DEFAULT_PARAMS.popularity_tau_seconds)


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=False)) if a and b else 0.0


def _ranked(scores: dict[UUID, float]) -> list[tuple[UUID, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], str(kv[0])))


def _pull(conn: sa.Connection, viewer_id: UUID, arms: list[str]) -> str | None:
    row = conn.execute(
        sa.select(rm_reco_bandit.c.state).where(rm_reco_bandit.c.name == BANDIT_NAME)
    ).first()
    if row is None:
        return random.Random(viewer_id.int).choice(arms)  # no evidence yet: any source
    policy = pickle.loads(bytes(row.state))  # written by our own projection
    # River's policies (and Beta posteriors) draw from their own generators: reseed them.
    seed = viewer_id.int ^ policy._n
    policy._rng = random.Random(seed)
    for k, reward in enumerate(policy._rewards.values()):
        if hasattr(reward, "_rng"):
            reward._rng = random.Random(seed + k + 1)
    arm = policy.pull([a for a in ARMS if a in arms])
    return str(arm)


def _merge(
    lists: dict[str, list[tuple[UUID, float]]], first: int, leader: str | None
) -> list[RecommendationDTO]:
    best: dict[UUID, tuple[int, str, float]] = {}  # video -> its best rank, source, score
    fused: dict[UUID, float] = {}
    for source, ranked in lists.items():
        for rank, (video, score) in enumerate(ranked):
            fused[video] = fused.get(video, 0.0) + 1.0 / (RRF_K + rank + 1)
            if video not in best or rank < best[video][0]:
                best[video] = (rank, source, score)
    order = sorted(fused, key=lambda v: (-fused[v], str(v)))
    out: list[RecommendationDTO] = []
    if leader is not None:
        out = [RecommendationDTO(v, s, leader) for v, s in lists[leader][:first]]
    taken = {r.video_id for r in out}
    for v in order:
        if len(out) >= first:
            break
        if v not in taken:
            _, source, score = best[v]
            out.append(RecommendationDTO(v, score, source))
    return out
