"""ModerationQueueProjection: given a log of events, then these queue rows and timelines.

Events are made by the real aggregates, numbered 1..n as in the global log, and fed, like
the runner does, only when their topic is one the projection reads, through the real SQL
view into an in-memory SQLite read model.
"""

import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from adapters.readmodel.db import create_read_engine, upgrade
from adapters.readmodel.moderation_reader import SqlModerationReader
from adapters.readmodel.moderation_view import moderation_view_factory
from adapters.readmodel.tables import rm_case_reach, rm_case_timeline, rm_cases
from commands.engagement import Signal
from domain.creator import Creator
from domain.engagement import Engagement
from domain.moderation import ModerationCase
from domain.video import Video
from projections.moderation_queue import ModerationQueueProjection, PriorityWeights
from queries.moderation import CaseSummary

from .given_when_then import T0, at

CREATOR_ID = UUID(int=100)
REPORTERS = [UUID(int=600 + i) for i in range(10)]
MODERATOR_ID = UUID(int=700)
VIEWER_ID = UUID(int=800)


# -- the world: a log made by the real aggregates ------------------------------------------
class Log:
    """Events in the order the commands ran (the global order of the store)."""

    def __init__(self) -> None:
        self.events: list[Aggregate.Event] = []
        self.creator = Creator.register(
            creator_id=CREATOR_ID, handle="ann", display_name="Ann", region="SE", occurred_at=T0
        )
        self.record(self.creator)

    def record(self, *aggregates: Aggregate) -> None:
        for aggregate in aggregates:
            self.events.extend(aggregate.collect_events())

    def video(self, n: int) -> Video:
        video = Video.publish(
            video_id=UUID(int=200 + n),
            creator=self.creator,
            caption=f"clip {n}",
            hashtags=[],
            sound_id=None,
            duration_seconds=10,
            occurred_at=T0,
        )
        self.record(video)
        return video

    def case(self, video: Video, minute: int = 1) -> ModerationCase:
        case = ModerationCase.open_for(video, occurred_at=at(minute))
        self.record(case)
        return case

    def views(self, video: Video, n: int, minute: int = 1, viewer_id: UUID = VIEWER_ID) -> None:
        pair = Engagement.start(viewer_id=viewer_id, video=video, occurred_at=at(minute))
        for _ in range(n):
            pair.view(
                video,
                watch_seconds=5,
                completed=False,
                traffic_source="for_you",
                device="ios",
                occurred_at=at(minute),
            )
        self.record(pair)

    def then(self, case: ModerationCase, command: Callable[[ModerationCase], Any]) -> None:
        command(case)
        self.record(case)


def report(reporter: int = 0, minute: int = 2, reason: str = "spam") -> Callable:
    return lambda c: c.report(
        reporter_id=REPORTERS[reporter], reason=reason, occurred_at=at(minute)
    )


def flag(score: float, minute: int = 2) -> Callable:
    return lambda c: c.auto_flag(
        model="nsfw-v3", score=score, reasons=["nudity"], occurred_at=at(minute)
    )


def escalate(priority: str, minute: int = 3) -> Callable:
    return lambda c: c.escalate(priority=priority, occurred_at=at(minute))


def decide(outcome: str, minute: int = 4) -> Callable:
    return lambda c: c.decide(
        moderator_id=MODERATOR_ID,
        outcome=outcome,
        policy="cg-4.2",
        note="seen",
        occurred_at=at(minute),
    )


def appeal(minute: int = 5) -> Callable:
    return lambda c: c.appeal(appellant_id=CREATOR_ID, statement="a dance", occurred_at=at(minute))


def resolve(resolution: str, minute: int = 6) -> Callable:
    return lambda c: c.resolve_appeal(
        moderator_id=MODERATOR_ID, resolution=resolution, note="ok", occurred_at=at(minute)
    )


