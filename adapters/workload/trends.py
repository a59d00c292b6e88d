"""The trends phase: hashtags and sounds that did not exist appear, and some take off.

Every launch creates a key nobody used before (a hashtag, or a sound id in the same
"snd-NNNN" form as the organic ones, so a name gives nothing away) and publishes videos
with it over the following hours, by creators picked by reach (big creators jump on
trends first). What the phase designs is the key's SHARE of the platform's views over
time, not each video's popularity: a trend is a change in what people watch, and the
platform's own daily cycle must not be part of it. The share grows exponentially from
about one ordinary video's share, at a rate drawn per launch, then:

- a take-off keeps growing for 5-17 hours to a peak share of 6-22 % of the popularity
  weight (the top organic hashtags hold 10-30 % of views), then decays with a half-life
  of hours. It is recorded as `TrendStart(kind, key, start, peak)`;
- a fizzle grows at the same rates but stops at 0.6-3 % after a few hours and decays
  faster. It is NOT a trend in the truth: early on nobody can tell the two apart (that
  is what makes a detector's precision mean something), only the growth that continues
  past where fizzles stop tells.

Each video carries a luck weight; `_Video.multiplier` scales it so that the key's videos
published so far together hold the designed share of the platform's popularity weight
(the others' total is computed once an hour, when the traffic asks). The share of VIEWS is lower,
about 60 % of it: the for-you feed (taste.py) shows a new key's videos only outside its
viewers' interests, which are the organic hashtags. Draws come from the phase's own
generator (`random.Random(f"{seed}/trends")`): the other phases' draws do not move.
"""

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

from adapters.workload.model import PublishVideo, TrendStart
from adapters.workload.vocabulary import _TAG_CUM, _TAGS, _WORDS, _duration, _sound

if TYPE_CHECKING:  # the generator imports this module
    from adapters.workload.generator import _Simulation, _Video

HOUR = 3600.0
TAKEOFF_SHARE = 0.5  # of launches; the others fizzle
START_SHARE = 0.003  # the first video: about what one ordinary video gets
GROWTH_PER_HOUR = (0.25, 0.55)  # the share's exponential rate (x1.3 to x1.7 an hour)
PEAK_SHARE = (0.06, 0.22)  # take-offs, log-uniform (of the popularity weight, see above)
FIZZLE_SHARE = (0.006, 0.03)  # where fizzles stop, log-uniform
HALF_LIFE_HOURS = {True: (4.0, 10.0), False: (1.0, 3.0)}  # after the top
VIDEOS = {True: (10, 30), False: (2, 6)}  # published while it grows (and a little after)


def launch_trends(sim: "_Simulation") -> None:
    """Launch `trends_per_day` new keys a day; record the ones that take off."""
    cfg = sim.config
    rng = random.Random(f"{cfg.seed}/trends")
    launches = round(cfg.trends_per_day * cfg.days)
    takeoffs = round(launches * TAKEOFF_SHARE)
    fates = [True] * takeoffs + [False] * (launches - takeoffs)
    rng.shuffle(fates)
    if not fates:
        return
    organic = _OrganicWeight(sim)
    used: set[tuple[str, str]] = set()
    for takes_off in fates:
        kind = rng.choice(("hashtag", "sound"))
        key = _new_key(rng, kind, used)
        curve = _curve(rng, takes_off, sim.horizon)
        if curve is None:
            continue
        _publish(sim, rng, (kind, key), curve, takes_off, organic)
        if takes_off:
            sim.trend_starts.append(TrendStart(kind, key, sim.at(curve.start), sim.at(curve.top)))
    sim.by_publish = sorted(range(len(sim.videos)), key=lambda i: sim.videos[i].published)


class _Curve:
    """The key's designed share of views at t: exponential growth to `top`, then decay."""

    def __init__(self, start: float, rate: float, top_share: float, half_life: float) -> None:
        self.start, self.rate, self.top_share, self.half_life = start, rate, top_share, half_life
        self.top = start + math.log(top_share / START_SHARE) / rate * HOUR

    def share(self, t: float) -> float:
        if t < self.start:
            return 0.0
        if t <= self.top:
            return self.top_share * math.exp(-self.rate * (self.top - t) / HOUR)
        return self.top_share * 0.5 ** ((t - self.top) / (self.half_life * HOUR))


def _curve(rng: random.Random, takes_off: bool, horizon: float) -> _Curve | None:
    low, high = PEAK_SHARE if takes_off else FIZZLE_SHARE
    top_share = math.exp(rng.uniform(math.log(low), math.log(high)))
    rate = rng.uniform(*GROWTH_PER_HOUR)
    half_life = rng.uniform(*HALF_LIFE_HOURS[takes_off])
    rise = math.log(top_share / START_SHARE) / rate * HOUR
    # Start after the platform has warmed up; a take-off peaks an hour before the end at
    # the latest, so that "detected before its peak" can be decided for every one.
    latest = horizon - rise - HOUR if takes_off else horizon - 3 * HOUR
    if latest <= 2 * HOUR:
        return None
    return _Curve(rng.uniform(2 * HOUR, latest), rate, top_share, half_life)


