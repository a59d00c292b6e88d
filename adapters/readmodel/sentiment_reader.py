"""Reads audience sentiment: windows of event-time buckets, rankings, turning videos.

A window is the whole buckets (15 minutes) that end with the newest comment's bucket:
WINDOW 60 sums the 4 newest buckets (the last 45-60 minutes of comments), 1440 the last
96. "Newest" is the newest comment the projection has applied, so a quiet platform's
windows stay where the comments are (event time, as every read model here)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.sentiment_tables import rm_sentiment_buckets, rm_sentiment_videos
from adapters.readmodel.times import as_utc
from projections.sentiment import KINDS, TURNING_NEGATIVE, SentimentParams

BUCKET = timedelta(minutes=SentimentParams().bucket_minutes)
WINDOWS = (60, 1440)  # minutes
ORDERS = ("most_negative", "most_positive")


@dataclass(frozen=True)
class SentimentDTO:
    kind: str
    key: str
    window_minutes: int
    since: datetime | None  # the window's first bucket (None: no comment yet)
    until: datetime | None  # the newest comment
    comments: int
    scored: int  # comments in a language the scorer supports
    positive: int
    negative: int
    neutral: int
    mean: float | None  # mean compound of the scored comments (-1..1)

    @property
    def positive_share(self) -> float:
        return self.positive / self.scored if self.scored else 0.0

    @property
    def negative_share(self) -> float:
        return self.negative / self.scored if self.scored else 0.0


@dataclass(frozen=True)
class VideoSentimentDTO:
    video_id: UUID
    status: str  # turning_negative | steady
    recent_comments: int
    recent_mean: float
    baseline: float
    turns: int
    turned_at: datetime | None
    updated_at: datetime


def _check(kind: str | None, window: int) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS} minutes")


def window_bounds(conn: sa.Connection, window: int) -> tuple[datetime, datetime] | None:
    """(first bucket start, newest comment) of the window, None before any comment."""
    t = rm_sentiment_buckets
    newest = conn.execute(sa.select(sa.func.max(t.c.bucket_start))).scalar()
    if newest is None:
        return None
    until = conn.execute(
        sa.select(sa.func.max(t.c.last_at)).where(t.c.bucket_start == newest)
    ).scalar()
    since = as_utc(newest) - BUCKET * (window // int(BUCKET.total_seconds() // 60) - 1)
    return since, as_utc(until)


def _tallies() -> list[sa.ColumnElement]:
    t = rm_sentiment_buckets.c
    columns = (t.comments, t.scored, t.positive, t.negative, t.neutral, t.compound_sum)
    return [sa.func.coalesce(sa.func.sum(c), 0).label(c.name) for c in columns]


def _dto(kind: str, key: str, window: int, bounds: tuple | None, r: sa.Row | None) -> SentimentDTO:
    since, until = bounds if bounds else (None, None)
    if r is None:
        return SentimentDTO(kind, key, window, since, until, 0, 0, 0, 0, 0, None)
    mean = float(r.compound_sum) / r.scored if r.scored else None
    return SentimentDTO(kind, key, window, since, until, int(r.comments), int(r.scored),
                        int(r.positive), int(r.negative), int(r.neutral), mean)  # fmt: skip


def sentiment(conn: sa.Connection, kind: str, key: str, window: int = 1440) -> SentimentDTO:
    """One video's, creator's, hashtag's or sound's sentiment over the window."""
    _check(kind, window)
    bounds = window_bounds(conn, window)
    if bounds is None:
        return _dto(kind, key, window, None, None)
    t = rm_sentiment_buckets
    row = conn.execute(
        sa.select(*_tallies()).where(
            t.c.kind == kind, t.c.key == key, t.c.bucket_start >= bounds[0]
        )
    ).one()
    return _dto(kind, key, window, bounds, row)


def overall(conn: sa.Connection, window: int = 1440) -> SentimentDTO:
    """The whole platform's comments over the window (every video's buckets)."""
    _check(None, window)
    bounds = window_bounds(conn, window)
    if bounds is None:
        return _dto("platform", "", window, None, None)
    t = rm_sentiment_buckets
    row = conn.execute(
        sa.select(*_tallies()).where(t.c.kind == "video", t.c.bucket_start >= bounds[0])
    ).one()
    return _dto("platform", "", window, bounds, row)


def ranking(
    conn: sa.Connection, kind: str, window: int = 1440, order: str = "most_negative",
    first: int = 10, min_scored: int = 3,
) -> list[SentimentDTO]:  # fmt: skip
    """Keys of a kind by mean compound over the window (at least `min_scored` scored)."""
    _check(kind, window)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}")
    bounds = window_bounds(conn, window)
    if bounds is None:
        return []
    t = rm_sentiment_buckets
    scored = sa.func.sum(t.c.scored)
    mean = sa.func.sum(t.c.compound_sum) / sa.func.nullif(scored, 0)
    query = (
        sa.select(t.c.key, *_tallies())
        .where(t.c.kind == kind, t.c.bucket_start >= bounds[0])
        .group_by(t.c.key)
        .having(scored >= max(1, min_scored))
        .order_by(mean.asc() if order == "most_negative" else mean.desc(), t.c.key)
        .limit(max(0, first))
    )
    return [_dto(kind, r.key, window, bounds, r) for r in conn.execute(query)]


def _video(r: sa.Row) -> VideoSentimentDTO:
    return VideoSentimentDTO(
        video_id=r.video_id, status=r.status, recent_comments=r.recent_comments,
        recent_mean=r.recent_mean, baseline=r.baseline, turns=r.turns,
        turned_at=as_utc(r.turned_at) if r.turned_at else None, updated_at=as_utc(r.updated_at),
    )  # fmt: skip


def video_state(conn: sa.Connection, video_id: UUID) -> VideoSentimentDTO | None:
    t = rm_sentiment_videos
    row = conn.execute(sa.select(t).where(t.c.video_id == video_id)).first()
    return _video(row) if row else None


def turning_negative(conn: sa.Connection, first: int = 10) -> list[VideoSentimentDTO]:
    """Videos that turned negative: those turning now first, then by the latest turn."""
    t = rm_sentiment_videos
    query = (
        sa.select(t)
        .where(t.c.turns > 0)
        .order_by(
            sa.case((t.c.status == TURNING_NEGATIVE, 0), else_=1),
            t.c.turned_at.desc(),
            t.c.video_id,
        )
        .limit(max(0, first))
    )
    return [_video(r) for r in conn.execute(query)]
