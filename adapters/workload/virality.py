"""The virality phase: a video's first day is not decided in its first hour.

Without it a video's popularity is a fixed Zipf weight decaying with age, so its first
hour's views (a Poisson sample of that weight) are the whole story, up to noise. On real
platforms two things break that, and this phase adds both, through `_Video.multiplier`:

- late take-offs: some videos take off hours after publication (picked up by the feed,
  shared into other communities) and hold a top video's popularity for a while before
  they decay. Which ones is not random: the chance rises with the video's appeal (it
  shows, noisily, in how its test audience watched), with the creator's reach (their
  followers) and with a hidden per-creator knack for hits (it shows in how the creator's
  earlier videos did). A noise term keeps it a chance, not a rule;
- the feed's test: every new video is first shown to a small test audience in its first
  hour, and how they watch (completions, likes, shares) is driven by the video's
  hidden appeal, which also drives the take-off. The test audience's size says nothing
  about the video, so its first hour's view count says less than how it was watched;
  after the test the feed keeps showing well-watched videos and drops poorly watched ones
  (a factor of the weight from 0.5 to 1.5 with quality). A big first hour is no longer a
  promise, and a quiet one is no verdict.

Draws come from the phase's own generator (`random.Random(f"{seed}/virality")`): other
phases' draws do not move. Runs before the trends phase, so trend videos keep their own
designed shares.
"""

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from adapters.workload.model import DAY
from adapters.workload.vocabulary import _channel, _device
from commands.engagement import Signal

if TYPE_CHECKING:  # the generator imports this module
    from adapters.workload.generator import _Simulation, _Video

HOUR = 3600.0
REFERENCE_RANK = 15  # take-offs peak near this rank's Zipf weight
TEST_AUDIENCE = 8.0  # mean test viewers of a new video (Poisson), in its first 50 minutes
APPEAL_FROM_QUALITY = 0.6  # appeal = this x quality (z) + the rest, a standard normal
# How a test viewer responds, log-odds: intercept and per unit of appeal.
TEST_COMPLETES = (-1.0, 1.5)
TEST_LIKES = (-2.5, 1.3)
TEST_SHARES = (-3.8, 1.5)
# Take-off log-odds: intercept, per unit of appeal, of log creator reach (z) and of the
# creator's hidden knack; noise standard deviation.
TAKEOFF_LOGIT = (-3.6, 2.0, 0.6, 0.4)
TAKEOFF_NOISE = 0.3
TAKEOFF_DELAY = (1.5 * HOUR, 12 * HOUR)  # after publication
RISE = (1.0 * HOUR, 3.0 * HOUR)  # to the peak
PEAK = (1.2, 4.0)  # of the reference weight, log-uniform
HALF_LIFE = (4 * HOUR, 12 * HOUR)  # after the peak
KEPT = (0.5, 1.5)  # the feed's factor after the test hour, from quality 0 to 1


def shape_virality(sim: "_Simulation") -> None:
    """Give every catalogue video a test audience, a kept factor and, for some, a take-off."""
    rng = random.Random(f"{sim.config.seed}/virality")
    if not sim.videos:
        return
    weights = sorted((v.weight for v in sim.videos), reverse=True)
    reference = weights[min(REFERENCE_RANK, len(weights)) - 1]
    knack = [rng.gauss(0.0, 1.0) for _ in sim.creators]
    reach = [math.log(c.reach) for c in sim.creators]
    mean_reach = sum(reach) / len(reach)
    sd_reach = math.sqrt(sum((r - mean_reach) ** 2 for r in reach) / len(reach)) or 1.0
    b0, b_appeal, b_reach, b_knack = TAKEOFF_LOGIT
    ids = 0
    for index, video in enumerate(sim.videos):
        quality_z = (video.quality - 0.5) / math.sqrt(0.05)  # Beta(2, 2): sd sqrt(1/20)
        appeal = APPEAL_FROM_QUALITY * quality_z + math.sqrt(
            1 - APPEAL_FROM_QUALITY**2
        ) * rng.gauss(0.0, 1.0)
        reach_z = (reach[video.creator] - mean_reach) / sd_reach
        logit = (
            b0 + b_appeal * appeal + b_reach * reach_z + b_knack * knack[video.creator]
            + rng.gauss(0.0, TAKEOFF_NOISE)
        )  # fmt: skip
        takeoff = None
        if rng.random() < _sigmoid(logit):
            takeoff = _Takeoff(
                start=video.published + rng.uniform(*TAKEOFF_DELAY),
                rise=rng.uniform(*RISE),
                peak=reference * math.exp(rng.uniform(*map(math.log, PEAK))),
                half_life=rng.uniform(*HALF_LIFE),
            )
        ids = _test_audience(sim, rng, index, appeal, ids)
        kept = KEPT[0] + (KEPT[1] - KEPT[0]) * video.quality
        video.multiplier = _multiplier(video, kept, takeoff, video.multiplier)


