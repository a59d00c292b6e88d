"""Viewer sessions: session windows with a 30-minute inactivity gap, in event time.

Views come from the real Engagement aggregate with chosen event times and go through the
real projection and SQL view on an in-memory SQLite read model, one transaction per batch.
"""

from datetime import datetime, timedelta
from uuid import UUID

import pytest
import sqlalchemy as sa
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from adapters.readmodel.db import create_read_engine, upgrade
from adapters.readmodel.sessions_reader import SqlSessionsReader
from adapters.readmodel.sessions_view import SqlSessionsView
from adapters.readmodel.tables import rm_session_videos, rm_viewer_sessions
from domain.creator import Creator
from domain.engagement import Engagement
from domain.errors import InvalidValue
from domain.video import Video
from projections.sessions import SESSION_GAP, SessionsProjection
from queries.sessions import ViewerSession

from .given_when_then import T0

A, B, C = (UUID(int=i) for i in (201, 202, 203))
ANN, BOB = UUID(int=401), UUID(int=402)

CREATOR = Creator.register(
    creator_id=UUID(int=100), handle="cat", display_name="Cat", region="SE",
    occurred_at=T0 - timedelta(days=1),
)  # fmt: skip


def t(minute: int, second: int = 0) -> datetime:
    return T0 + timedelta(minutes=minute, seconds=second)


class World:
    """Builds view events with the domain aggregates."""

    def __init__(self) -> None:
        self.videos = {v: self._publish(v) for v in (A, B, C)}
        self.pairs: dict[tuple[UUID, UUID], Engagement] = {}

    @staticmethod
    def _publish(video_id: UUID) -> Video:
        return Video.publish(
            video_id=video_id, creator=CREATOR, caption="clip", hashtags=[], sound_id=None,
            duration_seconds=60.0, occurred_at=T0 - timedelta(hours=1),
        )  # fmt: skip

    def view(
        self, video_id: UUID, at: datetime, viewer: UUID = ANN, watch: float = 10.0
    ) -> list[Aggregate.Event]:
        video = self.videos[video_id]
        if (viewer, video_id) not in self.pairs:
            self.pairs[(viewer, video_id)] = Engagement.start(
                viewer_id=viewer, video=video, occurred_at=at
            )
        pair = self.pairs[(viewer, video_id)]
        pair.view(video, watch_seconds=watch, completed=False, traffic_source="for_you",
                  device="android", occurred_at=at)  # fmt: skip
        return list(pair.collect_events())


class ReadModel:
    def __init__(self) -> None:
        self.engine = create_read_engine("sqlite://")
        upgrade(self.engine)
        self.projection = SessionsProjection()
        self.reader = SqlSessionsReader(self.engine)
        self.position = 0

    def feed(self, *batches: list[Aggregate.Event]) -> list[set[str]]:
        changed = []
        for batch in batches:
            with self.engine.begin() as conn:
                view = SqlSessionsView(conn)
                for event in batch:
                    self.position += 1
                    if get_topic(type(event)) in self.projection.topics:
                        self.projection.process(event, self.position, view)
                changed.append(view.flush())
        return changed

    def sessions(self, viewer: UUID = ANN) -> list[tuple]:
        """(no, start, end, views, videos, watch), oldest first."""
        return [
            (s.session_no, s.started_at, s.ended_at, s.views, s.videos_watched, s.watch_seconds)
            for s in reversed(self.reader.viewer_sessions(viewer, 100))
        ]

    def tables(self) -> dict[str, list[tuple]]:
        with self.engine.connect() as conn:
            return {
                table.name: sorted(tuple(r) for r in conn.execute(sa.select(table)))
                for table in (rm_viewer_sessions, rm_session_videos)
            }


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def rm() -> ReadModel:
    return ReadModel()


def test_the_first_view_opens_session_one(world, rm):
    changed = rm.feed(world.view(A, t(0), watch=12.5))
    assert rm.sessions() == [(1, t(0), t(0), 1, 1, 12.5)]
    assert changed == [{f"sessions:{ANN}"}]


def test_a_view_29_59_after_the_last_one_continues_the_session(world, rm):
    rm.feed(world.view(A, t(0)) + world.view(B, t(29, 59)) + world.view(C, t(59, 58)))
    assert rm.sessions() == [(1, t(0), t(59, 58), 3, 3, 30.0)]


