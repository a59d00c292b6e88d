"""Alert rules -> rm_alerts -> AlertActionWorker -> ModerationCase.Escalated, exactly once.

On a SQLite event store and read model through bootstrap: the rule projection runs
through the real ProjectionRunner, the worker through the real ModerationApplication.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from eventsourcing.utils import get_topic

import adapters.alert_actions as alert_actions
from adapters.alert_actions import AlertActionWorker
from adapters.bootstrap import Container
from adapters.projections.runner import ProjectionRunner, ProjectionSpec
from adapters.readmodel.alert_rules_view import SqlAlertRulesView
from adapters.readmodel.alerts_reader import AlertFeed, InvalidCursor, alerts, alerts_since
from adapters.readmodel.tables import rm_alerts
from commands.engagement import Signal
from domain.moderation import ModerationCase
from projections.alert_rules import AlertRulesProjection, AlertThresholds

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # in the past of the applications' clock
TH = AlertThresholds(report_spike_reports=4, report_spike_min_views=10)


class World:
    def __init__(self, c: Container) -> None:
        self.c = c
        creator = c.content.register_creator(
            handle="h" + uuid4().hex[:8], display_name="C", region="US", occurred_at=T0
        )
        self.creator_id = creator.id
        self.runner = ProjectionRunner(
            ProjectionSpec(AlertRulesProjection(TH), lambda conn: SqlAlertRulesView(conn)),
            c.store, c.content.mapper, c.write_engine, batch_size=50,
        )  # fmt: skip
        self.worker = AlertActionWorker(c.moderation, c.write_engine, retry_after=timedelta(0))

    def spiking_video(self, at: datetime = T0, reports: int = 4) -> UUID:
        video = self.c.content.publish_video(
            creator_id=self.creator_id, caption="x", hashtags=[], sound_id=None,
            duration_seconds=20, occurred_at=at,
        ).id  # fmt: skip
        views = [
            Signal("view", uuid4(), video, occurred_at=at + timedelta(minutes=1), watch_seconds=3)
            for _ in range(20)
        ]
        assert self.c.engagement.ingest(views).recorded == 20
        for i in range(reports):
            self.c.moderation.report_video(
                video, reporter_id=uuid4(), reason="spam", occurred_at=at + timedelta(minutes=5 + i)
            )
        return video

    def project(self) -> None:
        self.runner.run_until_idle()

    def escalations(self) -> int:
        topic = get_topic(ModerationCase.Escalated)
        return len(
            self.c.store.recorder.select_notifications(start=1, limit=100_000, topics=[topic])
        )

    def rows(self) -> list[sa.Row]:
        with self.c.read_engine.connect() as conn:
            return list(conn.execute(sa.select(rm_alerts).order_by(rm_alerts.c.position)))

    def reset_actions(self) -> None:  # what a rebuild of the alerts read model amounts to
        with self.c.write_engine.begin() as conn:
            conn.execute(
                rm_alerts.update()
                .where(rm_alerts.c.action.is_not(None))
                .values(action_status="pending", action_result=None, acted_at=None)
            )


@pytest.fixture
def world(container_factory, tmp_path: Path) -> World:
    return World(container_factory(f"sqlite:///{tmp_path}/store.db"))


def test_a_report_spike_escalates_its_case_exactly_once(world: World):
    video = world.spiking_video()
    world.project()
    [row] = world.rows()
    assert (row.rule, row.subject_id, row.action_status) == ("report_spike", str(video), "pending")

    assert world.worker.run_until_idle() == 1
    assert world.escalations() == 1
    [row] = world.rows()
    assert row.action_status == "done" and row.action_result.startswith("recorded")
    case = world.c.moderation.get_case(ModerationCase.create_id(video))
    assert case.priority == "high"

    assert world.worker.run_until_idle() == 0  # nothing pending
    world.reset_actions()
    assert world.worker.run_until_idle() == 1
    assert world.escalations() == 1  # the idempotency key replayed the first result
    [row] = world.rows()
    assert row.action_status == "done" and row.action_result.startswith("replayed")


def test_a_crash_between_the_command_and_its_bookkeeping_acts_once(world: World, monkeypatch):
    world.spiking_video()
    world.project()

    def crash(*args, **kwargs):
        raise RuntimeError("killed before record_action")

    monkeypatch.setattr(alert_actions, "record_action", crash)
    with pytest.raises(RuntimeError):
        world.worker.run_until_idle()
    assert world.escalations() == 1 and world.rows()[0].action_status == "pending"
    monkeypatch.undo()

    restarted = AlertActionWorker(world.c.moderation, world.c.write_engine)
    assert restarted.run_until_idle() == 1
    assert world.escalations() == 1
    assert world.rows()[0].action_status == "done"


def test_an_action_on_a_decided_case_is_skipped_with_the_reason(world: World):
    video = world.spiking_video()
    world.project()
    world.c.moderation.decide_case(
        ModerationCase.create_id(video), moderator_id=uuid4(), outcome="keep",
        policy="community-guidelines/spam", occurred_at=T0 + timedelta(minutes=30),
    )  # fmt: skip
    assert world.worker.run_until_idle() == 1
    [row] = world.rows()
    assert row.action_status == "skipped" and row.action_result.startswith("case_not_open")
    assert world.escalations() == 0
    assert world.worker.run_until_idle() == 0  # a refusal is final


def test_unexpected_errors_are_retried_a_bounded_number_of_times(world: World, monkeypatch):
    world.spiking_video()
    world.project()

    def broken(*args, **kwargs):
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(world.c.moderation, "escalate_case", broken)
    statuses = []
    for _ in range(6):
        world.worker.run_until_idle()
        statuses.append((world.rows()[0].action_status, world.rows()[0].action_result[:9]))
    assert statuses == [("failed", f"attempt {n}") for n in range(1, 5)] + [
        ("abandoned", "attempt 5"),
        ("abandoned", "attempt 5"),  # never retried again
    ]
    assert world.escalations() == 0


def test_failed_actions_wait_for_their_back_off(world: World, monkeypatch):
    world.spiking_video()
    world.project()
    monkeypatch.setattr(world.c.moderation, "escalate_case", lambda *a, **k: 1 / 0)
    patient = AlertActionWorker(world.c.moderation, world.c.write_engine)  # 30 s back-off
    assert patient.run_until_idle() == 1
    assert patient.run_until_idle() == 0
    assert world.rows()[0].action_status == "failed"


def test_alerts_page_newest_first_with_opaque_cursors(world: World):
    for i in range(5):
        world.spiking_video(T0 + timedelta(hours=i))
    world.project()
    with world.c.read_engine.connect() as conn:
        everything = alerts(conn, 100).items
        assert len(everything) == 5
        assert [a.position for a in everything] == sorted(
            (a.position for a in everything), reverse=True
        )
        seen, after, pages = [], None, 0
        while True:
            page = alerts(conn, 2, after)
            seen += page.items
            pages += 1
            if not page.has_next_page:
                break
            after = page.end_cursor
        assert seen == list(everything) and pages == 3
        assert alerts(conn, 5, rule="strike_threshold").items == ()
        assert alerts(conn, 5, rule="report_spike").items == everything
        for bad in ("not-a-cursor", "", "MTIz"):
            with pytest.raises(InvalidCursor):
                alerts(conn, 2, bad)
        for first in (0, 101):
            with pytest.raises(ValueError):
                alerts(conn, first)
        oldest = everything[-1]
        assert [a.id for a in alerts_since(conn, oldest.position)] == [
            a.id for a in reversed(everything[:-1])
        ]


def test_the_alert_feed_delivers_each_new_alert_once(world: World):
    world.spiking_video()
    world.project()
    feed = AlertFeed(["alert_rules"])
    with world.c.read_engine.connect() as conn:
        feed.start(conn)
        assert feed.poll(conn) == []  # existing alerts are not news
    world.spiking_video(T0 + timedelta(hours=2))
    world.spiking_video(T0 + timedelta(hours=3))
    world.project()
    with world.c.read_engine.connect() as conn:
        fresh = feed.poll(conn)
        assert len(fresh) == 2 and feed.poll(conn) == []
