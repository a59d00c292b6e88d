"""The virality phase: a video's first day is not decided in its first hour.

Without it a video's popularity is a fixed Zipf weight decaying with age, so its first
hour's views (a Poisson sample of that weight) are the whole story, up to noise. Real
feeds do what this phase adds, through `_Video.multiplier` (so the hour's view count,
the daily cycle and the heavy tail stay the organic traffic's):

- a test push: in its first hour every new video gets extra weight (a test audience, so
  small creators get seen too), of a random size that says nothing about the video;
- the feed's verdict at the end of that hour, from how the test went: the completions,
  likes and shares the video's first-hour views actually got (read from the views this
  simulation emitted, as a feed reads its logs), the creator's reach and a hidden
  per-creator knack for hits, plus noise. A video the verdict favours may take off
  hours later (picked up, shared into other communities): it rises to a top video's
  popularity and then decays. The others keep a factor from 0.5 to 1.5 with quality.

So a big first hour is no promise and a quiet one no verdict; what tells is how the
first viewers watched, the creator's reach (followers) and record (past hits): all
observable early, none certain. Draws come from the phase's own generator
(`random.Random(f"{seed}/virality")`), made up front: other phases' draws do not move.
Runs before the trends phase, so trend videos keep their own designed shares.
"""

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapters.workload.model import DAY
from commands.engagement import Signal

if TYPE_CHECKING:  # the generator imports this module
    from adapters.workload.generator import _Simulation, _Video

HOUR = 3600.0
REFERENCE_RANK = 15  # take-offs peak near this rank's Zipf weight
# First-hour extra weight, in reference weights (times a log-normal): a test audience
# of a few views, enough for the verdict to read how they watched (at 3, half the
# videos had one view or none in their first hour).
TEST_PUSH = 6.0
# The verdict's engagement score: (completions + likes + SHARE_WEIGHT x shares + prior)
# per view, the prior being ENGAGEMENT_PRIOR views at the typical score.
SHARE_WEIGHT = 3.0
TYPICAL_ENGAGEMENT, ENGAGEMENT_SD, ENGAGEMENT_PRIOR = 0.3, 0.15, 2.0
# Take-off log-odds: intercept, per standard unit of engagement, of log creator reach
# and of the creator's hidden knack; noise standard deviation.
TAKEOFF_LOGIT = (-2.6, 2.5, 0.5, 0.5)
TAKEOFF_NOISE = 0.3
TAKEOFF_DELAY = (1.5 * HOUR, 8 * HOUR)  # after publication
RISE = (1.0 * HOUR, 3.0 * HOUR)  # to the peak
# Of the reference weight, log-uniform: a take-off reaches the top tenth of its day
# (from 3, a third of the take-offs stayed below it: a verdict that changed nothing).
PEAK = (6.0, 12.0)
HALF_LIFE = (4 * HOUR, 12 * HOUR)  # after the peak
KEPT = (0.5, 1.5)  # the feed's factor after the test hour, from quality 0 to 1


def shape_virality(sim: "_Simulation") -> None:
    """Give every catalogue video a test push and a verdict at the end of its first hour."""
    rng = random.Random(f"{sim.config.seed}/virality")
    if not sim.videos:
        return
    weights = sorted((v.weight for v in sim.videos), reverse=True)
    reference = weights[min(REFERENCE_RANK, len(weights)) - 1]
    knack = [rng.gauss(0.0, 1.0) for _ in sim.creators]
    reach = [math.log(c.reach) for c in sim.creators]
    mean_reach = sum(reach) / len(reach)
    sd_reach = math.sqrt(sum((r - mean_reach) ** 2 for r in reach) / len(reach)) or 1.0
    early = _EarlyEngagement(sim)
    b0, _, b_reach, b_knack = TAKEOFF_LOGIT
    for index, video in enumerate(sim.videos):
        prior = (
            b0 + b_reach * (reach[video.creator] - mean_reach) / sd_reach
            + b_knack * knack[video.creator] + rng.gauss(0.0, TAKEOFF_NOISE)
        )  # fmt: skip
        takeoff = _Takeoff(
            start=video.published + rng.uniform(*TAKEOFF_DELAY),
            rise=rng.uniform(*RISE),
            peak=reference * math.exp(rng.uniform(*map(math.log, PEAK))),
            half_life=rng.uniform(*HALF_LIFE),
            chance=rng.random(),
            prior=prior,
        )
        push = reference * TEST_PUSH * rng.lognormvariate(0.0, 0.5)
        kept = KEPT[0] + (KEPT[1] - KEPT[0]) * video.quality
        video.multiplier = _multiplier(index, video, push, kept, takeoff, early, video.multiplier)