# -- the read side ----------------------------------------------------------------------------
class ReadModel:
    """The projection and its SQL view on a fresh in-memory read model, fed like the runner."""

    def __init__(self, weights: PriorityWeights | None = None) -> None:
        self.engine = create_read_engine("sqlite://")
        upgrade(self.engine)
        self.projection = ModerationQueueProjection(weights)
        self.make_view = moderation_view_factory(self.projection)
        self.reader = SqlModerationReader(self.engine)
        self.fed = 0  # events of the log consumed so far (positions are 1..n)

    def catch_up(self, log: Log, batch_size: int | None = None) -> list[set[str]]:
        """Project the log's new events in batches; return each batch's change keys."""
        new = [
            (position, event)
            for position, event in enumerate(log.events[self.fed :], start=self.fed + 1)
            if get_topic(type(event)) in self.projection.topics
        ]
        self.fed = len(log.events)
        size = batch_size or max(len(new), 1)
        changes = []
        for i in range(0, max(len(new), 1), size):
            with self.engine.begin() as conn:
                view = self.make_view(conn)
                for position, event in new[i : i + size]:
                    self.projection.process(event, position, view)
                changes.append(view.flush())
        return changes

    def open_queue(self, first: int = 100) -> list[CaseSummary]:
        items, _, _ = self.reader.queue("open", first, None)
        return items

    def stored(self, video_id: UUID) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(rm_case_reach.c.views).where(rm_case_reach.c.video_id == video_id)
            ).scalar_one()

    def dump(self) -> dict[str, list[tuple]]:
        with self.engine.connect() as conn:
            return {
                t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
                for t in (rm_cases, rm_case_timeline, rm_case_reach)
            }


def case_id(video: Video) -> UUID:
    return ModerationCase.create_id(video.id)


# -- priority ---------------------------------------------------------------------------------
def test_the_open_queue_is_ordered_by_the_documented_priority_score():
    log = Log()
    v1, v2, v3, v4, v5 = (log.video(n) for n in range(1, 6))
    log.views(v4, 99)
    c1, c2, c3, c4, c5 = (log.case(v) for v in (v1, v2, v3, v4, v5))
    for i in range(3):
        log.then(c1, report(i))  # 3 reports
    log.then(c2, flag(0.75))
    log.then(c2, flag(0.5))  # the highest flag counts
    log.then(c3, report(0))
    log.then(c3, escalate("high"))
    log.then(c4, report(0))  # 99 views of the video before the case opened
    log.then(c5, report(0))
    log.then(c5, decide("keep"))
    rm = ReadModel()

    rm.catch_up(log)

    queue = rm.open_queue()
    assert [c.case_id for c in queue] == [case_id(v) for v in (v3, v4, v2, v1)]
    assert [c.priority_score for c in queue] == pytest.approx(
        [
            math.log(2) + 2.0,  # 1 report, boost of "high"
            math.log(2) + 0.5 * 2.0,  # 1 report, reach 99: 0.5 * log10(100)
            2.0 * 0.75,  # max flag score 0.75
            math.log(4),  # 3 reports: log1p(3)
        ],
        rel=1e-12,
    )
    assert [(c.reports, c.max_flag_score, c.reach, c.priority) for c in queue] == [
        (1, 0.0, 0, "high"),
        (1, 0.0, 99, "normal"),
        (0, 0.75, 0, "normal"),
        (3, 0.0, 0, "normal"),
    ]


def test_the_weights_are_parameters_of_the_projection():
    log = Log()
    video = log.video(1)
    log.views(video, 9)
    case = log.case(video)
    log.then(case, report(0))
    log.then(case, flag(0.5))
    log.then(case, escalate("critical"))
    weights = PriorityWeights(reports=3.0, flag_score=10.0, reach=2.0, boost_critical=100.0)
    rm = ReadModel(weights)

    rm.catch_up(log)

    [row] = rm.open_queue()
    assert row.priority_score == pytest.approx(3.0 * math.log(2) + 5.0 + 2.0 * 1.0 + 100.0)


def test_weights_must_be_finite():
    with pytest.raises(ValueError, match="reach"):
        PriorityWeights(reach=math.inf)


# -- reach ------------------------------------------------------------------------------------
def test_reach_counts_the_videos_views_before_and_while_the_case_is_open():
    log = Log()
    video, other = log.video(1), log.video(2)
    log.views(video, 9)
    log.views(other, 4)  # videos without a case are counted too: a case may open later
    case = log.case(video)
    rm = ReadModel()
    rm.catch_up(log)
    assert rm.reader.case(case.id).reach == 9
    assert rm.stored(other.id) == 4

    log.views(video, 90, viewer_id=UUID(int=801))  # no case event: the queue still moves
    changes = rm.catch_up(log)

    row = rm.reader.case(case.id)
    assert (row.reach, row.priority_score) == (99, pytest.approx(0.5 * 2.0))
    assert row.updated_at == at(1)  # views are not case events
    assert changes == [{"moderation", f"case:{case.id}"}]


