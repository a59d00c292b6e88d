"""recommendations(viewer, first): the projection's list, from the read model.

The score is the projection's (projections/reco_taste.py): the video's views per hour
(decayed to the projection's event-time watermark) times the viewer's taste lift for its
hashtags raised to the taste weight, times the follow boost when the viewer follows its
creator. Every item carries that score and the reason that lifted it (following,
personal, trending), and the list is ordered by the score (ties to the older video).

The reader ranks what the projection ranks, as of the projection's last batch: the
viewer's lifts are computed now from its views per hashtag (rm_reco_viewers) and the
hashtags' views (rm_reco_tags), exactly as the projection computes them, and the
candidates are the projection's pools (rm_reco_pools: popular, newest, the viewer's
strongest hashtags' popular) plus the latest videos of the creators the viewer follows,
less seen videos (rm_reco_seen) and videos that are not active (rm_videos.status). An
unknown viewer has lift 1 everywhere: the list is the popular one.

With `explore` the stored bandit draws the taste weight (its arms are weights, learned
from every sampled view) instead of the served one. The draw uses the policy's learned
statistics with its random generator seeded from the viewer and the policy's sample
count, so it is stable for one viewer until the policy learns again, and varies across
viewers.
"""

import heapq
import math
import pickle
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import (
    rm_follow_pairs,
    rm_reco_bandit,
    rm_reco_items,
    rm_reco_pools,
    rm_reco_seen,
    rm_reco_tags,
    rm_reco_viewers,
    rm_videos,
)
from adapters.readmodel.times import as_utc
from projections import reco_taste
from projections.recommendations import BANDIT_NAME, DEFAULT_PARAMS, POPULAR, RECENT

MAX_FIRST = 100


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
    p = DEFAULT_PARAMS
    pools, now = _pools(conn)
    if now is None:
        return []
    lifts, other, strongest = _taste(conn, viewer_id)
    creators = _followed_creators(conn, viewer_id)
    wanted = [*pools.get(POPULAR, []), *pools.get(RECENT, [])]
    wanted += [v for tag in strongest for v in pools.get(tag, [])]
    items = _items(conn, viewer_id, {UUID(v) for v in wanted}, creators)
    weight = _drawn_weight(conn, viewer_id) if explore else p.taste_weight
    scored = []
    for video, r in items.items():
        lift = reco_taste.video_lift(list(r.factors), lifts, other)
        follows = r.creator_id in creators
        value = reco_taste.score(
            _decayed(r.popularity, as_utc(r.updated_at), now), lift, follows,
            floor=p.popularity_floor, taste_weight=weight, follow_boost=p.follow_boost,
        )  # fmt: skip
        scored.append((value, r.position, video, reco_taste.reason(lift, follows, weight)))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [RecommendationDTO(video, value, why) for value, _, video, why in scored[:first]]


def _pools(conn: sa.Connection) -> tuple[dict[str, list[str]], datetime | None]:
    """The projection's pools and its watermark (every row is written at once)."""
    rows = conn.execute(sa.select(rm_reco_pools)).all()
    if not rows:
        return {}, None
    return {r.pool: r.videos for r in rows}, max(as_utc(r.updated_at) for r in rows)


def _taste(conn: sa.Connection, viewer_id: UUID) -> tuple[dict[str, float], float, list[str]]:
    """The viewer's lift per hashtag it watched, the lift of the others and its strongest
    hashtags, as the projection computes them (RecommendationsProjection.taste_of)."""
    me = conn.execute(
        sa.select(rm_reco_viewers.c.bias, rm_reco_viewers.c.factors).where(
            rm_reco_viewers.c.viewer_id == viewer_id
        )
    ).first()
    counts: dict[str, float] = dict(me.factors) if me is not None else {}
    tagged = me.bias if me is not None else 0.0
    t = rm_reco_tags.c
    rows = conn.execute(
        sa.select(t.hashtag, t.position, t.views).where(t.hashtag.in_([*counts, reco_taste.TOTAL]))
    ).all()
    views = {r.hashtag: r.views for r in rows}
    position = {r.hashtag: r.position for r in rows}
    tags = conn.execute(
        sa.select(sa.func.count()).where(t.hashtag != reco_taste.TOTAL)
    ).scalar_one()
    p = DEFAULT_PARAMS
    lifts, other = reco_taste.lifts(
        counts, tagged, views, views.get(reco_taste.TOTAL, 0.0), p.taste_smoothing, tags=tags
    )
    strongest = heapq.nlargest(p.taste_tags, lifts, key=lambda h: (lifts[h], -position[h]))
    return lifts, other, strongest


def _items(
    conn: sa.Connection, viewer_id: UUID, pooled: set[UUID], creators: set[UUID]
) -> dict[UUID, Any]:
    """The candidates' rows: the pooled videos and the followed creators' latest
    (`follow_videos_per_creator` each, whatever their status), active and unseen."""
    i = rm_reco_items.c
    latest = (
        sa.select(
            i.video_id,
            sa.func.row_number()
            .over(partition_by=i.creator_id, order_by=i.position.desc())
            .label("n"),
        )
        .where(i.creator_id.in_(creators))
        .subquery()
    )
    mine = sa.select(latest.c.video_id).where(
        latest.c.n <= DEFAULT_PARAMS.follow_videos_per_creator
    )
    query = (
        sa.select(rm_reco_items)
        .join(rm_videos, rm_videos.c.video_id == i.video_id)
        .where(rm_videos.c.status == "active")
        .where(i.video_id.in_(pooled) | i.video_id.in_(mine))
        .where(
            ~sa.exists().where(
                rm_reco_seen.c.viewer_id == viewer_id,
                rm_reco_seen.c.video_id == i.video_id,
            )
        )
    )
    return {r.video_id: r for r in conn.execute(query)}


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
