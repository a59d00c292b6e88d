"""Comment moderation end to end: moderators' decisions -> CommentModerationProjection
learns -> a new toxic comment raises a "flag_comment" alert -> AlertActionWorker ->
CommentCase.AutoFlagged, exactly once however often the action runs.

On a SQLite event store and read model through bootstrap, with the real ProjectionRunner,
SQL view and ModerationApplication (PostgreSQL too, with REELPULSE_TEST_DATABASE_URL).
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
from adapters.readmodel.comment_reader import comment_cases
from adapters.readmodel.comment_view import SqlCommentModerationView
from adapters.readmodel.tables import rm_alerts
from commands.engagement import Signal
from domain.comment_moderation import CommentCase
from projections.comment_moderation import CommentModerationParams, CommentModerationProjection

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # in the past of the applications' clock
PARAMS = CommentModerationParams(min_decisions=6, min_each=3, threshold=0.7)  # after training
TOXIC = ("you are a pathetic loser", "nobody likes you loser", "delete your account loser")
BENIGN = ("great dance, love it", "what song is this", "so good, love the moves")


class World:
    def __init__(self, c: Container) -> None:
        self.c = c
        creator = c.content.register_creator(
            handle="h" + uuid4().hex[:8], display_name="C", region="US", occurred_at=T0
        )
        self.video = c.content.publish_video(
            creator_id=creator.id, caption="x", hashtags=[], sound_id=None,
            duration_seconds=20, occurred_at=T0,
        ).id  # fmt: skip
        self.runner = ProjectionRunner(
            ProjectionSpec(
                CommentModerationProjection(PARAMS), lambda conn: SqlCommentModerationView(conn)
            ),
            c.store, c.content.mapper, c.write_engine, batch_size=50,
        )  # fmt: skip
        self.worker = AlertActionWorker(c.moderation, c.write_engine, retry_after=timedelta(0))
        self.minute = 0

    def at(self) -> datetime:
        self.minute += 1
        return T0 + timedelta(minutes=self.minute)

    def comment(self, text: str) -> UUID:
        comment_id = uuid4()
        signal = Signal("comment", uuid4(), self.video, occurred_at=self.at(),
                        comment_id=comment_id, text=text)  # fmt: skip
        assert self.c.engagement.ingest([signal]).recorded == 1
        return comment_id

    def reported_and_decided(self, text: str, outcome: str) -> None:
        comment_id = self.comment(text)
        case = self.c.moderation.report_comment(
            comment_id, video_id=self.video, reporter_id=uuid4(), reason="harassment",
            occurred_at=self.at(),
        ).id  # fmt: skip
        self.c.moderation.decide_comment(
            case, moderator_id=uuid4(), outcome=outcome, occurred_at=self.at()
        )

    def trained(self) -> "World":
        for toxic, benign in zip(TOXIC, BENIGN, strict=True):
            self.reported_and_decided(toxic, "remove")
            self.reported_and_decided(benign, "keep")
        return self

    def project(self) -> None:
        self.runner.run_until_idle()

    def flags(self) -> int:
        topic = get_topic(CommentCase.AutoFlagged)
        return len(
            self.c.store.recorder.select_notifications(start=1, limit=100_000, topics=[topic])
        )

    def rows(self) -> list[sa.Row]:
        with self.c.read_engine.connect() as conn:
            return list(conn.execute(sa.select(rm_alerts).order_by(rm_alerts.c.position)))

    def reset_actions(self) -> None:  # what a rebuild of the alerts read model amounts to
        with self.c.write_engine.begin() as conn:
            conn.execute(rm_alerts.update().values(action_status="pending", action_result=None))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, container_factory, tmp_path: Path) -> World:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        url = str(request.getfixturevalue("pg_url"))
    return World(container_factory(url)).trained()


def test_a_toxic_comment_is_flagged_through_the_command_side_exactly_once(world: World):
    world.project()
    assert world.rows() == []  # the model flags only once trained (on all six decisions)
    toxic = world.comment("you are such a loser")
    world.comment("love this song")
    world.project()

    [row] = world.rows()
    assert (row.action, row.subject_type, row.subject_id) == ("flag_comment", "comment", str(toxic))
    assert world.worker.run_until_idle() == 1
    assert world.flags() == 1
    case = world.c.moderation.get_comment_case(CommentCase.create_id(toxic))
    assert (case.flags, case.video_id) == (1, world.video)

    world.reset_actions()  # the action runs again, as after a rebuild
    assert world.worker.run_until_idle() == 1
    assert world.flags() == 1  # the idempotency key replayed the first result
    [row] = world.rows()
    assert row.action_status == "done" and row.action_result.startswith("replayed")

    world.project()  # the flag opened the case: the queue shows it, flagged, with its text
    with world.c.read_engine.connect() as conn:
        [queued] = comment_cases(conn, "open")
    assert (queued.comment_id, queued.flags, queued.text) == (toxic, 1, "you are such a loser")
    assert queued.probability is not None and queued.probability >= PARAMS.threshold


def test_a_crash_between_the_flag_and_its_bookkeeping_flags_once(world: World, monkeypatch):
    world.comment("nobody likes you, you pathetic loser")
    world.project()

    def crash(*args, **kwargs):
        raise RuntimeError("killed before record_action")

    monkeypatch.setattr(alert_actions, "record_action", crash)
    with pytest.raises(RuntimeError):
        world.worker.run_until_idle()
    assert world.flags() == 1 and world.rows()[0].action_status == "pending"
    monkeypatch.undo()

    restarted = AlertActionWorker(world.c.moderation, world.c.write_engine)
    assert restarted.run_until_idle() == 1
    assert world.flags() == 1
    assert world.rows()[0].action_status == "done"


def test_a_flag_on_a_comment_already_decided_is_skipped_with_the_reason(world: World):
    toxic = world.comment("you are a loser")
    case = world.c.moderation.report_comment(
        toxic, video_id=world.video, reporter_id=uuid4(), reason="harassment",
        occurred_at=world.at(),
    ).id  # fmt: skip
    world.c.moderation.decide_comment(case, moderator_id=uuid4(), outcome="remove")
    world.project()

    assert world.worker.run_until_idle() == 1
    [row] = world.rows()
    assert row.action_status == "skipped" and row.action_result.startswith("case_not_open")
    assert world.flags() == 0
