"""Bot campaigns that imitate people ("drips"), beside the generator's obvious bursts.

A drip is what a paid view farm sells when it does not want to be caught by a rate
limit: tens to hundreds of accounts, each watching the target video a few times over
several hours, with watch times drawn from the same mixture as real viewers' (early
skips, partial watches, completions), on the devices and from the traffic sources real
viewers use, a like now and then, and some views of popular videos as camouflage. Per
minute, the target receives about as many views as a popular video does: nothing a
views-per-minute threshold can separate from organic traffic.

What still gives a drip away is what a farm cannot buy cheaply, and what a real
platform sees in its own data:
- the accounts are new: the farm registers (or wakes) them for the campaign, so they
  are first seen within hours of their views of the target, and together (a cohort),
  while a video's organic audience mixes new and long-standing viewers in the share the
  whole platform has at that time;
- they are narrow: most of an account's views go to the one video it was paid for,
  often more than once, where real viewers spread their views over many videos;
- they do nothing social: no follows, shares or comments, rarely a like.
None of these separates one account from a real newcomer (a new viewer's first view
is also "new and narrow"); only their concentration on one video in one window does.

Campaigns start after `WARMUP` into the run: the simulated platform has no history
before its first event, so in the first hours every real viewer is "new" too, which
no real platform looks like. Everything is drawn from this phase's own generator, so
adding campaigns moves no draw of the main sequence (organic traffic, bursts, waves).
"""

import math
import random
from typing import TYPE_CHECKING, Any
from uuid import UUID

from adapters.workload.model import BotBurst
from adapters.workload.vocabulary import ENGAGEMENT_RATES, _device, _traffic_source
from commands.engagement import Signal

if TYPE_CHECKING:
    from adapters.workload.generator import _Simulation

HOUR = 3600.0
WARMUP = 6 * HOUR  # no campaign before this far into the run (see the module docstring)
ACCOUNTS = (25, 150)  # accounts per campaign
LENGTH_HOURS = (3.0, 12.0)  # how long a campaign drips
MAX_VIEWS_PER_HOUR = 20.0  # a drip stays slow: longer if it has more views to place
# Each further view of the target by an account: geometric with this chance per campaign
# (careful farms use an account about once, greedy ones three or four times).
REPEAT_P = (0.1, 0.6)
CAMOUFLAGE_P = 0.35  # accounts that also watch a popular video or two
LIKE_BOOST = 1.5  # likes are what the customer pays for too: a bit above organic rates


def bot_drips(sim: "_Simulation") -> None:
    """`sim.config.drip_campaigns` human-like campaigns on videos outside other stories."""
    farm = _Farm(sim)
    for _ in range(sim.config.drip_campaigns):
        latest = sim.horizon - LENGTH_HOURS[1] * HOUR - 600.0
        pool = [
            i for i, v in enumerate(sim.videos) if i not in sim.special and v.published < latest
        ]
        if not pool or latest <= WARMUP:
            return
        index = farm.rng.choice(pool)  # farms sell to anyone: any video, not popular ones
        sim.special.add(index)
        start = farm.rng.uniform(max(sim.videos[index].published + 600.0, WARMUP), latest)
        farm.drip(index, start)