def _new_key(rng: random.Random, kind: str, used: set[tuple[str, str]]) -> str:
    while True:
        if kind == "hashtag":
            key = f"{rng.choice(_WORDS)}{rng.choice(_WORDS)}{rng.choice(('', 'challenge', 'core'))}"
        else:
            key = f"snd-{rng.randint(5000, 9999)}"  # organic sounds are snd-0000..4999
        if (kind, key) not in used and key not in _TAGS:
            used.add((kind, key))
            return key


def _publish(
    sim: "_Simulation", rng: random.Random, trend: tuple[str, str], curve: _Curve,
    takes_off: bool, organic: "_OrganicWeight",
) -> None:  # fmt: skip
    """The key's videos: the first at its start, the others drawn by the share curve (more
    while it grows) until its top plus one half-life."""
    from adapters.workload.generator import _Video  # the generator imports this module

    kind, key = trend
    low, high = VIDEOS[takes_off]
    count = rng.randint(low, high)
    end = min(curve.top + curve.half_life * HOUR, sim.horizon - 600.0)
    times = [curve.start, *sorted(_draw_time(rng, curve, end) for _ in range(count - 1))]
    reach = [c.reach for c in sim.creators]
    videos: list[_Video] = []
    for t in times:
        creator = rng.choices(range(len(sim.creators)), weights=reach)[0]
        video = _Video(
            UUID(int=rng.getrandbits(128), version=4), creator, t, _duration(rng),
            rng.betavariate(2.0, 2.0), weight=rng.lognormvariate(0.0, 0.8),
        )  # fmt: skip
        videos.append(video)
        sim.videos.append(video)
        tags = list(dict.fromkeys(rng.choices(_TAGS, cum_weights=_TAG_CUM, k=rng.randint(0, 3))))
        sound = _sound(rng)
        if kind == "hashtag":
            tags.insert(rng.randint(0, len(tags)), key)
        else:
            sound = key
        caption = rng.choice(("new trend alert", "had to try this", "my take", "pov"))
        sim.emit(
            t, PublishVideo, video_id=video.id, creator_id=sim.creators[creator].id,
            caption=f"{caption} " + " ".join(f"#{tag}" for tag in tags),
            hashtags=tuple(tags), sound_id=sound, duration_seconds=video.duration,
        )  # fmt: skip
    for video in videos:
        video.multiplier = _share_of(curve, videos, organic, video.multiplier)


def _draw_time(rng: random.Random, curve: _Curve, end: float) -> float:
    """A publish time in [start, end) with density proportional to the share curve
    (rejection sampling; the curve's maximum is its top share)."""
    while True:
        t = rng.uniform(curve.start, end)
        if rng.random() * curve.top_share <= curve.share(t):
            return t


def _share_of(
    curve: _Curve, videos: list["_Video"], organic: "_OrganicWeight",
    inner: Callable[[float], float] | None,
) -> Callable[[float], float]:  # fmt: skip
    """The multiplier that gives the key's videos published before t, together, the
    weight that makes `curve.share(t)` of the platform's (organic) weight."""

    def multiplier(t: float) -> float:
        luck = sum(v.weight for v in videos if v.published < t)
        share = min(curve.share(t), 0.5)
        if luck <= 0.0 or share <= 0.0:
            return 0.0
        factor = share / (1.0 - share) * organic.at(t) / luck
        return factor * (inner(t) if inner is not None else 1.0)

    return multiplier


class _OrganicWeight:
    """The other videos' total popularity weight at t, as `eligible` computes it (statuses
    and other phases' multipliers included), once per hour, on the first call in it.
    Lazily, during the traffic: another phase's multiplier may depend on what happened
    before t (virality's verdict after a video's first hour does), so it is asked only
    when `eligible` asks it too, with the same t."""

    def __init__(self, sim: "_Simulation") -> None:
        self.sim = sim
        self.count = len(sim.videos)  # the videos before this phase's: never its own
        self.totals: dict[int, float] = {}

    def at(self, t: float) -> float:
        hour = int(t // HOUR)
        total = self.totals.get(hour)
        if total is None:
            videos = self.sim.videos
            published = [i for i in range(self.count) if videos[i].published < t]
            cum = self.sim.eligible(published, t)[1]
            total = self.totals[hour] = cum[-1] if cum else 0.0
        return total