def test_a_settled_case_keeps_its_reach_until_a_new_report_reopens_it():
    log = Log()
    video = log.video(1)
    case = log.case(video)
    log.views(video, 9)
    log.then(case, report(0))
    log.then(case, decide("keep"))
    rm = ReadModel()
    rm.catch_up(log)

    log.views(video, 90, viewer_id=UUID(int=801))
    changes = rm.catch_up(log)
    assert rm.reader.case(case.id).reach == 9  # frozen at the decision
    assert rm.stored(video.id) == 99
    assert changes == [set()]  # nothing a subscriber shows changed

    log.then(case, report(1, minute=10))
    rm.catch_up(log)
    row = rm.reader.case(case.id)
    assert (row.status, row.reach, row.reports) == ("open", 99, 2)
    assert row.priority_score == pytest.approx(math.log(3) + 0.5 * 2.0)


# -- status -----------------------------------------------------------------------------------
def test_the_case_row_mirrors_the_aggregate_after_every_event():
    log = Log()
    case = log.case(log.video(1))
    rm = ReadModel()
    steps = [
        report(0),
        flag(0.4),
        escalate("high"),
        decide("restrict"),
        report(0, minute=5),  # reopens a decided case; the reporter may report again
        decide("remove", minute=6),
        appeal(minute=7),
        resolve("upheld", minute=8),
        flag(0.95, minute=9),  # reopens a closed case
        escalate("critical", minute=10),
        decide("restrict", minute=11),
        report(1, minute=12),  # reopens; the case was appealed once, so no second appeal
        decide("remove", minute=13),
    ]
    seen = []
    for step in steps:
        log.then(case, step)
        rm.catch_up(log)
        row = rm.reader.case(case.id)
        assert (row.status, row.priority, row.reports, row.max_flag_score) == (
            case.status,
            case.priority,
            case.report_count,
            case.max_flag_score,
        )
        assert (row.outcome, row.appealed) == (case.last_outcome, case.appealed)
        seen.append(row.status)
    assert seen == ["open", "open", "open", "decided", "open", "decided", "appealed",
                    "closed", "open", "open", "decided", "open", "decided"]  # fmt: skip


def test_an_overturned_appeal_closes_the_case_with_outcome_keep():
    log = Log()
    case = log.case(log.video(1))
    for step in (report(0), decide("remove"), appeal(), resolve("overturned")):
        log.then(case, step)
    rm = ReadModel()

    rm.catch_up(log)

    row = rm.reader.case(case.id)
    assert (row.status, row.outcome, row.appealed, row.updated_at) == (
        "closed",
        "keep",
        True,
        at(6),
    )
    assert row.opened_at == at(1)


def test_decided_cases_leave_the_open_queue_and_stay_listed_by_status():
    log = Log()
    v1, v2 = log.video(1), log.video(2)
    c1, c2 = log.case(v1), log.case(v2)
    log.then(c1, report(0))
    log.then(c2, report(0))
    rm = ReadModel()
    rm.catch_up(log)
    assert {c.case_id for c in rm.open_queue()} == {c1.id, c2.id}

    log.then(c1, decide("remove"))
    changes = rm.catch_up(log)

    assert [c.case_id for c in rm.open_queue()] == [c2.id]
    assert [c.case_id for c in rm.reader.queue("decided", 10, None)[0]] == [c1.id]
    assert {c.case_id for c in rm.reader.queue(None, 10, None)[0]} == {c1.id, c2.id}
    assert changes == [{"moderation", f"case:{c1.id}"}]