def _test_audience(
    sim: "_Simulation", rng: random.Random, index: int, appeal: float, ids: int
) -> int:
    """Views (with likes and shares) of the video's test audience; returns the last id used."""
    video = sim.videos[index]
    k = 0
    limit, lam = math.exp(-TEST_AUDIENCE), 1.0
    while True:  # Poisson draw (Knuth), from this phase's generator
        lam *= rng.random()
        if lam <= limit:
            break
        k += 1
    for viewer in rng.sample(sim.viewers, min(k, len(sim.viewers))):
        t = video.published + rng.uniform(60.0, 3000.0)
        if t >= sim.horizon or not sim.available(index, t):
            continue
        if rng.random() < _sigmoid(TEST_COMPLETES[0] + TEST_COMPLETES[1] * appeal):
            watch = video.duration * (1.0 + (rng.expovariate(1.5) if rng.random() < 0.2 else 0.0))
        elif rng.random() < 0.4:
            watch = rng.uniform(0.3, max(0.31, min(3.0, 0.3 * video.duration)))  # a skip
        else:
            watch = video.duration * rng.uniform(0.15, 0.97)
        watch = round(min(watch, 4.9 * video.duration), 2)
        ids += 1
        kw = {"video_id": video.id, "viewer_id": viewer}
        sim.emit(
            t, Signal, kind="view", watch_seconds=watch, completed=watch >= video.duration,
            traffic_source="for_you", device=_device(rng),
            client_event_id=f"{sim.client_prefix}-test-{ids}", **kw,
        )  # fmt: skip
        if (viewer, index) not in sim.liked and rng.random() < _sigmoid(
            TEST_LIKES[0] + TEST_LIKES[1] * appeal
        ):
            sim.liked.add((viewer, index))
            ids += 1
            sim.emit(t + rng.uniform(0.2, 4.0), Signal, kind="like",
                     client_event_id=f"{sim.client_prefix}-test-{ids}", **kw)  # fmt: skip
        if rng.random() < _sigmoid(TEST_SHARES[0] + TEST_SHARES[1] * appeal):
            ids += 1
            sim.emit(t + rng.uniform(1.0, 15.0), Signal, kind="share", channel=_channel(rng),
                     client_event_id=f"{sim.client_prefix}-test-{ids}", **kw)  # fmt: skip
    return ids


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


class _Takeoff:
    __slots__ = ("half_life", "peak", "rise", "start")

    def __init__(self, start: float, rise: float, peak: float, half_life: float) -> None:
        self.start, self.rise, self.peak, self.half_life = start, rise, peak, half_life

    def extra(self, t: float) -> float:
        """Extra popularity weight at t: a linear rise to the peak, then halving."""
        if t < self.start:
            return 0.0
        if t < self.start + self.rise:
            return self.peak * (t - self.start) / self.rise
        return self.peak * 0.5 ** ((t - self.start - self.rise) / self.half_life)


def _multiplier(
    video: "_Video", kept: float, takeoff: _Takeoff | None,
    inner: Callable[[float], float] | None,
) -> Callable[[float], float]:  # fmt: skip
    """The factor of the video's (age-decayed) weight: the kept factor after the test
    hour, plus the take-off's extra weight (divided by the decayed weight, since
    `eligible` multiplies by it)."""
    published, weight = video.published, video.weight

    def multiplier(t: float) -> float:
        factor = 1.0
        if t >= published + HOUR:
            factor = kept
            if takeoff is not None:
                decayed = weight * max(0.05, math.exp(-(t - published) / DAY / 2.0))
                factor += takeoff.extra(t) / decayed
        return factor * (inner(t) if inner is not None else 1.0)

    return multiplier
