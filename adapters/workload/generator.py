"""A seeded, deterministic generator of a realistic ReelPulse workload.

The simulation runs on a virtual clock (seconds since `config.start`), never the wall
clock, and draws every random choice from one `random.Random(seed)`: the same config gives
the same command list, byte for byte. Draws that shape moderation signals come from a
second generator (`self.mod`, seeded from the seed), so adding or tuning them leaves the
main sequence, hence organic traffic, follows and bot bursts, unchanged for a seed.
What it models, and why:

- creators with power-law (Pareto) audiences, so a few creators hold most followers;
- Zipf video popularity (rank from creator reach x luck), decaying with video age;
- diurnal traffic: a sinusoid over the hour of day (peak at 20:00 UTC);
- watch time as a mixture (early skips, partial watches, completions with replays),
  `completed` being exactly `watch_seconds >= duration`;
- like/share/comment/follow rates conditioned on how much of the video was watched;
- injected bot bursts and report waves (with decisions and appeals), recorded in a
  `GroundTruth` so detectors and moderation analytics can be scored against it;
- moderation that a classifier can learn: each wave has a hidden "harmful" truth that
  decides its outcome AND shapes what is observable (harmful: reports concentrated on
  one reason, higher auto-flag scores; benign: fewer reports, mixed reasons, lower
  scores), and moderators review a share of the sporadic background cases (benign: keep);
- a small fraction of redelivered signals (same client_event_id), as mobile clients retry.

Invariants are kept (no double likes or follows, nothing on a video while it is removed),
so a correct backend rejects almost nothing; drivers tolerate rejections anyway.
"""

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from adapters.workload.bots import bot_drips
from adapters.workload.comment_moderation import comment_moderation
from adapters.workload.model import (
    DAY,
    SLOT,
    AppealCase,
    AutoFlagVideo,
    BotBurst,
    Command,
    DecideCase,
    EngagementBatch,
    GroundTruth,
    PublishVideo,
    RegisterCreator,
    ReportVideo,
    ReportWave,
    ResolveAppeal,
    SentimentTurn,
    TrendStart,
    Workload,
    WorkloadConfig,
)
from adapters.workload.sentiment import CommentWriter, sentiment_turns
from adapters.workload.taste import Taste
from adapters.workload.trends import launch_trends
from adapters.workload.virality import shape_virality
from adapters.workload.vocabulary import (
    APPEALS,
    ENGAGEMENT_RATES,
    REASONS,
    WAVE_REASONS,
    _caption,
    _channel,
    _cumulative,
    _device,
    _duration,
    _handle,
    _region,
    _sound,
    _traffic_source,
)
from commands.engagement import Signal
from domain.moderation import ModerationCase


def generate(config: WorkloadConfig | None = None) -> Workload:
    """Simulate `config.days` days and return the commands in non-decreasing event time."""
    return _Simulation(config or WorkloadConfig()).run()


# -- the simulation ----------------------------------------------------------------------
@dataclass(slots=True)
class _Creator:
    id: UUID
    reach: float  # Pareto: a few creators have most of the audience
    registered: float


@dataclass(slots=True)
class _Video:
    id: UUID
    creator: int
    published: float
    duration: float
    quality: float  # 0..1: how watchable; drives completion and engagement
    weight: float = 0.0  # Zipf popularity weight
    # Status changes (time, status) from moderation, in time order; empty for most videos.
    changes: list[tuple[float, str]] = field(default_factory=list)
    # A phase's multiplier of the popularity weight at time t (None: 1.0), e.g. a trend's
    # growth or a late take-off; phases compose by wrapping the one already set.
    multiplier: Callable[[float], float] | None = None

    def status_at(self, t: float) -> str:
        status = "active"
        for when, new in self.changes:
            if when > t:
                break
            status = new
        return status


