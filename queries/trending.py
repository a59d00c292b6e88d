"""Trending: ranked videos, hashtags and sounds over a sliding event-time window.

A window of W minutes ends at the watermark (the newest event minute the trending
projection has seen) and covers the minutes (watermark - W, watermark]. The previous
window of the same length covers (watermark - 2W, watermark - W].

    score        = views + 3 * likes + 5 * shares + 4 * comments   (current window)
    velocity     = views in the window / window hours                (views per hour)
    acceleration = (velocity - velocity of the previous window) / window hours  (views/h²)

Likes and comments are net (unlikes and deleted comments subtract). An item is listed
when it had any bucket in the current window; ties in score are broken by key (ascending)
so that pages are deterministic.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.errors import InvalidValue

KINDS = ("video", "hashtag", "sound")
WEIGHTS = {"views": 1, "likes": 3, "shares": 5, "comments": 4}
# The projection keeps two 24 h windows of buckets (current and previous).
MAX_WINDOW_MINUTES = 24 * 60
MAX_SERIES_MINUTES = 2 * MAX_WINDOW_MINUTES
MAX_FIRST = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TrendingItem:
    kind: str  # video | hashtag | sound
    key: str  # the video id (str), the hashtag, or the sound id
    rank: int  # 1-based
    score: int
    views: int
    likes: int
    shares: int
    comments: int
    velocity: float  # views per hour in the window
    acceleration: float  # change of velocity against the previous window, views/h²


class TrendingReader(ABC):
    @abstractmethod
    def trending(self, kind: str, window_minutes: int, first: int) -> list[TrendingItem]:
        """The `first` items of `kind` by score in the window ending at the watermark."""

    @abstractmethod
    def series(self, kind: str, key: str, minutes: int) -> list[tuple[int, int]]:
        """(minute, views) for each of the last `minutes` minutes up to the watermark,
        oldest first, zero-filled (minute = minutes since the Unix epoch)."""

    @abstractmethod
    def watermark(self) -> datetime | None:
        """Start of the newest event minute counted, or None before any engagement."""


def score(views: int, likes: int, shares: int, comments: int) -> int:
    return (
        WEIGHTS["views"] * views
        + WEIGHTS["likes"] * likes
        + WEIGHTS["shares"] * shares
        + WEIGHTS["comments"] * comments
    )


def velocity(views: int, window_minutes: int) -> float:
    return views / (window_minutes / 60)


def acceleration(views: int, previous_views: int, window_minutes: int) -> float:
    hours = window_minutes / 60
    return (velocity(views, window_minutes) - velocity(previous_views, window_minutes)) / hours


def minute_start(minute: int) -> datetime:
    return EPOCH + timedelta(minutes=minute)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidValue(f"kind must be one of {', '.join(KINDS)}", code="invalid_kind")
    return kind


def check_window(window_minutes: int) -> int:
    if not 1 <= window_minutes <= MAX_WINDOW_MINUTES:
        raise InvalidValue(f"window must be 1-{MAX_WINDOW_MINUTES} minutes", code="invalid_window")
    return window_minutes


def check_first(first: int) -> int:
    if not 1 <= first <= MAX_FIRST:
        raise InvalidValue(f"first must be 1-{MAX_FIRST}", code="invalid_first")
    return first


def check_series_minutes(minutes: int) -> int:
    if not 1 <= minutes <= MAX_SERIES_MINUTES:
        raise InvalidValue(
            f"series must span 1-{MAX_SERIES_MINUTES} minutes", code="invalid_minutes"
        )
    return minutes