def test_a_view_30_01_after_the_last_one_starts_a_new_session(world, rm):
    rm.feed(world.view(A, t(0)) + world.view(B, t(10)) + world.view(C, t(40, 1)))
    assert rm.sessions() == [
        (1, t(0), t(10), 2, 2, 20.0),
        (2, t(40, 1), t(40, 1), 1, 1, 10.0),
    ]


def test_a_pause_of_exactly_the_gap_starts_a_new_session(world, rm):
    assert timedelta(minutes=30) == SESSION_GAP
    rm.feed(world.view(A, t(0)), world.view(A, t(30)))
    assert [(s[0], s[1]) for s in rm.sessions()] == [(1, t(0)), (2, t(30))]


def test_a_video_watched_twice_in_a_session_counts_once(world, rm):
    rm.feed(world.view(A, t(0)) + world.view(B, t(1)) + world.view(A, t(2), watch=5.0))
    rm.feed(world.view(A, t(3), watch=2.5))  # again, in a later batch
    assert rm.sessions() == [(1, t(0), t(3), 4, 2, 27.5)]


def test_the_same_video_in_a_new_session_counts_again(world, rm):
    rm.feed(world.view(A, t(0)) + world.view(A, t(45)))
    assert [(s[0], s[4]) for s in rm.sessions()] == [(1, 1), (2, 1)]


def test_an_out_of_order_view_inside_the_session_changes_no_times(world, rm):
    rm.feed(world.view(A, t(0)) + world.view(B, t(20)))
    rm.feed(world.view(C, t(10)))
    assert rm.sessions() == [(1, t(0), t(20), 3, 3, 30.0)]


def test_a_view_older_than_the_latest_session_is_counted_in_it(world, rm):
    rm.feed(world.view(A, t(0)) + world.view(A, t(60)))
    rm.feed(world.view(B, t(5)))  # belonged to session 1 in event time: the simplification
    assert rm.sessions() == [
        (1, t(0), t(0), 1, 1, 10.0),
        (2, t(60), t(60), 2, 2, 20.0),
    ]


def test_sessions_of_viewers_are_independent(world, rm):
    changed = rm.feed(
        world.view(A, t(0)) + world.view(A, t(0), viewer=BOB) + world.view(B, t(40), viewer=BOB)
    )
    assert [s[0] for s in rm.sessions(ANN)] == [1]
    assert [s[0] for s in rm.sessions(BOB)] == [1, 2]
    assert changed == [{f"sessions:{ANN}", f"sessions:{BOB}"}]


def test_the_reader_lists_the_newest_sessions_first(world, rm):
    rm.feed(world.view(A, t(0)) + world.view(A, t(60)) + world.view(A, t(120), watch=7.0))
    assert rm.reader.viewer_sessions(ANN, 2) == [
        ViewerSession(ANN, 3, t(120), t(120), 1, 1, 7.0),
        ViewerSession(ANN, 2, t(60), t(60), 1, 1, 10.0),
    ]
    assert rm.reader.viewer_sessions(BOB, 10) == []
    with pytest.raises(InvalidValue):
        rm.reader.viewer_sessions(ANN, 0)


def test_session_duration_is_end_minus_start():
    session = ViewerSession(ANN, 1, t(0), t(29, 59), 2, 2, 20.0)
    assert session.duration_seconds == 29 * 60 + 59


def story(world: World) -> list[Aggregate.Event]:
    return (
        world.view(A, t(0))
        + world.view(B, t(0), viewer=BOB)
        + world.view(B, t(29, 59))
        + world.view(A, t(15))  # out of order, inside
        + world.view(C, t(59, 58))
        + world.view(C, t(90), viewer=BOB)  # Bob's session 2
        + world.view(A, t(90))  # Ann's session 2
        + world.view(A, t(100))
        + world.view(B, t(50))  # older than Ann's session 2: counted in it
        + world.view(A, t(300), watch=0.5)
    )


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_tables_do_not_depend_on_how_views_are_batched(size):
    events = story(World())
    one = ReadModel()
    one.feed(events)
    batched = ReadModel()
    batched.feed(*(events[i : i + size] for i in range(0, len(events), size)))
    assert batched.tables() == one.tables()
    assert one.sessions(ANN) == [
        (1, t(0), t(59, 58), 4, 3, 40.0),
        (2, t(90), t(100), 3, 2, 30.0),
        (3, t(300), t(300), 1, 1, 0.5),
    ]
    assert len(one.sessions(BOB)) == 2