# -- pagination -------------------------------------------------------------------------------
def test_keyset_pagination_walks_the_queue_once_in_order():
    log = Log()
    videos = [log.video(n) for n in range(1, 6)]
    cases = [log.case(v, minute=m) for v, m in zip(videos, (1, 1, 2, 1, 3), strict=True)]
    for case in cases[:3]:
        log.then(case, report(0, minute=4))  # equal scores: opened_at, then case id decide
    log.then(cases[3], report(0, minute=4))
    log.then(cases[3], report(1, minute=4))
    log.then(cases[4], flag(0.1, minute=4))
    rm = ReadModel()
    rm.catch_up(log)
    tied = sorted([cases[0].id, cases[1].id])
    expected = [cases[3].id, *tied, cases[2].id, cases[4].id]

    page1, cursor1, more1 = rm.reader.queue("open", 2, None)
    page2, cursor2, more2 = rm.reader.queue("open", 2, cursor1)
    page3, cursor3, more3 = rm.reader.queue("open", 2, cursor2)

    ids = [c.case_id for c in (*page1, *page2, *page3)]
    assert ids == expected
    assert [len(page1), len(page2), len(page3)] == [2, 2, 1]
    assert (more1, more2, more3) == (True, True, False)
    assert rm.reader.queue("open", 2, cursor3) == ([], None, False)
    assert [c.case_id for c in rm.reader.queue("open", 100, None)[0]] == expected


def test_the_queue_rejects_foreign_cursors_and_unknown_statuses():
    reader = ReadModel().reader
    with pytest.raises(ValueError, match="cursor"):
        reader.queue("open", 2, "not-a-cursor")
    with pytest.raises(ValueError, match="status"):
        reader.queue("pending", 2, None)
    with pytest.raises(ValueError, match="first"):
        reader.queue("open", -1, None)


def test_cases_by_ids_returns_the_known_ones():
    log = Log()
    c1, c2 = log.case(log.video(1)), log.case(log.video(2))
    rm = ReadModel()
    rm.catch_up(log)

    found = rm.reader.cases_by_ids([c1.id, UUID(int=1), c2.id, c1.id])

    assert set(found) == {c1.id, c2.id}
    assert found[c2.id].video_id == UUID(int=202)
    assert rm.reader.case(UUID(int=1)) is None


# -- timeline ---------------------------------------------------------------------------------
def test_the_timeline_holds_every_case_event_in_log_order_with_actor_and_details():
    log = Log()
    video = log.video(1)
    case = log.case(video)
    log.views(video, 1)
    for step in (report(3, reason="nudity"), flag(0.8), escalate("high"), decide("remove"),
                 appeal(), resolve("overturned")):  # fmt: skip
        log.then(case, step)
    rm = ReadModel()

    rm.catch_up(log)

    timeline = rm.reader.timeline(case.id)
    positions = [p for p, e in enumerate(log.events, 1) if isinstance(e, ModerationCase.Event)]
    assert [e.position for e in timeline] == positions
    assert [(e.event_type, e.occurred_at, e.actor_id, e.details) for e in timeline] == [
        ("Opened", at(1), None, {"video_id": str(video.id), "creator_id": str(CREATOR_ID)}),
        ("Reported", at(2), REPORTERS[3], {"reason": "nudity"}),
        ("AutoFlagged", at(2), None, {"model": "nsfw-v3", "score": 0.8, "reasons": ["nudity"]}),
        ("Escalated", at(3), None, {"priority": "high"}),
        ("Decided", at(4), MODERATOR_ID, {"outcome": "remove", "policy": "cg-4.2", "note": "seen"}),
        ("Appealed", at(5), CREATOR_ID, {"statement": "a dance"}),
        ("AppealResolved", at(6), MODERATOR_ID, {"resolution": "overturned", "note": "ok"}),
    ]
    assert rm.reader.timeline(UUID(int=1)) == []


def test_times_come_back_in_utc_whatever_the_events_offset():
    log = Log()
    plus2 = timezone(timedelta(hours=2))
    case = ModerationCase.open_for(
        log.video(1), occurred_at=datetime(2024, 5, 1, 14, 0, tzinfo=plus2)
    )
    log.record(case)
    rm = ReadModel()

    rm.catch_up(log)

    row = rm.reader.case(case.id)
    assert row.opened_at == T0 and row.opened_at.utcoffset() == timedelta(0)
    [entry] = rm.reader.timeline(case.id)
    assert entry.occurred_at == T0 and entry.occurred_at.utcoffset() == timedelta(0)
    [via_cursor] = rm.reader.queue("open", 1, None)[0]
    assert via_cursor.updated_at.tzinfo is not None


