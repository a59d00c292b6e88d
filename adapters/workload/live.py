"""Live demo traffic: the generator's model, carried on past the demo's history on the
wall clock, and a background thread that sends it through the applications.

`demo_config` places the demo's history so that it ends when it is generated (start = now
minus the simulated days), so the first real command lands right after it instead of
months later. `LiveStream` continues the very simulation that generated that history (the
same creators, viewers and videos, who follows and liked what, which videos moderators
removed) one second of simulated time after another: organic views with their likes,
shares, comments and follows, sporadic reports and model flags, new uploads, bot bursts
and report waves (with decisions hours later), at a pace of about `events_per_second` on
average (the daily cycle shapes it as in the history). Its draws come from generators
seeded with the demo's seed and a salt, so the same salt gives the same stream.

`LiveTraffic` sends what is due every `tick` through the applications with event time =
now (the applications' clock), in a daemon thread that `stop()` ends and joins: once it
returns, the stream writes nothing more.
"""

import heapq
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from adapters.bootstrap import Container
from adapters.workload.drivers import DriveStats, apply_one
from adapters.workload.generator import _Simulation, _Video
from adapters.workload.model import (
    DAY,
    Command,
    EngagementBatch,
    PublishVideo,
    WorkloadConfig,
)
from adapters.workload.vocabulary import _caption, _duration, _sound
from commands.base import utc_now
from commands.engagement import Signal

log = logging.getLogger(__name__)

CHUNK = 1.0  # seconds of simulated traffic drawn at a time
# Events per organic view: its likes, shares, comments, follows and retries, and the bot
# bursts, reports and flags that come in proportion to views; measured on the default
# model (tests/unit/test_workload.py checks the resulting pace).
EVENTS_PER_VIEW = 1.23
UPLOADS_PER_VIEW = 1 / 250  # new videos keep trending moving (one every ~15 s at 20 ev/s)


def demo_config(seed: int, days: int, now: datetime) -> WorkloadConfig:
    """The demo workload whose history ends at `now` (to the second)."""
    end = now.replace(microsecond=0)
    return WorkloadConfig(seed=seed, days=days, start=end - timedelta(days=days))


