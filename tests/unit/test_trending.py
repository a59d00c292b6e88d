"""Trending: per-minute buckets, sliding windows, watermark and grace, pruning, ranking.

Events come from the real aggregates with chosen event times; they go through the real
projection and SQL view on an in-memory SQLite read model, one transaction per batch.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import count
from uuid import UUID

import pytest
import sqlalchemy as sa
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from adapters.readmodel.db import create_read_engine, upgrade
from adapters.readmodel.tables import rm_trend_buckets, rm_trend_meta, rm_trend_videos
from adapters.readmodel.trending_reader import SqlTrendingReader
from adapters.readmodel.trending_view import SqlTrendingView
from domain.creator import Creator
from domain.engagement import Engagement
from domain.errors import InvalidValue
from domain.video import Video
from projections.trending import GRACE_MINUTES, RETENTION_MINUTES, TrendingProjection, minute_of
from queries.trending import MAX_SERIES_MINUTES, MAX_WINDOW_MINUTES, TrendingItem, minute_start

from .given_when_then import T0

M0 = minute_of(T0)  # bucket minutes below are offsets from T0's minute
A, B, C, D = (UUID(int=i) for i in (201, 202, 203, 204))
VIEWER, OTHER_VIEWER = UUID(int=401), UUID(int=402)
HOUR, DAY = 60, 24 * 60


def t(minute: int, second: int = 0) -> datetime:
    return T0 + timedelta(minutes=minute, seconds=second)


class World:
    """Builds events with the domain aggregates; every method returns the new events."""

    def __init__(self) -> None:
        self.creator = Creator.register(
            creator_id=UUID(int=100), handle="ann", display_name="Ann", region="SE",
            occurred_at=T0 - timedelta(days=1),
        )  # fmt: skip
        self.creator.collect_events()
        self.videos: dict[UUID, Video] = {}
        self.pairs: dict[tuple[UUID, UUID], Engagement] = {}
        self.comment_ids = count(1)

    def publish(
        self, video_id: UUID, hashtags: Iterable[str] = (), sound_id: str | None = None
    ) -> list[Aggregate.Event]:
        video = Video.publish(
            video_id=video_id, creator=self.creator, caption="clip", hashtags=list(hashtags),
            sound_id=sound_id, duration_seconds=30.0, occurred_at=T0 - timedelta(hours=1),
        )  # fmt: skip
        self.videos[video_id] = video
        return list(video.collect_events())

    def edit(self, video_id: UUID, hashtags: list[str], at: datetime) -> list[Aggregate.Event]:
        video = self.videos[video_id]
        video.edit_caption(caption="edited", hashtags=hashtags, occurred_at=at)
        return list(video.collect_events())

    def _pair(self, video_id: UUID, viewer: UUID, at: datetime) -> Engagement:
        if (video_id, viewer) not in self.pairs:
            self.pairs[(video_id, viewer)] = Engagement.start(
                viewer_id=viewer, video=self.videos[video_id], occurred_at=at
            )
        return self.pairs[(video_id, viewer)]

    def act(
        self, action: str, video_id: UUID, at: datetime, viewer: UUID = VIEWER
    ) -> list[Aggregate.Event]:
        pair, video = self._pair(video_id, viewer, at), self.videos[video_id]
        if action == "view":
            pair.view(video, watch_seconds=10, completed=False, traffic_source="for_you",
                      device="ios", occurred_at=at)  # fmt: skip
        elif action == "like":
            pair.like(video, occurred_at=at)
        elif action == "unlike":
            pair.unlike(video, occurred_at=at)
        elif action == "share":
            pair.share(video, channel="sms", occurred_at=at)
        elif action == "comment":
            cid = UUID(int=next(self.comment_ids))
            pair.comment(video, comment_id=cid, text="nice", occurred_at=at)
        elif action == "uncomment":
            pair.delete_comment(comment_id=pair.comments[-1], occurred_at=at)
        return list(pair.collect_events())

    def views(self, video_id: UUID, at: datetime, n: int = 1) -> list[Aggregate.Event]:
        return [e for _ in range(n) for e in self.act("view", video_id, at)]


class ReadModel:
    """An in-memory SQLite read model fed batch by batch like the runner does."""

    def __init__(self) -> None:
        self.engine = create_read_engine("sqlite://")
        upgrade(self.engine)
        self.projection = TrendingProjection()
        self.reader = SqlTrendingReader(self.engine)
        self.position = 0

    def feed(self, *batches: list[Aggregate.Event]) -> list[set[str]]:
        changed = []
        for batch in batches:
            with self.engine.begin() as conn:
                view = SqlTrendingView(conn)
                for event in batch:
                    self.position += 1
                    # The runner filters topics in the event store query.
                    if get_topic(type(event)) in self.projection.topics:
                        self.projection.process(event, self.position, view)
                changed.append(view.flush())
        return changed

    def buckets(self, kind: str, key: str | UUID) -> dict[int, tuple[int, int, int, int]]:
        """{minute offset from T0: (views, likes, shares, comments)}"""
        b = rm_trend_buckets.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(b.minute, b.views, b.likes, b.shares, b.comments).where(
                    b.kind == kind, b.key == str(key)
                )
            )
            return {r.minute - M0: (r.views, r.likes, r.shares, r.comments) for r in rows}

    def meta(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(rm_trend_meta))
            return {r.key: r.value for r in rows}

    def tables(self) -> dict[str, list[tuple]]:
        with self.engine.connect() as conn:
            return {
                table.name: sorted(tuple(r) for r in conn.execute(sa.select(table)))
                for table in (rm_trend_buckets, rm_trend_meta, rm_trend_videos)
            }


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def rm() -> ReadModel:
    return ReadModel()


def keys(items: list[TrendingItem]) -> list[str]:
    return [i.key for i in items]


# -- buckets -------------------------------------------------------------------------------
def test_each_event_counts_in_the_bucket_of_its_own_event_minute(world, rm):
    changed = rm.feed(
        world.publish(A)
        + world.act("view", A, t(0, 0))
        + world.act("view", A, t(0, 59))
        + world.act("view", A, t(1, 0))
        + world.act("like", A, t(1, 30))
        + world.act("share", A, t(2, 10))
        + world.act("comment", A, t(2, 20))
    )
    assert rm.buckets("video", A) == {0: (2, 0, 0, 0), 1: (1, 1, 0, 0), 2: (0, 0, 1, 1)}
    assert rm.meta() == {"watermark_minute": M0 + 2}
    assert rm.reader.watermark() == t(2)
    assert changed == [{"trending"}]


def test_unlike_and_comment_deletion_subtract_in_their_own_minute(world, rm):
    rm.feed(
        world.publish(A)
        + world.act("view", A, t(0))
        + world.act("like", A, t(1))
        + world.act("comment", A, t(1))
        + world.act("unlike", A, t(2))
        + world.act("uncomment", A, t(2))
    )
    assert rm.buckets("video", A) == {0: (1, 0, 0, 0), 1: (0, 1, 0, 1), 2: (0, -1, 0, -1)}
    [item] = rm.reader.trending("video", HOUR, 10)
    assert (item.views, item.likes, item.comments, item.score) == (1, 0, 0, 1)


def test_a_like_and_its_unlike_in_one_minute_leave_a_zero_bucket(world, rm):
    rm.feed(world.publish(A) + world.act("like", A, t(5, 1)) + world.act("unlike", A, t(5, 2)))
    assert rm.buckets("video", A) == {5: (0, 0, 0, 0)}


def test_hashtag_and_sound_buckets_sum_their_videos(world, rm):
    rm.feed(
        world.publish(A, ["#Dance", "fun"], "s1")
        + world.publish(B, ["dance"], "s1")
        + world.publish(C, ["cooking"])
        + world.views(A, t(0), 2)
        + world.views(B, t(0), 3)
        + world.act("like", B, t(1))
        + world.views(C, t(1), 1)
    )
    assert rm.buckets("hashtag", "dance") == {0: (5, 0, 0, 0), 1: (0, 1, 0, 0)}
    assert rm.buckets("hashtag", "fun") == {0: (2, 0, 0, 0)}
    assert rm.buckets("hashtag", "cooking") == {1: (1, 0, 0, 0)}
    assert rm.buckets("sound", "s1") == {0: (5, 0, 0, 0), 1: (0, 1, 0, 0)}
    tags = rm.reader.trending("hashtag", HOUR, 10)
    assert [(i.key, i.rank, i.score, i.views, i.likes) for i in tags] == [
        ("dance", 1, 8, 5, 1),
        ("fun", 2, 2, 2, 0),
        ("cooking", 3, 1, 1, 0),
    ]
    assert [(i.key, i.score) for i in rm.reader.trending("sound", HOUR, 10)] == [("s1", 8)]


def test_a_caption_edit_moves_later_counts_to_the_new_hashtags(world, rm):
    rm.feed(
        world.publish(A, ["old", "kept"], "s1")
        + world.act("view", A, t(1))
        + world.edit(A, ["new", "kept"], t(2))
        + world.act("like", A, t(3))
    )
    # Processed after the edit (log order), even though its event time is earlier.
    rm.feed(world.act("view", A, t(1, 30), viewer=OTHER_VIEWER))
    assert rm.buckets("hashtag", "old") == {1: (1, 0, 0, 0)}
    assert rm.buckets("hashtag", "new") == {1: (1, 0, 0, 0), 3: (0, 1, 0, 0)}
    assert rm.buckets("hashtag", "kept") == {1: (2, 0, 0, 0), 3: (0, 1, 0, 0)}
    assert rm.buckets("sound", "s1") == {1: (2, 0, 0, 0), 3: (0, 1, 0, 0)}


# -- windows -------------------------------------------------------------------------------
def test_the_one_hour_window_covers_the_sixty_minutes_up_to_the_watermark(world, rm):
    rm.feed(
        world.publish(A)
        + world.publish(B)
        + world.views(B, t(40))  # minute 40 = watermark - 60: just outside
        + world.views(A, t(40))
        + world.views(A, t(41, 0), 2)  # watermark - 59: the first minute inside
        + world.views(A, t(100, 59), 4)  # the watermark minute
    )
    assert rm.reader.watermark() == t(100)
    [item] = rm.reader.trending("video", HOUR, 10)
    assert (item.key, item.views, item.score) == (str(A), 6, 6)
    # B's only view is in the previous window: no bucket in the current one, not listed.
    assert keys(rm.reader.trending("video", 61, 10)) == [str(A), str(B)]


def test_velocity_and_acceleration_over_one_hour(world, rm):
    rm.feed(
        world.publish(A)
        + world.views(A, t(-19), 3)  # previous window (watermark - 120, watermark - 60]
        + world.views(A, t(40), 9)
        + world.views(A, t(41), 10)  # current window (watermark - 60, watermark]
        + world.views(A, t(100), 20)
    )
    [item] = rm.reader.trending("video", HOUR, 10)
    assert item.views == 30
    assert item.velocity == 30.0  # views per hour
    assert item.acceleration == 18.0  # (30/h - 12/h) / 1 h


def test_velocity_and_acceleration_over_twenty_four_hours(world, rm):
    rm.feed(
        world.publish(A)
        + world.views(A, t(0), 24)  # previous day
        + world.views(A, t(DAY - 1), 12)  # still previous day (the window is half-open)
        + world.views(A, t(DAY), 47)
        + world.views(A, t(2 * DAY - 1), 1)  # watermark
    )
    [item] = rm.reader.trending("video", DAY, 10)
    assert item.views == 48
    assert item.velocity == 2.0
    assert item.acceleration == (2.0 - 1.5) / 24


def test_a_falling_item_has_negative_acceleration(world, rm):
    rm.feed(world.publish(A) + world.views(A, t(0), 10) + world.views(A, t(60), 4))
    [item] = rm.reader.trending("video", HOUR, 10)
    assert (item.views, item.velocity, item.acceleration) == (4, 4.0, -6.0)


def test_series_is_one_point_per_minute_up_to_the_watermark(world, rm):
    assert rm.reader.series("video", str(A), 5) == []
    rm.feed(world.publish(A) + world.views(A, t(1), 2) + world.views(A, t(4), 3))
    assert rm.reader.series("video", str(A), 5) == [
        (M0, 0), (M0 + 1, 2), (M0 + 2, 0), (M0 + 3, 0), (M0 + 4, 3),
    ]  # fmt: skip
    assert rm.reader.series("video", str(A), 2) == [(M0 + 3, 0), (M0 + 4, 3)]
    assert minute_start(M0 + 4) == t(4)


# -- ranking -------------------------------------------------------------------------------
def test_ranking_is_by_score_then_key_and_first_cuts_the_list(world, rm):
    events = [e for v in (A, B, C, D) for e in world.publish(v)]
    events += world.views(A, t(0), 4)  # score 4
    events += world.act("share", B, t(0))  # score 5
    events += world.act("like", C, t(0)) + world.views(C, t(0), 1)  # score 4, ties with A
    events += world.act("comment", D, t(0)) + world.views(D, t(0), 2)  # score 6
    rm.feed(events)
    items = rm.reader.trending("video", HOUR, 10)
    assert [(i.key, i.rank, i.score) for i in items] == [
        (str(D), 1, 6), (str(B), 2, 5), (str(A), 3, 4), (str(C), 4, 4),
    ]  # fmt: skip
    assert items[1] == TrendingItem(
        kind="video", key=str(B), rank=2, score=5, views=0, likes=0, shares=1, comments=0,
        velocity=0.0, acceleration=0.0,
    )  # fmt: skip
    assert [(i.key, i.rank) for i in rm.reader.trending("video", HOUR, 2)] == [
        (str(D), 1),
        (str(B), 2),
    ]


def test_no_watermark_means_nothing_is_trending(rm):
    assert rm.reader.watermark() is None
    assert rm.reader.trending("hashtag", DAY, 10) == []


@pytest.mark.parametrize(
    ("kind", "window", "first", "code"),
    [
        ("creator", HOUR, 10, "invalid_kind"),
        ("video", 0, 10, "invalid_window"),
        ("video", MAX_WINDOW_MINUTES + 1, 10, "invalid_window"),
        ("video", HOUR, 0, "invalid_first"),
        ("video", HOUR, 101, "invalid_first"),
    ],
)
def test_out_of_range_arguments_are_rejected(rm, kind, window, first, code):
    with pytest.raises(InvalidValue) as info:
        rm.reader.trending(kind, window, first)
    assert info.value.code == code


# -- watermark, lateness, pruning -------------------------------------------------------------
def test_a_late_event_within_grace_counts_in_its_own_older_bucket(world, rm):
    rm.feed(world.publish(A) + world.views(A, t(30)))
    rm.feed(world.views(A, t(30 - GRACE_MINUTES, 5)) + world.views(A, t(25)))
    assert rm.buckets("video", A) == {20: (1, 0, 0, 0), 25: (1, 0, 0, 0), 30: (1, 0, 0, 0)}
    assert rm.meta() == {"watermark_minute": M0 + 30}  # late events never move it back


def test_a_late_event_beyond_grace_is_dropped_and_counted(world, rm):
    rm.feed(world.publish(A, ["tag"]) + world.views(A, t(30)))
    changed = rm.feed(
        world.views(A, t(30 - GRACE_MINUTES - 1, 59)) + world.act("like", A, t(0)),
        world.views(A, t(19)),
    )
    assert rm.buckets("video", A) == {30: (1, 0, 0, 0)}
    assert rm.buckets("hashtag", "tag") == {30: (1, 0, 0, 0)}
    assert rm.meta() == {"watermark_minute": M0 + 30, "late_dropped": 3}
    assert changed == [set(), set()]


def test_buckets_older_than_the_retention_are_pruned(world, rm):
    rm.feed(world.publish(A, ["tag"]) + world.views(A, t(0)))
    rm.feed(world.views(A, t(RETENTION_MINUTES)))  # minute 0 is exactly at the limit: kept
    assert set(rm.buckets("video", A)) == {0, RETENTION_MINUTES}
    rm.feed(world.views(A, t(RETENTION_MINUTES + 1)))
    assert set(rm.buckets("video", A)) == {RETENTION_MINUTES, RETENTION_MINUTES + 1}
    assert set(rm.buckets("hashtag", "tag")) == {RETENTION_MINUTES, RETENTION_MINUTES + 1}


def test_a_bucket_written_and_outdated_in_the_same_batch_is_pruned(world, rm):
    rm.feed(world.publish(A) + world.views(A, t(0)) + world.views(A, t(RETENTION_MINUTES + 1)))
    assert set(rm.buckets("video", A)) == {RETENTION_MINUTES + 1}


def test_retention_keeps_what_the_longest_query_reaches():
    assert RETENTION_MINUTES >= 2 * MAX_WINDOW_MINUTES + GRACE_MINUTES
    assert RETENTION_MINUTES >= MAX_SERIES_MINUTES + GRACE_MINUTES


def test_minutes_are_floored_in_exact_integer_arithmetic():
    assert minute_of(t(0, 59) + timedelta(microseconds=999_999)) == M0
    assert minute_of(t(1)) == M0 + 1
    assert M0 == 1714564800 // 60


# -- batching ------------------------------------------------------------------------------
def story(world: World) -> list[Aggregate.Event]:
    """Every rule at once: tags, sound, edit, likes/unlikes, late in and beyond grace, prune."""
    return (
        world.publish(A, ["dance", "fun"], "s1")
        + world.publish(B, ["dance"])
        + world.views(A, t(0), 2)
        + world.act("like", A, t(0, 30))
        + world.act("unlike", A, t(0, 40))
        + world.views(B, t(3))
        + world.edit(A, ["cooking"], t(4))
        + world.act("share", A, t(5))
        + world.act("comment", B, t(5))
        + world.views(A, t(1))  # late within grace
        + world.act("uncomment", B, t(20))
        + world.views(A, t(2), 1)  # late beyond grace: dropped
        + world.act("like", B, t(RETENTION_MINUTES + 3))  # prunes minutes 0..2
        + world.views(B, t(RETENTION_MINUTES - 5))  # late within grace
        + world.act("like", A, t(RETENTION_MINUTES + 3, 30))
    )


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_tables_do_not_depend_on_how_events_are_batched(size):
    events = story(World())
    one = ReadModel()
    one.feed(events)
    batched = ReadModel()
    batched.feed(*(events[i : i + size] for i in range(0, len(events), size)))
    assert batched.tables() == one.tables()
    assert one.meta() == {"watermark_minute": M0 + RETENTION_MINUTES + 3, "late_dropped": 1}
    # Pruned below watermark - RETENTION_MINUTES = minute 3 (minute 0 went, minute 3 stays).
    assert set(one.buckets("hashtag", "dance")) == {
        3, 5, 20, RETENTION_MINUTES - 5, RETENTION_MINUTES + 3,
    }  # fmt: skip
