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
from collections.abc import Mapping, Sequence

OTHER = ""  # the lift of every hashtag not listed (hashtags are never empty)


def lifts(
    counts: Mapping[int, float], n: float, tag_views: Sequence[float], total: float, a: float
) -> tuple[dict[int, float], float]:
    """The viewer's lift per hashtag it watched, and the lift of any other hashtag."""
    tags = len(tag_views)
    out = {t: (c * (total + tags) / (tag_views[t] + 1.0) + a) / (n + a) for t, c in counts.items()}
    return out, a / (n + a)


def video_lift(tags: Sequence[int], lift: Mapping[int, float], other: float) -> float:
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
