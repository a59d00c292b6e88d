"""Query side of the stats read models: DTOs and the reader interface."""

import base64
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class VideoStats:
    video_id: UUID
    creator_id: UUID
    caption: str
    hashtags: tuple[str, ...]
    sound_id: str | None
    duration_seconds: float
    status: str
    published_at: datetime
    views: int
    unique_viewers: int
    likes: int
    shares: int
    comments: int
    watch_seconds: float
    completions: int

    @property
    def average_watch_seconds(self) -> float:
        return self.watch_seconds / self.views if self.views else 0.0

    @property
    def completion_rate(self) -> float:
        return self.completions / self.views if self.views else 0.0

    @property
    def engagement_rate(self) -> float:
        """(likes + shares + comments) per view."""
        return (self.likes + self.shares + self.comments) / self.views if self.views else 0.0


@dataclass(frozen=True)
class CreatorStats:
    creator_id: UUID
    handle: str
    display_name: str
    region: str
    status: str
    registered_at: datetime
    followers: int
    videos: int
    views: int
    likes: int
    shares: int
    comments: int
    strikes: int

    @property
    def engagement_rate(self) -> float:
        return (self.likes + self.shares + self.comments) / self.views if self.views else 0.0


@dataclass(frozen=True)
class TagStats:
    key: str
    videos: int
    views: int
    likes: int
    shares: int
    comments: int


@dataclass(frozen=True)
class PlatformSummary:
    creators: int
    suspended_creators: int
    videos: int
    removed_videos: int
    views: int
    likes: int
    shares: int
    comments: int
    watch_seconds: float
    open_cases: int


class VideoOrder(StrEnum):
    NEWEST = "newest"
    MOST_VIEWED = "most_viewed"
    MOST_LIKED = "most_liked"


@dataclass(frozen=True)
class VideoFilter:
    creator_id: UUID | None = None
    status: str | None = None
    hashtag: str | None = None
    sound_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[Any]
    end_cursor: str | None
    has_next_page: bool


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts, default=str).encode()).decode()


def decode_cursor(cursor: str) -> list[Any]:
    """Raises ValueError for a cursor this server did not make."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception:
        raise ValueError("invalid cursor") from None
    if not isinstance(parts, list):
        raise ValueError("invalid cursor")
    return parts


class StatsReader(ABC):
    @abstractmethod
    def video(self, video_id: UUID) -> VideoStats | None: ...

    @abstractmethod
    def videos_by_ids(self, ids: list[UUID]) -> dict[UUID, VideoStats]: ...

    @abstractmethod
    def videos(
        self, flt: VideoFilter, order: VideoOrder, first: int, after: str | None
    ) -> Page: ...

    @abstractmethod
    def creator(self, creator_id: UUID) -> CreatorStats | None: ...

    @abstractmethod
    def creators_by_ids(self, ids: list[UUID]) -> dict[UUID, CreatorStats]: ...

    @abstractmethod
    def hashtag(self, tag: str) -> TagStats | None: ...

    @abstractmethod
    def sound(self, sound_id: str) -> TagStats | None: ...

    @abstractmethod
    def summary(self) -> PlatformSummary: ...