class _Farm:
    """Draws from its own generator and numbers its signals' client ids itself, so the
    main sequence of draws and of client ids stays as it was without campaigns."""

    def __init__(self, sim: "_Simulation") -> None:
        self.sim = sim
        self.rng = random.Random(f"{sim.config.seed}/bots")
        self.signals = 0

    def drip(self, index: int, start: float) -> BotBurst | None:
        """One campaign on video `index` from `start` on; recorded in `sim.bursts`."""
        sim, rng = self.sim, self.rng
        count = rng.randint(*ACCOUNTS)
        accounts = [UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]
        repeat = rng.uniform(*REPEAT_P)
        plan = [(bot, 1 + _geometric(rng, repeat)) for bot in accounts]
        views = sum(n for _, n in plan)
        hours = max(rng.uniform(*LENGTH_HOURS), views / MAX_VIEWS_PER_HOUR)
        end = min(start + hours * HOUR, sim.horizon - 1.0)
        first, last = end, start
        for bot, n in plan:
            # Each account works a stretch of the campaign, not all of it: farms rotate them.
            span = rng.uniform(0.2, 1.0) * (end - start)
            a = rng.uniform(start, end - span)
            b = a + span
            times = sorted(_daytime(sim, rng, a, b) for _ in range(n))
            for t in times:
                self.view(bot, index, t)
                first, last = min(first, t), max(last, t)
            if rng.random() < CAMOUFLAGE_P:
                for _ in range(rng.randint(1, 2)):
                    # Before, between or after its target views: around its own stretch.
                    t = rng.uniform(max(0.0, a - HOUR), min(sim.horizon - 1.0, b + HOUR))
                    other = _popular(sim, rng, t)
                    if other is not None and other != index:
                        self.view(bot, other, t)
            stage = 2 if rng.random() < 0.3 else 1
            if rng.random() < n * ENGAGEMENT_RATES[stage][0] * LIKE_BOOST:
                self.like(bot, index, times[-1] + rng.uniform(0.5, 4.0))
        if last < first:
            return None
        video_id = sim.videos[index].id
        burst = BotBurst(video_id, sim.at(first), sim.at(last), tuple(accounts), views, "drip")
        sim.bursts.append(burst)
        return burst

    def view(self, bot: UUID, index: int, t: float) -> None:
        video, rng = self.sim.videos[index], self.rng
        watch = _watch(rng, video.duration, video.quality)  # as its real viewers watch it
        self.signal(
            t,
            index,
            kind="view",
            viewer_id=bot,
            watch_seconds=watch,
            completed=watch >= video.duration,
            traffic_source=_traffic_source(rng),
            device=_device(rng),
        )

    def like(self, bot: UUID, index: int, t: float) -> None:
        if (bot, index) not in self.sim.liked:
            self.sim.liked.add((bot, index))
            self.signal(t, index, kind="like", viewer_id=bot)

    def signal(self, t: float, index: int, **kw: Any) -> None:
        """Like _Simulation.signal (nothing after the run or on a removed video), with
        client ids of the farm's own and no redeliveries."""
        sim = self.sim
        if t >= sim.horizon or not sim.available(index, t):
            return
        self.signals += 1
        kw["client_event_id"] = f"{sim.client_prefix}-drip-{self.signals}"
        sim.emit(t, Signal, video_id=sim.videos[index].id, **kw)


def _geometric(rng: random.Random, p: float) -> int:
    """Failures before the first success, success probability 1 - p per trial."""
    k = 0
    while rng.random() < p:
        k += 1
    return k


def _daytime(sim: "_Simulation", rng: random.Random, a: float, b: float) -> float:
    """A time in [a, b), denser when people are awake (the farm follows the daily cycle,
    as a per-hour volume check would otherwise see it at night)."""
    peak = 1.0 + sim.config.diurnal_amplitude
    t = rng.uniform(a, b)
    for _ in range(8):
        if rng.random() * peak <= sim.diurnal(t):
            break
        t = rng.uniform(a, b)
    return t


def _watch(rng: random.Random, duration: float, quality: float) -> float:
    """The organic watch-time mixture (see _Simulation.view), for a video of `quality`."""
    u = rng.random()
    if u < 0.45 - 0.3 * quality:  # early skip
        watch = rng.uniform(0.3, max(0.31, min(3.0, 0.3 * duration)))
    elif u < 0.85 - 0.2 * quality:  # partial watch
        watch = duration * rng.uniform(0.15, 0.97)
    else:  # completion, sometimes replayed
        loops = 1.0 + (rng.expovariate(1.5) if rng.random() < 0.2 else 0.0)
        watch = duration * min(loops, 4.9)
    return round(watch, 2)


def _popular(sim: "_Simulation", rng: random.Random, t: float) -> int | None:
    """A video picked by popularity at `t`, as organic traffic picks them."""
    published = [i for i in sim.by_publish if sim.videos[i].published < t]
    eligible, cum = sim.eligible(published, t)
    if not eligible or not cum[-1] > 0 or math.isnan(cum[-1]):
        return None
    return rng.choices(eligible, cum_weights=cum)[0]