# -- batching ---------------------------------------------------------------------------------
def busy_log() -> Log:
    """Several cases whose events interleave with views of their videos."""
    log = Log()
    v1, v2, v3 = log.video(1), log.video(2), log.video(3)
    log.views(v1, 3)
    c1 = log.case(v1)
    log.views(v2, 2)
    log.then(c1, report(0))
    c2 = log.case(v2, minute=2)
    log.views(v1, 5, viewer_id=UUID(int=801))
    log.then(c2, flag(0.6))
    log.then(c1, decide("restrict"))
    log.views(v1, 4, viewer_id=UUID(int=802))  # after the decision: reach stays
    log.views(v3, 7)
    log.then(c2, escalate("critical"))
    log.then(c1, appeal())
    log.views(v2, 6, viewer_id=UUID(int=803))
    log.then(c1, resolve("upheld"))
    log.then(c1, report(1, minute=9))  # reopens
    log.views(v1, 2, viewer_id=UUID(int=804))
    log.then(c2, decide("keep"))
    log.views(v2, 1, viewer_id=UUID(int=805))
    return log


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7])
def test_rows_do_not_depend_on_how_the_log_is_batched(batch_size: int):
    one_batch, small_batches = ReadModel(), ReadModel()

    one_batch.catch_up(busy_log())
    small_batches.catch_up(busy_log(), batch_size=batch_size)

    rows = one_batch.dump()
    assert rows == small_batches.dump()
    assert len(rows["rm_case_timeline"]) == 10
    assert {r[0]: r[1] for r in rows["rm_case_reach"]} == {
        UUID(int=201): 14,
        UUID(int=202): 9,
        UUID(int=203): 7,
    }
    c1 = one_batch.reader.case(ModerationCase.create_id(UUID(int=201)))
    c2 = one_batch.reader.case(ModerationCase.create_id(UUID(int=202)))
    assert (c1.status, c1.reach) == ("open", 14)  # reopened: live again
    assert (c2.status, c2.reach) == ("decided", 8)  # as of its decision


def test_events_outside_the_projections_topics_are_ignored():
    log = busy_log()
    rm = ReadModel()
    with rm.engine.begin() as conn:
        view = rm.make_view(conn)
        for position, event in enumerate(log.events[:4], start=1):  # creator and videos
            rm.projection.process(event, position, view)
        assert view.flush() == set()
    assert rm.dump() == {"rm_cases": [], "rm_case_timeline": [], "rm_case_reach": []}


# -- end to end through the container ---------------------------------------------------------
def test_commands_reach_the_queue_through_the_projection_runner(container_factory):
    container = container_factory("memory://")
    creator = container.content.register_creator(
        handle="bob", display_name="Bob", region="DE", occurred_at=at(0)
    ).id
    videos = [
        container.content.publish_video(
            creator_id=creator, caption=f"c{i}", hashtags=[], sound_id=None,
            duration_seconds=10, occurred_at=at(0),
        ).id
        for i in range(2)
    ]  # fmt: skip
    for viewer in range(3):
        container.engagement.record(
            Signal(kind="view", viewer_id=UUID(int=900 + viewer), video_id=videos[0],
                   watch_seconds=3, occurred_at=at(1))
        )  # fmt: skip
    first = container.moderation.report_video(
        videos[0], reporter_id=REPORTERS[0], reason="spam", occurred_at=at(2)
    )
    container.moderation.auto_flag_video(
        videos[1], model="m", score=0.9, reasons=["spam"], occurred_at=at(2)
    )
    container.moderation.escalate_case(first.id, priority="high", occurred_at=at(3))
    container.moderation.decide_case(
        ModerationCase.create_id(videos[1]),
        moderator_id=MODERATOR_ID, outcome="remove", policy="p", occurred_at=at(4),
    )  # fmt: skip

    container.run_projections_until_idle()

    reader = SqlModerationReader(container.read_engine)
    [open_case], _, more = reader.queue("open", 10, None)
    assert not more
    assert (open_case.case_id, open_case.reach, open_case.priority) == (first.id, 3, "high")
    assert open_case.priority_score == pytest.approx(math.log(2) + 0.5 * math.log10(4) + 2.0)
    decided = reader.case(ModerationCase.create_id(videos[1]))
    assert (decided.status, decided.outcome, decided.max_flag_score) == ("decided", "remove", 0.9)
    assert [e.event_type for e in reader.timeline(first.id)] == ["Opened", "Reported", "Escalated"]
    assert container.projections.positions()["moderation"] == container.head_position
