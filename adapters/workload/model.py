"""Workload data: configuration, the generated commands and the ground truth."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from commands.engagement import Signal

DAY = 86_400.0
SLOT = 3600.0  # traffic is drawn per simulated hour (a video gets views from the next one)


# -- configuration -----------------------------------------------------------------------
@dataclass(frozen=True)
class WorkloadConfig:
    """Sizes are totals over the run, except views_per_day. Defaults: a small, busy app."""

    seed: int = 7
    days: int = 1
    creators: int = 200
    viewers: int = 5_000
    videos_per_creator_mean: float = 4.0
    views_per_day: int = 5_000
    bot_bursts: int = 3
    bot_drips: int | None = None  # human-like bot campaigns (bots.py); None: bot_bursts // 2
    report_waves: int = 4
    start: datetime = datetime(2026, 3, 2, tzinfo=UTC)
    batch_size: int = 500  # at most this many signals per EngagementBatch
    batch_window_seconds: float = 60.0  # and all of them within one such window
    redelivery_rate: float = 0.003
    zipf_exponent: float = 1.1
    diurnal_amplitude: float = 0.6
    trends_per_day: float = 6.0  # new hashtags/sounds launched; half take off (trends.py)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        if self.days < 1 or self.creators < 1 or self.viewers < 1:
            raise ValueError("days, creators and viewers must be at least 1")
        if not 1 <= self.batch_size <= 100_000:
            raise ValueError("batch_size must be between 1 and 100000")

    @property
    def drip_campaigns(self) -> int:
        return self.bot_bursts // 2 if self.bot_drips is None else self.bot_drips

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def scale(self, factor: float) -> "WorkloadConfig":
        """The same shape of workload, `factor` times bigger (population and traffic)."""

        def n(value: int) -> int:
            return max(1, round(value * factor))

        return replace(
            self,
            creators=n(self.creators),
            viewers=n(self.viewers),
            views_per_day=n(self.views_per_day),
            bot_bursts=n(self.bot_bursts) if self.bot_bursts else 0,
            bot_drips=n(self.bot_drips) if self.bot_drips else self.bot_drips,
            report_waves=n(self.report_waves) if self.report_waves else 0,
        )


# -- generated commands (plain data; drivers apply them) ---------------------------------
@dataclass(frozen=True)
class RegisterCreator:
    creator_id: UUID
    handle: str
    display_name: str
    region: str
    occurred_at: datetime


@dataclass(frozen=True)
class PublishVideo:
    video_id: UUID
    creator_id: UUID
    caption: str
    hashtags: tuple[str, ...]
    sound_id: str | None
    duration_seconds: float
    occurred_at: datetime


@dataclass(frozen=True)
class EngagementBatch:
    """Signals (views, likes, shares, comments, follows...) for one ingest call."""

    signals: tuple[Signal, ...]
    occurred_at: datetime  # of the first signal; the others are no earlier


@dataclass(frozen=True)
class ReportVideo:
    video_id: UUID
    reporter_id: UUID
    reason: str
    occurred_at: datetime


@dataclass(frozen=True)
class AutoFlagVideo:
    video_id: UUID
    model: str
    score: float
    reasons: tuple[str, ...]
    occurred_at: datetime


@dataclass(frozen=True)
class DecideCase:
    case_id: UUID
    video_id: UUID
    moderator_id: UUID
    outcome: str
    policy: str
    note: str
    occurred_at: datetime


@dataclass(frozen=True)
class AppealCase:
    case_id: UUID
    video_id: UUID
    appellant_id: UUID
    statement: str
    occurred_at: datetime


@dataclass(frozen=True)
class ResolveAppeal:
    case_id: UUID
    video_id: UUID
    moderator_id: UUID
    resolution: str
    note: str
    occurred_at: datetime


@dataclass(frozen=True)
class ReportComment:
    comment_id: UUID
    video_id: UUID
    reporter_id: UUID
    reason: str
    occurred_at: datetime


@dataclass(frozen=True)
class DecideComment:
    case_id: UUID
    comment_id: UUID
    moderator_id: UUID
    outcome: str  # keep | remove
    note: str
    occurred_at: datetime


Command = (
    RegisterCreator
    | PublishVideo
    | EngagementBatch
    | ReportVideo
    | AutoFlagVideo
    | DecideCase
    | AppealCase
    | ResolveAppeal
    | ReportComment
    | DecideComment
)


# -- ground truth ------------------------------------------------------------------------
@dataclass(frozen=True)
class BotBurst:
    video_id: UUID
    start: datetime
    end: datetime
    bot_ids: tuple[UUID, ...]
    views: int
    kind: str = "burst"  # "burst": an obvious flood in minutes; "drip": human-like, for hours


@dataclass(frozen=True)
class ReportWave:
    video_id: UUID
    case_id: UUID
    creator_id: UUID
    start: datetime
    end: datetime
    reports: int
    reason: str
    outcome: str
    decided_at: datetime
    appealed_at: datetime | None = None
    resolution: str | None = None
    resolved_at: datetime | None = None

    @property
    def final_video_status(self) -> str:
        """The video's status at the end of the run, once the policy has applied it all."""
        if self.resolution == "overturned" or self.outcome == "keep":
            return "active"
        return "removed" if self.outcome == "remove" else "restricted"


@dataclass(frozen=True)
class TrendStart:
    """A hashtag or sound that did not exist (or was quiet) and takes off at `start`."""

    kind: str  # "hashtag" | "sound"
    key: str
    start: datetime
    peak: datetime


@dataclass(frozen=True)
class SentimentTurn:
    """A video whose audience turns negative at `start` (its comments sour)."""

    video_id: UUID
    start: datetime


@dataclass(frozen=True)
class GroundTruth:
    bot_bursts: tuple[BotBurst, ...]
    report_waves: tuple[ReportWave, ...]
    # What newer phases of the generator know (each filled by its own phase; empty when
    # the phase did not run). Comment ids map to the sentiment the generator wrote
    # ("positive" | "negative" | "neutral").
    comment_sentiment: Mapping[UUID, str] = field(default_factory=dict)
    comment_language: Mapping[UUID, str] = field(default_factory=dict)
    toxic_comments: frozenset[UUID] = frozenset()  # comments a moderator would remove
    trend_starts: tuple[TrendStart, ...] = ()
    sentiment_turns: tuple[SentimentTurn, ...] = ()

    @property
    def bot_viewer_ids(self) -> frozenset[UUID]:
        return frozenset(b for burst in self.bot_bursts for b in burst.bot_ids)

    @property
    def bot_video_ids(self) -> frozenset[UUID]:
        return frozenset(burst.video_id for burst in self.bot_bursts)


@dataclass(frozen=True)
class Workload:
    config: WorkloadConfig
    commands: tuple[Command, ...]
    truth: GroundTruth

    def signals(self) -> Iterator[Signal]:
        for command in self.commands:
            if isinstance(command, EngagementBatch):
                yield from command.signals

    @property
    def items(self) -> int:
        """Signals plus other commands: the total a driver's progress callback reaches."""
        return sum(len(c.signals) if isinstance(c, EngagementBatch) else 1 for c in self.commands)

    def counts(self) -> dict[str, int]:
        """How many of each command type and signal kind, e.g. for a summary line."""
        counts: dict[str, int] = {}
        for command in self.commands:
            name = type(command).__name__
            counts[name] = counts.get(name, 0) + 1
            if isinstance(command, EngagementBatch):
                for signal in command.signals:
                    counts[signal.kind] = counts.get(signal.kind, 0) + 1
        return counts
