"""Emerging trends through the real pipeline on SQLite: event store -> runner -> read model.

A small synthetic stream with a step (one tag's share tripled) is written through the
content and engagement applications; the projection runs in batches with its state
checkpointed. Rows and the alert land in rm_emerging_trends and rm_alerts; a rebuild from
the first event writes the same rows and no second alert.
"""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.bootstrap import Container, bootstrap
from adapters.projections.runner import ProjectionRunner, ProjectionSpec
from adapters.readmodel.emerging_reader import emerging_trends
from adapters.readmodel.tables import (
    projection_checkpoints,
    projection_tracking,
    rm_alerts,
    rm_emerging_trends,
)
from adapters.readmodel.trends_view import SqlEmergingTrendsView
from adapters.settings import Settings
from adapters.workload.trend_evaluation import START, TAGS, Step, synthetic_stream
from commands.engagement import Signal
from domain.engagement import Engagement
from domain.video import Video
from projections.emerging_trends import EmergingTrendsProjection

STEP = Step(TAGS[5], START + timedelta(hours=20), 6.0)


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    path: Path = tmp_path_factory.mktemp("trends") / "events.db"
    c = bootstrap(Settings(database_url=f"sqlite:///{path}"))
    events = synthetic_stream(seed=5, days=1.0, views_per_minute=6.0, step=STEP)
    c.content.register_creator(
        creator_id=events[0].creator_id, handle="tags", display_name="Tags", region="US",
        occurred_at=START,
    )  # fmt: skip
    signals: list[Signal] = []
    for e in events:
        if isinstance(e, Video.Published):
            c.content.publish_video(
                video_id=e.originator_id, creator_id=e.creator_id, caption=e.caption,
                hashtags=e.hashtags, sound_id=e.sound_id, duration_seconds=e.duration_seconds,
                occurred_at=e.occurred_at,
            )  # fmt: skip
        elif isinstance(e, Engagement.Viewed):
            signals.append(
                Signal(
                    kind="view",
                    video_id=e.video_id,
                    viewer_id=e.viewer_id,
                    watch_seconds=5.0,
                    completed=False,
                    traffic_source="for_you",
                    device="ios",
                    occurred_at=e.occurred_at,
                )
            )
    for i in range(0, len(signals), 500):
        c.engagement.ingest(signals[i : i + 500])
    yield c
    c.close()


def project(c: Container, batch_size: int) -> None:
    spec = ProjectionSpec(EmergingTrendsProjection(), SqlEmergingTrendsView)
    ProjectionRunner(spec, c.store, c.content.mapper, c.write_engine, batch_size=batch_size)\
        .run_until_idle()  # fmt: skip


def snapshot(c: Container) -> tuple[list, list]:
    with c.read_engine.connect() as conn:
        trends = conn.execute(
            sa.select(rm_emerging_trends).order_by(
                rm_emerging_trends.c.kind, rm_emerging_trends.c.key
            )
        ).all()
        alerts = conn.execute(
            sa.select(rm_alerts.c.alert_id, rm_alerts.c.subject_id, rm_alerts.c.raised_at,
                      rm_alerts.c.position, rm_alerts.c.score)
            .where(rm_alerts.c.source == "emerging_trends")
        ).all()  # fmt: skip
    return [tuple(r) for r in trends], [tuple(r) for r in alerts]


def forget(c: Container) -> None:
    """Start the projection over from the first event (its rows stay: a rebuild in place)."""
    with c.write_engine.begin() as conn:
        for table in (projection_tracking, projection_checkpoints):
            conn.execute(table.delete().where(table.c.name == "emerging_trends"))


def test_rows_and_the_alert_are_written_and_a_rebuild_changes_nothing(container):
    project(container, batch_size=700)  # many batches: the state goes through checkpoints
    trends, alerts = snapshot(container)

    assert {(r[0], r[1]) for r in trends} == {("hashtag", t) for t in TAGS}
    assert [a[1] for a in alerts] == [STEP.key]
    with container.read_engine.connect() as conn:
        listed = emerging_trends(conn, "hashtag", first=3)
        assert emerging_trends(conn, "sound") == []
    assert listed[0].detections == 1 and listed[0].detected_at is not None
    assert [t.key for t in listed if t.status == "emerging"] in ([], [STEP.key])
    assert listed == sorted(listed, key=lambda t: (t.status != "emerging", -t.lift))

    forget(container)
    project(container, batch_size=5000)  # a rebuild in other batch sizes
    assert snapshot(container) == (trends, alerts)