# Moderation shaping (drawn from the second generator; see report_waves).
OFF_REASON_SHARE = {True: 0.15, False: 0.45}  # harmful waves: reports agree on one reason
BENIGN_REPORTERS_KEPT = 0.6  # benign waves draw fewer reports
FLAG_SCORES = {True: (0.45, 0.99), False: (0.3, 0.92)}  # overlapping on purpose
# Sporadic cases are not all benign: a reviewed one is harmful (restricted) at this
# chance, three times as often for a creator with an earlier harmful wave (repeat
# offenders), and then half the time the vision model flagged it too.
BACKGROUND_HARMFUL_SHARE = 0.12
REPEAT_OFFENDER_FACTOR = 3.0
BACKGROUND_HARMFUL_FLAGGED = 0.5
EXTRA_REPORTS_PER_VIEW = 1 / 250  # more sporadic reports, drawn by popularity
BACKGROUND_DECIDED_SHARE = 0.7  # background cases a moderator reviews (and keeps)
BACKGROUND_REVIEW_DELAY = (2 * 3600.0, 12 * 3600.0)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class _Simulation:
    def __init__(self, config: WorkloadConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.mod = random.Random(f"{config.seed}/moderation")  # str seeds are stable
        self.horizon = config.days * DAY - 1.0  # everything happens strictly before the end
        self.items: list[tuple[float, int, type, dict[str, Any]]] = []
        self.creators: list[_Creator] = []
        self.videos: list[_Video] = []
        self.viewers: list[UUID] = []
        self.liked: set[tuple[UUID, int]] = set()  # never liked twice (an unlike is final)
        self.followed: set[tuple[UUID, int]] = set()  # ever followed (an unfollow is final)
        self.special: set[int] = set()  # videos of report waves and bot bursts
        self.reported: set[tuple[UUID, int]] = set()  # a reporter reports a case once
        self.extra_reported: set[tuple[UUID, int]] = set()  # the same, for `mod` reports
        self.background_cases: set[int] = set()  # videos with a background case
        self.moderators: list[UUID] = []
        self.client_ids = 0
        self.bursts: list[BotBurst] = []
        self.waves: list[ReportWave] = []
        # Truth that newer phases record (see GroundTruth); each phase draws from its own
        # generator (random.Random(f"{seed}/<phase>")) so the others' draws stay put.
        self.comment_sentiment: dict[UUID, str] = {}
        self.comment_language: dict[UUID, str] = {}
        self.toxic_comments: set[UUID] = set()
        self.trend_starts: list[TrendStart] = []
        self.sentiment_turns: list[SentimentTurn] = []
        self.comments = CommentWriter(config.seed)  # writes comments, records their truth
        self.taste: Taste | None = None  # viewer interests, made when traffic starts
        self.client_prefix = f"wl{config.seed}"  # live traffic uses its own (live.py)
        # Seconds from midnight UTC to the start: the daily cycle follows the real hour.
        midnight = config.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.day_offset = (config.start - midnight).total_seconds()

    # helpers ---------------------------------------------------------------------------
    def uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def at(self, seconds: float) -> datetime:
        return self.config.start + timedelta(seconds=seconds)

    def emit(self, t: float, cls: type, **kwargs: Any) -> None:
        self.items.append((t, len(self.items), cls, kwargs))

    def signal(self, t: float, video: int | None, *, redeliverable: bool = True, **kw: Any) -> None:
        """Emit a signal at t unless it falls after the run or on a removed video."""
        if t >= self.horizon:
            return
        if video is not None:
            if not self.available(video, t):
                return
            kw["video_id"] = self.videos[video].id
        self.client_ids += 1
        kw["client_event_id"] = f"{self.client_prefix}-{self.client_ids}"
        self.emit(t, Signal, **kw)
        if redeliverable and self.rng.random() < self.config.redelivery_rate:
            again = t + self.rng.uniform(1.0, 120.0)  # a client retry after a lost ack
            if again < self.horizon and (video is None or self.available(video, again)):
                self.emit(again, Signal, **kw)

    def available(self, video: int, t: float) -> bool:
        return self.videos[video].status_at(t) != "removed"

    def poisson(self, lam: float) -> int:
        return _poisson(self.rng, lam)

    # phases ----------------------------------------------------------------------------
    def run(self) -> Workload:
        self.population()
        self.catalogue()
        self.follower_base()
        self.report_waves()
        self.bot_bursts()
        bot_drips(self)  # human-like campaigns, from their own generator
        sentiment_turns(self)  # audiences that sour; before the traffic whose comments sour
        shape_virality(self)  # take-offs after the first hour; before trends' videos
        launch_trends(self)  # new keys; their videos' multipliers shape the traffic
        self.organic_traffic()
        comment_moderation(self)  # toxic comments, reports, decisions: own generator
        truth = GroundTruth(
            tuple(self.bursts),
            tuple(self.waves),
            comment_sentiment=dict(self.comment_sentiment),
            comment_language=dict(self.comment_language),
            toxic_comments=frozenset(self.toxic_comments),
            trend_starts=tuple(self.trend_starts),
            sentiment_turns=tuple(self.sentiment_turns),
        )
        return Workload(self.config, tuple(self.batched()), truth)

    def population(self) -> None:
        rng = self.rng
        for i in range(self.config.creators):
            creator = _Creator(self.uuid(), rng.paretovariate(1.16), rng.uniform(0.0, 1800.0))
            self.creators.append(creator)
            handle, name = _handle(rng, i, self.config.seed)
            self.emit(
                creator.registered,
                RegisterCreator,
                creator_id=creator.id,
                handle=handle,
                display_name=name,
                region=_region(rng),
            )
        self.viewers = [self.uuid() for _ in range(self.config.viewers)]
        # Heavy users: a few viewers watch far more than most.
        self.viewer_cum = _cumulative(rng.paretovariate(1.5) for _ in self.viewers)

    def catalogue(self) -> None:
        rng, latest = self.rng, max(self.horizon - 600.0, 3600.0)
        for index, creator in enumerate(self.creators):
            count = max(1, self.poisson(self.config.videos_per_creator_mean))
            for n in range(count):
                # Everyone posts once early (a catalogue to watch); the rest spread out.
                if n == 0:
                    t = creator.registered + rng.uniform(60.0, 1800.0)
                else:
                    t = rng.uniform(creator.registered + 1800.0, latest)
                video = _Video(self.uuid(), index, t, _duration(rng), rng.betavariate(2.0, 2.0))
                self.videos.append(video)
                caption, tags = _caption(rng)
                self.emit(
                    t,
                    PublishVideo,
                    video_id=video.id,
                    creator_id=creator.id,
                    caption=caption,
                    hashtags=tuple(tags),
                    sound_id=_sound(rng),
                    duration_seconds=video.duration,
                )
        # Zipf: rank videos by their creator's reach times luck; weight = 1 / rank^s.
        luck = {
            i: self.creators[v.creator].reach ** 0.5 * rng.lognormvariate(0.0, 0.8)
            for i, v in enumerate(self.videos)
        }
        for rank, i in enumerate(sorted(luck, key=lambda i: -luck[i]), start=1):
            self.videos[i].weight = rank**-self.config.zipf_exponent
        self.by_publish = sorted(range(len(self.videos)), key=lambda i: self.videos[i].published)

    def follower_base(self) -> None:
        """Audiences that existed before the run, recorded in its first hours (Pareto sizes)."""
        rng, cap = self.rng, max(1, len(self.viewers) // 2)
        for index, creator in enumerate(self.creators):
            size = min(cap, int(3 * creator.reach))
            for viewer in rng.sample(range(len(self.viewers)), size):
                t = rng.uniform(creator.registered + 60.0, 6 * 3600.0)
                self.follow(self.viewers[viewer], index, t)

    def follow(self, viewer: UUID, creator: int, t: float) -> None:
        if (viewer, creator) in self.followed or t >= self.horizon:
            return
        self.followed.add((viewer, creator))
        who = {"viewer_id": viewer, "creator_id": self.creators[creator].id}
        self.signal(t, None, redeliverable=False, kind="follow", **who)
        if self.rng.random() < 0.05:  # regret
            later = t + self.rng.uniform(3600.0, 2 * DAY)
            self.signal(later, None, redeliverable=False, kind="unfollow", **who)

    def report_waves(self) -> None:
        """Many reports within an hour on a popular video, then a decision, maybe an appeal.

        Every draw of the main generator happens exactly as it always did (same calls, same
        order), so the rest of the run is unchanged for a seed; the hidden truth is the
        old outcome draw (harmful = restrict or remove, 75 %), and what it shapes (which
        reports are kept, their reasons, the flag score) is drawn from `self.mod`.
        """
        rng = self.rng
        candidates = [i for i, v in enumerate(self.videos) if v.published < self.horizon - 8 * 3600]
        moderators = [self.uuid() for _ in range(8)]
        self.moderators = moderators
        for n in range(self.config.report_waves):
            pool = [i for i in candidates if i not in self.special]
            if not pool:
                break
            index = rng.choices(pool, weights=[self.videos[i].weight for i in pool])[0]
            self.special.add(index)
            video = self.videos[index]
            latest = min(video.published + 2 * DAY, self.horizon - 7 * 3600)
            start = rng.uniform(video.published + 1800.0, max(video.published + 1800.0, latest))
            self.report_wave(n, index, start, moderators)

    def report_wave(self, n: int, index: int, start: float, moderators: list[UUID]) -> None:
        """Wave `n` on video `index` from `start` on: reports within an hour, a model flag,
        a moderator's decision a few hours later, maybe an appeal (wave 0: a removal)."""
        rng, mod, video = self.rng, self.mod, self.videos[index]
        reason = rng.choice(WAVE_REASONS)
        reporters = rng.sample(self.viewers, min(len(self.viewers), rng.randint(15, 60)))
        times = []
        for _reporter in reporters:
            other = rng.random() < 0.25
            times.append(start + rng.uniform(0.0, 3600.0))
            if other:
                rng.choice(REASONS)  # the old off-reason draw, kept for the sequence
        flagged_at = start + rng.uniform(0.0, 1800.0)
        rng.uniform(0.55, 0.99)  # the old flag score draw, kept for the sequence
        # The first wave always ends in a standing removal, so every run exercises it.
        outcome = (
            "remove"
            if n == 0
            else rng.choices(("remove", "restrict", "keep"), weights=(45, 30, 25))[0]
        )
        harmful = outcome != "keep"
        kept = 0
        for reporter, t in zip(reporters, times, strict=True):
            if not harmful and mod.random() >= BENIGN_REPORTERS_KEPT:
                continue
            off = mod.random() < OFF_REASON_SHARE[harmful]
            said = mod.choice(REASONS) if off else reason
            self.emit(t, ReportVideo, video_id=video.id, reporter_id=reporter, reason=said)
            kept += 1
        low, high = FLAG_SCORES[harmful]
        self.emit(
            flagged_at,
            AutoFlagVideo,
            video_id=video.id,
            model="vision-safety-v3",
            score=round(mod.uniform(low, high), 3),
            reasons=(reason if harmful or mod.random() < 0.5 else mod.choice(REASONS),),
        )
        decided = start + 3600.0 + rng.uniform(600.0, 3 * 3600.0)
        case_id = ModerationCase.create_id(video.id)
        self.emit(
            decided,
            DecideCase,
            case_id=case_id,
            video_id=video.id,
            moderator_id=rng.choice(moderators),
            outcome=outcome,
            policy=f"community-guidelines/{reason}",
            note=f"{kept} reports",
        )
        if outcome != "keep":
            video.changes.append((decided, "removed" if outcome == "remove" else "restricted"))
        creator_id = self.creators[video.creator].id
        window = (self.at(start), self.at(start + 3600.0))
        wave = ReportWave(
            video.id,
            case_id,
            creator_id,
            *window,
            kept,
            reason,
            outcome,
            self.at(decided),
        )
        if outcome != "keep" and n > 0 and rng.random() < 0.5:
            wave = self.appeal(wave, video, decided, moderators)
        self.waves.append(wave)

    def appeal(
        self, wave: ReportWave, video: _Video, decided: float, moderators: list[UUID]
    ) -> ReportWave:
        rng = self.rng
        appealed = decided + rng.uniform(1800.0, 12 * 3600.0)
        if appealed >= self.horizon:
            return wave
        self.emit(
            appealed,
            AppealCase,
            case_id=wave.case_id,
            video_id=video.id,
            appellant_id=wave.creator_id,
            statement=rng.choice(APPEALS),
        )
        resolved = appealed + rng.uniform(1800.0, 12 * 3600.0)
        if resolved >= self.horizon:
            return replace(wave, appealed_at=self.at(appealed))
        resolution = "overturned" if rng.random() < 0.4 else "upheld"
        self.emit(
            resolved,
            ResolveAppeal,
            case_id=wave.case_id,
            video_id=video.id,
            moderator_id=rng.choice(moderators),
            resolution=resolution,
            note="context supports the creator" if resolution == "overturned" else "",
        )
        if resolution == "overturned":
            video.changes.append((resolved, "active"))
        return replace(
            wave,
            appealed_at=self.at(appealed),
            resolution=resolution,
            resolved_at=self.at(resolved),
        )

    def bot_bursts(self) -> None:
        """A handful of bot accounts fire hundreds of near-zero views within minutes."""
        rng = self.rng
        for _ in range(self.config.bot_bursts):
            pool = [
                i
                for i, v in enumerate(self.videos)
                if i not in self.special and v.published < self.horizon - 3600.0
            ]
            if not pool:
                break
            index = rng.choice(pool)
            self.special.add(index)
            video = self.videos[index]
            start = rng.uniform(video.published + 600.0, self.horizon - 900.0)
            self.bot_burst(index, start)

    def bot_burst(self, index: int, start: float) -> None:
        """Bots firing hundreds of near-zero views at video `index` from `start` on."""
        rng, video = self.rng, self.videos[index]
        length = rng.uniform(120.0, 600.0)
        bots = tuple(self.uuid() for _ in range(rng.randint(5, 20)))
        views = rng.randint(150, 400)
        device = rng.choice(("android", "web"))
        for _ in range(views):
            bot, t = rng.choice(bots), start + rng.uniform(0.0, length)
            watch = round(rng.uniform(0.2, min(1.5, video.duration * 0.5)), 2)
            self.signal(
                t,
                index,
                redeliverable=False,
                kind="view",
                viewer_id=bot,
                watch_seconds=watch,
                completed=False,
                traffic_source="other",
                device=device,
            )
        for bot in bots:  # like farming: each bot likes once, if at all
            if rng.random() < 0.5:
                self.like(bot, index, start + rng.uniform(1.0, length))
        end = self.at(start + length)
        self.bursts.append(BotBurst(video.id, self.at(start), end, bots, views))

    def like(self, viewer: UUID, video: int, t: float) -> None:
        if (viewer, video) in self.liked:
            return
        self.liked.add((viewer, video))
        self.signal(t, video, kind="like", viewer_id=viewer)
        if self.rng.random() < 0.03:  # a quick undo
            self.signal(t + self.rng.uniform(1.0, 30.0), video, kind="unlike", viewer_id=viewer)

    def organic_traffic(self) -> None:
        cfg = self.config
        order, published = self.by_publish, 0  # order[:published]: published by slot start
        for slot in range(int(cfg.days * DAY / SLOT)):
            t0 = slot * SLOT
            while published < len(order) and self.videos[order[published]].published < t0:
                published += 1
            count = self.poisson(cfg.views_per_day * SLOT / DAY * self.diurnal(t0))
            self.traffic(order[:published], t0, SLOT, count)

    def diurnal(self, t: float) -> float:
        """The traffic factor at `t`: a sinusoid over the UTC hour of day, peak at 20:00."""
        hour = ((self.day_offset + t) / 3600.0) % 24
        return 1 + self.config.diurnal_amplitude * math.sin(2 * math.pi * (hour - 14) / 24)

    def traffic(self, published: list[int], t0: float, length: float, count: int) -> None:
        """`count` views (and what follows them) spread over [t0, t0 + length)."""
        rng = self.rng
        eligible, weights = self.eligible(published, t0)
        if not count or not eligible or weights[-1] <= 0:
            return  # nothing to watch (e.g. a tiny catalogue removed, only trends' videos left)
        picks = rng.choices(eligible, cum_weights=weights, k=count)
        watchers = rng.choices(self.viewers, cum_weights=self.viewer_cum, k=count)
        # Views come in sessions, most from a feed that follows the viewer's taste (taste.py,
        # its own generator: it groups the watchers, replaces the for-you sessions' global
        # picks and times the views); the count stays.
        if self.taste is None:
            self.taste = Taste(self)
        for viewer, video, t in self.taste.views(picks, watchers, (eligible, weights), t0, length):
            self.view(viewer, video, t)
        self.background_moderation(count, eligible, weights, t0)

    def eligible(self, published: list[int], t: float) -> tuple[list[int], list[float]]:
        videos, cum, total = [], [], 0.0
        for i in published:
            video = self.videos[i]
            status = video.status_at(t) if video.changes else "active"
            if status == "removed":
                continue
            age_days = (t - video.published) / DAY
            weight = video.weight * max(0.05, math.exp(-age_days / 2.0))
            if video.multiplier is not None:
                weight *= video.multiplier(t)
            total += weight * (0.2 if status == "restricted" else 1.0)
            videos.append(i)
            cum.append(total)
        return videos, cum

    def view(self, viewer: UUID, index: int, t: float) -> None:
        rng, video = self.rng, self.videos[index]
        creator, duration = video.creator, video.duration
        u = rng.random()
        if u < 0.45 - 0.3 * video.quality:  # early skip
            watch, stage = rng.uniform(0.3, max(0.31, min(3.0, 0.3 * duration))), 0
        elif u < 0.85 - 0.2 * video.quality:  # partial watch
            watch, stage = duration * rng.uniform(0.15, 0.97), 1
        else:  # completion, sometimes replayed
            loops = 1.0 + (rng.expovariate(1.5) if rng.random() < 0.2 else 0.0)
            watch, stage = duration * min(loops, 4.9), 2
        watch = round(watch, 2)
        follows = (viewer, creator) in self.followed
        source = "following" if follows and rng.random() < 0.6 else _traffic_source(rng)
        self.signal(
            t,
            index,
            kind="view",
            viewer_id=viewer,
            watch_seconds=watch,
            completed=watch >= duration,
            traffic_source=source,
            device=_device(rng),
        )
        like, share, comment, follow = ENGAGEMENT_RATES[stage]
        boost = 0.5 + video.quality
        if rng.random() < like * boost:
            self.like(viewer, index, t + rng.uniform(0.2, 4.0))
        if rng.random() < share * boost:
            self.signal(
                t + rng.uniform(1.0, 15.0),
                index,
                kind="share",
                viewer_id=viewer,
                channel=_channel(rng),
            )
        if rng.random() < comment * boost:
            when, comment_id = t + rng.uniform(5.0, 60.0), self.uuid()
            text = self.comments.organic(self, index, viewer, comment_id, when)
            rng.randrange(12)  # the old pick of a stock comment, kept for the main sequence
            self.signal(
                when,
                index,
                kind="comment",
                viewer_id=viewer,
                comment_id=comment_id,
                text=text,
            )
        if not follows and rng.random() < follow * boost:
            self.follow(viewer, creator, t + rng.uniform(1.0, 10.0))

    def background_moderation(
        self, views: int, eligible: list[int], weights: list[float], t0: float
    ) -> None:
        """Sporadic reports and low-score model flags on ordinary videos; moderators review
        a share of these cases, a few hours after they open, and keep the video."""
        rng = self.rng
        for cls, rate in ((ReportVideo, 1 / 3000), (AutoFlagVideo, 1 / 5000)):
            for _ in range(self.poisson(views * rate)):
                index = rng.choice(eligible)
                if index in self.special:
                    continue  # a report there could reopen a decided case mid-story
                t, video_id = t0 + rng.uniform(0.0, SLOT), self.videos[index].id
                if cls is ReportVideo:
                    reporter = rng.choice(self.viewers)
                    if (reporter, index) in self.reported:  # the open case would refuse it
                        continue
                    self.reported.add((reporter, index))
                    reason = rng.choice(REASONS)
                    if (reporter, index) not in self.extra_reported:
                        self.emit(t, cls, video_id=video_id, reporter_id=reporter, reason=reason)
                        self.background_case(index, t)
                else:
                    self.emit(
                        t,
                        cls,
                        video_id=video_id,
                        model="text-toxicity-v2",
                        score=round(rng.uniform(0.05, 0.5), 3),
                        reasons=(rng.choice(REASONS),),
                    )
                    self.background_case(index, t)
        self.extra_reports(views, eligible, weights, t0)

    def extra_reports(
        self, views: int, eligible: list[int], weights: list[float], t0: float
    ) -> None:
        """More sporadic reports (from `mod`), on videos picked by popularity: popular
        ordinary videos collect several, like the benign report waves do."""
        mod = self.mod
        count = _poisson(mod, views * EXTRA_REPORTS_PER_VIEW)
        if not count:
            return
        pool, cum, total, previous = [], [], 0.0, 0.0
        for index, w in zip(eligible, weights, strict=True):
            if index not in self.special:  # their cases tell their own story
                total += w - previous
                pool.append(index)
                cum.append(total)
            previous = w
        if not pool:
            return
        for index in mod.choices(pool, cum_weights=cum, k=count):
            reporter = mod.choice(self.viewers)
            pair = (reporter, index)
            if pair in self.reported or pair in self.extra_reported:
                continue
            self.extra_reported.add(pair)
            t = t0 + mod.uniform(0.0, SLOT)
            reason = mod.choice(REASONS)
            video_id = self.videos[index].id
            self.emit(t, ReportVideo, video_id=video_id, reporter_id=reporter, reason=reason)
            self.background_case(index, t)

    def background_case(self, index: int, t: float) -> None:
        """A background case's first report or flag: maybe schedule its review (keep)."""
        if index in self.background_cases:
            return  # reviewed once at most; later reports reopen it and it stays open
        self.background_cases.add(index)
        if not self.moderators or self.mod.random() >= BACKGROUND_DECIDED_SHARE:
            return
        decided = t + self.mod.uniform(*BACKGROUND_REVIEW_DELAY)
        if decided >= self.horizon:
            return
        video = self.videos[index]
        creator_id = self.creators[video.creator].id
        repeat = any(
            w.creator_id == creator_id and w.outcome != "keep" and w.decided_at < self.at(t)
            for w in self.waves
        )
        chance = BACKGROUND_HARMFUL_SHARE * (REPEAT_OFFENDER_FACTOR if repeat else 1.0)
        harmful = self.mod.random() < chance
        if harmful and self.mod.random() < BACKGROUND_HARMFUL_FLAGGED:
            self.emit(
                self.mod.uniform(t, decided),
                AutoFlagVideo,
                video_id=video.id,
                model="vision-safety-v3",
                score=round(self.mod.uniform(*FLAG_SCORES[True]), 3),
                reasons=(self.mod.choice(WAVE_REASONS),),
            )
        self.emit(
            decided,
            DecideCase,
            case_id=ModerationCase.create_id(video.id),
            video_id=video.id,
            moderator_id=self.mod.choice(self.moderators),
            outcome="restrict" if harmful else "keep",
            policy="community-guidelines/review",
            note="violation found" if harmful else "no violation found",
        )
        if harmful:
            video.changes.append((decided, "restricted"))

    # output ----------------------------------------------------------------------------
    def batched(self) -> Iterator[Command]:
        """Sort by event time (ties keep generation order) and chunk signals into batches."""
        cfg, batch, window = self.config, [], -1
        self.items.sort(key=lambda item: (item[0], item[1]))
        for t, _seq, cls, kwargs in self.items:
            when = self.at(t)
            if cls is Signal:
                slot = int(t // cfg.batch_window_seconds)
                if batch and (slot != window or len(batch) >= cfg.batch_size):
                    yield EngagementBatch(tuple(batch), batch[0].occurred_at)
                    batch = []
                window = slot
                batch.append(Signal(occurred_at=when, **kwargs))
                continue
            if batch:
                yield EngagementBatch(tuple(batch), batch[0].occurred_at)
                batch = []
            yield cls(occurred_at=when, **kwargs)
        if batch:
            yield EngagementBatch(tuple(batch), batch[0].occurred_at)