class LiveStream:
    """Commands of live traffic in event-time order, drawn chunk by chunk after the end of
    the history `config` generates. Time is in seconds since `config.start`."""

    def __init__(self, config: WorkloadConfig, *, events_per_second: float, salt: str) -> None:
        if events_per_second <= 0:
            raise ValueError("events_per_second must be positive")
        sim = _Simulation(config)
        sim.run()  # the history's state: audiences, likes, follows, removals
        sim.rng = random.Random(f"{config.seed}/live/{salt}")
        sim.mod = random.Random(f"{config.seed}/live-moderation/{salt}")
        sim.horizon = math.inf
        sim.items = []
        sim.client_prefix = f"live{config.seed}-{salt}"  # never a retry of a history signal
        self.sim = sim
        self.config = config
        self.views_per_second = events_per_second / EVENTS_PER_VIEW
        self.published = list(sim.by_publish)
        self.generated_until = config.days * DAY  # the history's end
        self.pending: list[tuple[float, int, type, dict[str, Any]]] = []
        # Bot bursts and report waves per view, as in the history (per simulated day).
        per_view = 1 / max(config.views_per_day, 1)
        self.burst_per_view = config.bot_bursts * per_view
        self.wave_per_view = config.report_waves * per_view

    def until(self, t: float) -> list[Command]:
        """The commands with event time up to `t`, in order (each returned once)."""
        while self.generated_until <= t:
            self._chunk(self.generated_until)
            self.generated_until += CHUNK
        due: list[tuple[float, int, type, dict[str, Any]]] = []
        while self.pending and self.pending[0][0] <= t:
            due.append(heapq.heappop(self.pending))
        return self._commands(due)

    def _chunk(self, t0: float) -> None:
        sim, rng = self.sim, self.sim.rng
        count = sim.poisson(self.views_per_second * CHUNK * sim.diurnal(t0))
        sim.traffic(self.published, t0, CHUNK, count)
        uploads = sim.poisson(count * UPLOADS_PER_VIEW)
        bursts = sim.poisson(count * self.burst_per_view)
        waves = sim.poisson(count * self.wave_per_view)
        for _ in range(uploads):
            self._upload(t0 + rng.uniform(0.0, CHUNK))
        for _ in range(bursts):
            if (index := self._special_video(t0)) is not None:
                sim.bot_burst(index, t0 + rng.uniform(0.0, CHUNK))
        for _ in range(waves):
            if (index := self._special_video(t0)) is not None:
                sim.report_wave(1, index, t0 + rng.uniform(0.0, CHUNK), sim.moderators)
        for item in sim.items:
            heapq.heappush(self.pending, item)
        sim.items = []

    def _upload(self, t: float) -> None:
        """A new video by a creator picked by audience (reach), as popular as a random
        existing one."""
        sim, rng = self.sim, self.sim.rng
        creator = rng.choices(range(len(sim.creators)), weights=[c.reach for c in sim.creators])[0]
        video = _Video(sim.uuid(), creator, t, _duration(rng), rng.betavariate(2.0, 2.0))
        video.weight = rng.choice(sim.videos).weight
        sim.videos.append(video)
        self.published.append(len(sim.videos) - 1)
        caption, tags = _caption(rng)
        sim.emit(
            t,
            PublishVideo,
            video_id=video.id,
            creator_id=sim.creators[creator].id,
            caption=caption,
            hashtags=tuple(tags),
            sound_id=_sound(rng),
            duration_seconds=video.duration,
        )

    def _special_video(self, t: float) -> int | None:
        """A video for a bot burst or report wave: active, not in another story, picked by
        popularity (report waves and bot farms go where the views are)."""
        sim = self.sim
        pool = [
            i
            for i in self.published
            if i not in sim.special and sim.available(i, t) and sim.videos[i].published < t
        ]
        if not pool:
            return None
        index = sim.rng.choices(pool, weights=[sim.videos[i].weight for i in pool])[0]
        sim.special.add(index)
        return index

    def _commands(self, items: list[tuple[float, int, type, dict[str, Any]]]) -> list[Command]:
        """Consecutive signals become one batch (up to the batch size), as in the history."""
        commands: list[Command] = []
        batch: list[Signal] = []
        for t, _seq, cls, kwargs in items:
            when = self.sim.at(t)
            if cls is Signal:
                if len(batch) >= self.config.batch_size:
                    commands.append(EngagementBatch(tuple(batch), batch[0].occurred_at))
                    batch = []
                batch.append(Signal(occurred_at=when, **kwargs))
                continue
            if batch:
                commands.append(EngagementBatch(tuple(batch), batch[0].occurred_at))
                batch = []
            commands.append(cls(occurred_at=when, **kwargs))
        if batch:
            commands.append(EngagementBatch(tuple(batch), batch[0].occurred_at))
        return commands


class LiveTraffic:
    """Sends a `LiveStream` through `container`'s applications in a background thread,
    every `tick` seconds what has come due, each command stamped with the clock's now."""

    def __init__(
        self,
        container: Container,
        stream: LiveStream,
        *,
        clock: Callable[[], datetime] = utc_now,
        tick: float = 0.25,
    ) -> None:
        self.container = container
        self.stream = stream
        self.clock = clock
        self.tick = tick
        self.stats = DriveStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        # Simulated time runs with the wall clock from the moment the stream starts.
        origin = (self.clock() - self.stream.config.start).total_seconds()
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, args=(origin,), name="demo-live-traffic", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> DriveStats:
        """End the stream and wait for the thread: nothing is written after this returns
        (unless a write hangs past `timeout`, which is logged)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("demo live traffic did not stop within %.0f s", timeout)
            self.stats.seconds = time.monotonic() - self._started
            self.stats.position = self.container.head_position
        return self.stats

    def _run(self, origin: float) -> None:
        while not self._stop.wait(self.tick):
            due = self.stream.until(origin + time.monotonic() - self._started)
            for command in due:
                if self._stop.is_set():
                    return
                self._send(command)

    def _send(self, command: Command) -> None:
        now = self.clock()
        if isinstance(command, EngagementBatch):
            signals = tuple(replace(s, occurred_at=now) for s in command.signals)
            command = EngagementBatch(signals, now)
        else:
            command = replace(command, occurred_at=now)
        try:
            apply_one(self.container, command, self.stats)
        except Exception:  # e.g. the database is briefly unavailable: keep the demo going
            log.warning("demo live traffic: %s failed", type(command).__name__, exc_info=True)
            self.stats.count("rejected", "error")
        self.stats.commands += 1
