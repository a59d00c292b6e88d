"""Comments -> SentimentProjection (real runner, SQL view, VADER) -> rm_comment_sentiment,
buckets, the video's state and one turning-negative alert -> AlertActionWorker ->
ModerationCase.AutoFlagged, exactly once (also when the read model is rebuilt and the
alert comes back pending). Readers answer windows from the buckets.

On SQLite and on PostgreSQL (a fresh database: the bulk upserts take another path there)
through bootstrap.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from eventsourcing.utils import get_topic

from adapters.alert_actions import AlertActionWorker
from adapters.bootstrap import Container
from adapters.projections.runner import ProjectionRunner, ProjectionSpec
from adapters.readmodel import sentiment_reader
from adapters.readmodel.sentiment_tables import rm_comment_sentiment, rm_sentiment_buckets
from adapters.readmodel.sentiment_view import SqlSentimentView
from adapters.readmodel.tables import projection_tracking, rm_alerts
from adapters.sentiment import VaderScorer
from commands.engagement import Signal
from domain.moderation import ModerationCase
from projections.sentiment import RULE, TURNING_NEGATIVE, SentimentProjection

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # in the past of the applications' clock
PRAISE = ("love this", "this is so good", "amazing work", "thank you for this", "beautiful shot")
ANGER = ("this is so boring", "terrible advice", "what a waste of time", "the worst",
         "this is stupid", "awful, just awful", "so disappointed in you", "this is offensive",
         "painful to watch", "ugly edit")  # fmt: skip


class World:
    def __init__(self, c: Container) -> None:
        self.c = c
        creator = c.content.register_creator(
            handle="s" + uuid4().hex[:8], display_name="C", region="US", occurred_at=T0
        )
        self.creator_id = creator.id
        self.runner = self._runner()
        self.worker = AlertActionWorker(c.moderation, c.write_engine, retry_after=timedelta(0))

    def _runner(self) -> ProjectionRunner:
        spec = ProjectionSpec(SentimentProjection(VaderScorer()), SqlSentimentView)
        return ProjectionRunner(spec, self.c.store, self.c.content.mapper, self.c.write_engine,
                                batch_size=7)  # fmt: skip

    def video(self) -> UUID:
        return self.c.content.publish_video(
            creator_id=self.creator_id, caption="x #cats", hashtags=["cats"], sound_id="snd-9",
            duration_seconds=20, occurred_at=T0,
        ).id  # fmt: skip

    def comments(self, video: UUID, texts: tuple[str, ...], start: datetime, every: float) -> None:
        signals = [
            Signal(
                "comment",
                uuid4(),
                video,
                occurred_at=start + timedelta(minutes=every * i),
                comment_id=uuid4(),
                text=text,
            )
            for i, text in enumerate(texts)
        ]
        assert self.c.engagement.ingest(signals).recorded == len(signals)

    def auto_flags(self) -> int:
        topic = get_topic(ModerationCase.AutoFlagged)
        return len(
            self.c.store.recorder.select_notifications(start=1, limit=100_000, topics=[topic])
        )

    def alerts(self) -> list[sa.Row]:
        with self.c.read_engine.connect() as conn:
            return list(conn.execute(sa.select(rm_alerts).where(rm_alerts.c.source == "sentiment")))


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, container_factory, tmp_path: Path) -> World:
    if request.param == "postgresql":
        return World(container_factory(request.getfixturevalue("pg_url")))
    return World(container_factory(f"sqlite:///{tmp_path}/store.db"))


def test_a_video_turning_negative_is_auto_flagged_exactly_once(world: World):
    video = world.video()
    world.comments(video, PRAISE * 2, T0 + timedelta(minutes=10), every=30)  # 10 over 5 h
    world.comments(video, (*ANGER, "no me gustó nada, qué aburrido"), T0 + timedelta(hours=8), 4)
    world.runner.run_until_idle()

    [alert] = world.alerts()
    assert (alert.rule, alert.subject_id, alert.action) == (RULE, str(video), "auto_flag")
    with world.c.read_engine.connect() as conn:
        state = sentiment_reader.video_state(conn, video)
        assert state is not None and state.status == TURNING_NEGATIVE and state.turns == 1
        languages = dict(conn.execute(
            sa.select(rm_comment_sentiment.c.language, sa.func.count()).group_by("language")
        ).all())  # fmt: skip
        assert languages == {"en": 20, "es": 1}  # the Spanish comment counted, not scored
        day = sentiment_reader.sentiment(conn, "hashtag", "cats", 1440)
        assert (day.comments, day.scored, day.negative, day.positive) == (21, 20, 10, 10)
        hour = sentiment_reader.sentiment(conn, "video", str(video), 60)
        assert hour.comments == 11 and hour.mean is not None and hour.mean < -0.3
        [worst] = sentiment_reader.ranking(conn, "sound", 1440, "most_negative")
        assert worst.key == "snd-9"
        assert [v.video_id for v in sentiment_reader.turning_negative(conn)] == [video]

    assert world.worker.run_until_idle() == 1
    assert world.auto_flags() == 1
    case = world.c.moderation.get_case(ModerationCase.create_id(video))
    assert case.status == "open"
    [alert] = world.alerts()
    assert alert.action_status == "done" and alert.action_result.startswith("recorded")

    # A rebuild of the read model brings the alert back, pending: still one flag.
    with world.c.write_engine.begin() as conn:
        for table in (rm_alerts, rm_comment_sentiment, rm_sentiment_buckets):
            conn.execute(table.delete())
        conn.execute(projection_tracking.delete().where(projection_tracking.c.name == "sentiment"))
    world.runner = world._runner()
    world.runner.run_until_idle()
    [again] = world.alerts()
    assert again.alert_id == alert.alert_id and again.action_status == "pending"
    assert world.worker.run_until_idle() == 1
    assert world.auto_flags() == 1  # the idempotency key replayed the first result
    assert world.alerts()[0].action_result.startswith("replayed")


def test_a_deleted_comment_leaves_its_row_and_the_tallies_even_in_a_later_batch(world: World):
    video = world.video()
    at = T0 + timedelta(minutes=10)
    kept, gone = (uuid4(), uuid4()), (uuid4(), uuid4())  # (viewer, comment)
    said = [Signal("comment", v, video, occurred_at=at, comment_id=c, text=t)
            for (v, c), t in ((kept, "love this"), (gone, "the worst"))]  # fmt: skip
    assert world.c.engagement.ingest(said).recorded == 2
    world.runner.run_until_idle()  # counted in one batch...
    delete = Signal("delete_comment", gone[0], video, occurred_at=at + timedelta(minutes=1),
                    comment_id=gone[1])  # fmt: skip
    assert world.c.engagement.ingest([delete]).recorded == 1
    world.runner.run_until_idle()  # ...taken out in a later one

    with world.c.read_engine.connect() as conn:
        rows = conn.execute(sa.select(rm_comment_sentiment.c.comment_id)).scalars().all()
        assert [UUID(str(r)) for r in rows] == [kept[1]]
        for kind, key in (("video", str(video)), ("hashtag", "cats"), ("sound", "snd-9")):
            day = sentiment_reader.sentiment(conn, kind, key, 1440)
            assert (day.comments, day.scored, day.positive, day.negative) == (1, 1, 1, 0)
            assert day.mean is not None and day.mean > 0.5