class _EarlyEngagement:
    """What each video's first hour got, tallied from the simulation's emitted signals
    (incrementally: each call reads only the signals emitted since the last)."""

    def __init__(self, sim: "_Simulation") -> None:
        self.sim, self.cursor = sim, 0
        self.index = {v.id: (i, v.published) for i, v in enumerate(sim.videos)}
        # Bots' signals do not count: the phases that inject them ran before this one, and
        # organic traffic must not move with them (the evaluation compares runs with and
        # without bots; tests/unit/test_workload_bots.py).
        self.bots = frozenset(b for burst in sim.bursts for b in burst.bot_ids)
        self.counts: dict[int, list[int]] = {}  # views, completions, likes, shares

    def score(self, index: int) -> float:
        """The engagement score of video `index`'s first hour, in standard units."""
        items = self.sim.items
        for t, _seq, cls, kw in items[self.cursor :]:
            if cls is not Signal:
                continue
            found = self.index.get(kw.get("video_id"))
            if found is None or t >= found[1] + HOUR or kw.get("viewer_id") in self.bots:
                continue
            slot = {"view": 0, "like": 2, "share": 3}.get(kw["kind"])
            if slot is not None:
                c = self.counts.setdefault(found[0], [0, 0, 0, 0])
                c[slot] += 1
                c[1] += int(slot == 0 and kw.get("completed", False))
        self.cursor = len(items)
        views, completions, likes, shares = self.counts.get(index, (0, 0, 0, 0))
        k = ENGAGEMENT_PRIOR
        engaged = completions + likes + SHARE_WEIGHT * shares + k * TYPICAL_ENGAGEMENT
        return (engaged / (views + k) - TYPICAL_ENGAGEMENT) / ENGAGEMENT_SD


class _Takeoff:
    __slots__ = ("chance", "half_life", "peak", "prior", "rise", "start", "verdict")

    def __init__(
        self, start: float, rise: float, peak: float, half_life: float, chance: float,
        prior: float,
    ) -> None:  # fmt: skip
        self.start, self.rise, self.peak, self.half_life = start, rise, peak, half_life
        self.chance, self.prior = chance, prior  # the draw and the log-odds without the test
        self.verdict: bool | None = None  # decided when the first hour is over

    def extra(self, t: float) -> float:
        """Extra popularity weight at t: a linear rise to the peak, then halving."""
        if t < self.start:
            return 0.0
        if t < self.start + self.rise:
            return self.peak * (t - self.start) / self.rise
        return self.peak * 0.5 ** ((t - self.start - self.rise) / self.half_life)


def _multiplier(
    index: int, video: "_Video", push: float, kept: float, takeoff: _Takeoff,
    early: _EarlyEngagement, inner: Callable[[float], float] | None,
) -> Callable[[float], float]:  # fmt: skip
    """The factor of the video's (age-decayed) weight: plus the test push in the first
    hour; after it, the kept factor plus a take-off's extra weight if the verdict (made
    on the first call after the hour) favoured it. Additive weights are divided by the
    decayed weight, since `eligible` multiplies by it."""
    published, weight = video.published, video.weight

    def multiplier(t: float) -> float:
        decayed = weight * max(0.05, math.exp(-(t - published) / DAY / 2.0))
        if t < published + HOUR:
            factor = 1.0 + push / decayed
        else:
            if takeoff.verdict is None:
                logit = takeoff.prior + TAKEOFF_LOGIT[1] * early.score(index)
                takeoff.verdict = takeoff.chance < 1.0 / (1.0 + math.exp(-logit))
            factor = kept
            if takeoff.verdict:
                factor += takeoff.extra(t) / decayed
        return factor * (inner(t) if inner is not None else 1.0)

    return multiplier


def took_off(video: Any) -> bool | None:
    """Whether the phase's verdict made `video` take off (None: not decided, or not ours):
    for analysis scripts and tests, read from the multiplier's closure."""
    cells = getattr(getattr(video, "multiplier", None), "__closure__", None) or ()
    for cell in cells:
        if isinstance(cell.cell_contents, _Takeoff):
            return cell.cell_contents.verdict
    return None
