"""The recommendation score: one number on one scale, shared by the projection and the reader.

    score = (views per hour + floor) x taste lift ** taste weight x (follow boost if followed)

Popularity is the video's event-time decaying view rate. The taste lift says how much
more this viewer watches the video's hashtags than everybody does: for each hashtag t,

    lift(t) = (c_t / prior_t + a) / (n + a)

where c_t is the viewer's views of videos tagged t (a video with k hashtags counts 1/k
for each), n all the viewer's tagged views, prior_t the share of all tagged views that
went to t, and `a` a smoothing in views: a viewer with no history has lift 1 for every
hashtag, one who watched n videos none of them tagged t has a / (n + a). A video's lift
is the mean of its hashtags' lifts (1 for a video without hashtags: nothing is known).
Hashtags on everything (#fyp) get lift about 1 for everybody: the prior absorbs them.

The product is "views per hour, as this viewer's taste weighs them": comparable across
every candidate of a list, whichever reason put it there. The reason reported with an
item is the factor that lifted it: following, else personal (taste lift above 1), else
trending.
"""

import itertools
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

TOTAL = ""  # the read model's row of all tagged views among the hashtags' (never a hashtag)
K = TypeVar("K", bound=Hashable)  # a hashtag: its interned index, or its name


def lifts(
    counts: Mapping[K, float], n: float, tag_views: Mapping[K, float] | Sequence[float],
    total: float, a: float, tags: int | None = None,
) -> tuple[dict[K, float], float]:  # fmt: skip
    """The viewer's lift per hashtag it watched, and the lift of any other hashtag.
    `tag_views[t]`: hashtag t's views, for every t in `counts`; `tags`: how many hashtags
    there are (len(tag_views) when it lists them all)."""
    tags = len(tag_views) if tags is None else tags
    out = {t: (c * (total + tags) / (tag_views[t] + 1.0) + a) / (n + a) for t, c in counts.items()}
    return out, a / (n + a)


def video_lift(tags: Sequence[K], lift: Mapping[K, float], other: float) -> float:
    if not tags:
        return 1.0
    return sum(map(lift.get, tags, itertools.repeat(other, len(tags)))) / len(tags)


def score(popularity: float, lift: float, follows: bool, *, floor: float, taste_weight: float,
          follow_boost: float) -> float:  # fmt: skip
    value = (popularity + floor) * lift**taste_weight
    return value * follow_boost if follows else value


def reason(lift: float, follows: bool, taste_weight: float) -> str:
    if follows:
        return "following"
    if taste_weight > 0.0 and lift > 1.0:
        return "personal"
    return "trending"
