"""The bot detector through the real pipeline on SQLite: workload -> event store -> runner
-> rm_video_anomaly and rm_alerts.

A small seeded workload with injected bot bursts is driven through the applications; the
projection runs in small batches with its state checkpointed. Scores land in
rm_video_anomaly, alerts in rm_alerts on the burst videos; a rebuild from the first event
(other batch sizes) writes exactly the same rows and no duplicate alert.
"""

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa

from adapters.bootstrap import Container, bootstrap
from adapters.projections.runner import ProjectionRunner, ProjectionSpec
from adapters.readmodel.anomaly_reader import video_anomaly
from adapters.readmodel.anomaly_view import SqlBotDetectorView
from adapters.readmodel.tables import (
    projection_checkpoints,
    projection_tracking,
    rm_alerts,
    rm_video_anomaly,
)
from adapters.settings import Settings
from adapters.workload import Workload, WorkloadConfig, drive_application, generate
from projections.bot_detector import BotDetectorProjection

WORKLOAD = WorkloadConfig(
    seed=5, days=1, creators=30, viewers=500, views_per_day=3000, bot_bursts=4,
    report_waves=0, batch_window_seconds=600,
)  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Container, Workload]]:
    path: Path = tmp_path_factory.mktemp("bots") / "events.db"
    c = bootstrap(Settings(database_url=f"sqlite:///{path}"))
    workload = generate(WORKLOAD)
    drive_application(c, workload.commands)
    yield c, workload
    c.close()


def run(c: Container, batch_size: int) -> int:
    spec = ProjectionSpec(BotDetectorProjection(), lambda conn: SqlBotDetectorView(conn))
    runner = ProjectionRunner(spec, c.store, c.content.mapper, c.write_engine,
                              batch_size=batch_size)  # fmt: skip
    return runner.run_until_idle()


def snapshot(c: Container) -> tuple[list, list]:
    with c.read_engine.connect() as conn:
        anomalies = list(conn.execute(sa.select(rm_video_anomaly).order_by("video_id")))
        alerts = list(
            conn.execute(
                sa.select(rm_alerts.c.alert_id, rm_alerts.c.subject_id, rm_alerts.c.raised_at,
                          rm_alerts.c.score, rm_alerts.c.position, rm_alerts.c.action_status)
                .where(rm_alerts.c.source == "bot_detector")
                .order_by(rm_alerts.c.alert_id)
            )
        )  # fmt: skip
    return anomalies, alerts


def test_scores_and_alerts_land_in_the_read_model_and_a_rebuild_writes_the_same(world):
    c, workload = world
    assert run(c, batch_size=97) > 0
    anomalies, alerts = snapshot(c)

    assert len(anomalies) > 50  # every video with activity has a row
    bot_videos = {str(v) for v in workload.truth.bot_video_ids}
    assert alerts and {a.subject_id for a in alerts} <= bot_videos
    assert all(a.action_status == "pending" for a in alerts)  # auto_flag, for the action worker
    with c.read_engine.connect() as conn:
        dtos = [video_anomaly(conn, UUID(a.subject_id)) for a in alerts]
        assert video_anomaly(conn, UUID(int=0)) is None
    # A burst's video (drips are alerted by the cohort stage, their minutes score low).
    dto = max((d for d in dtos if d is not None), key=lambda d: d.max_score)
    assert dto.max_score >= 0.9 and dto.minutes >= 2
    assert set(dto.vector) >= {"views", "repeat_share", "other_source_share"}

    # Rebuild from the first event (position and checkpoint gone, rows kept) in other
    # batch sizes: the same absolute rows, and the same alerts, not new ones.
    with c.write_engine.begin() as conn:
        for table in (projection_tracking, projection_checkpoints):
            conn.execute(table.delete().where(table.c.name == BotDetectorProjection.name))
    run(c, batch_size=5000)
    assert snapshot(c) == (anomalies, alerts)
