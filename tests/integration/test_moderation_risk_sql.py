"""Moderation risk through SQL (SQLite via bootstrap): the risk orders the open queue, and
the projection's rows survive a restart from its checkpoint unchanged."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid5

import pytest
import sqlalchemy as sa

from adapters.bootstrap import bootstrap
from adapters.projections.runner import ProjectionRunner, ProjectionSpec
from adapters.readmodel.moderation_reader import NEUTRAL_RISK, RISK_WEIGHT, SqlModerationReader
from adapters.readmodel.risk_view import SqlModerationRiskView
from adapters.readmodel.tables import (
    projection_checkpoints,
    projection_tracking,
    rm_model_metrics,
    rm_moderation_risk,
)
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from projections.moderation_risk import BASELINE, MODEL, ModerationRiskProjection

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def container(tmp_path):
    c = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'events.db'}"))
    yield c
    c.close()


def risk_runner(container, batch_size: int = 1000) -> ProjectionRunner:
    spec = ProjectionSpec(ModerationRiskProjection(), lambda conn: SqlModerationRiskView(conn))
    return ProjectionRunner(
        spec, container.store, container.content.mapper, container.write_engine,
        batch_size=batch_size,
    )  # fmt: skip


def test_the_open_queue_ranks_by_priority_score_plus_risk(container):
    creator = container.content.register_creator(
        handle="risky", display_name="R", region="US", occurred_at=T0
    ).id
    videos = [
        container.content.publish_video(
            creator_id=creator, caption=f"v{i}", hashtags=[], sound_id=None,
            duration_seconds=10, occurred_at=T0,
        ).id
        for i in range(3)
    ]  # fmt: skip
    cases = {}
    for video, reports in zip(videos, (3, 1, 2), strict=True):
        for r in range(reports):
            cases[video] = container.moderation.report_video(
                video, reporter_id=sa_uuid(video, r), reason="spam", occurred_at=T0
            ).id
    container.projections.runner("moderation").run_until_idle()  # the queue, no risk yet
    reader = SqlModerationReader(container.read_engine)
    by_score = [c.case_id for c in reader.queue("open", 10, None)[0]]
    assert by_score == [cases[videos[0]], cases[videos[2]], cases[videos[1]]]  # no risk yet
    assert all(c.risk is None for c in reader.queue("open", 10, None)[0])

    # The model says the 1-report case is harmful and the 3-report case is not.
    risks = {videos[0]: 0.05, videos[1]: 0.95, videos[2]: 0.5}
    with container.write_engine.begin() as conn:
        view = SqlModerationRiskView(conn)
        for video, p in risks.items():
            view.risk(cases[video], video, T0, p, {"log_reports": 1.0})
        assert view.flush() >= {"moderation", f"case:{cases[videos[0]]}"}

    items, _, _ = reader.queue("open", 10, None)
    assert [c.case_id for c in items] == [cases[videos[1]], cases[videos[2]], cases[videos[0]]]
    for c in items:
        assert c.risk == pytest.approx(risks[c.video_id])
        assert c.effective_priority == pytest.approx(
            c.priority_score + RISK_WEIGHT * (c.risk - NEUTRAL_RISK)
        )
    # Keyset pagination follows the same order.
    first, end, more = reader.queue("open", 1, None)
    rest, _, _ = reader.queue("open", 10, end)
    assert more and [c.case_id for c in first + rest] == [c.case_id for c in items]

    # A decided case keeps its risk for display, but it no longer moves the case.
    container.moderation.decide_case(
        cases[videos[1]], moderator_id=sa_uuid(videos[1], 99), outcome="keep", policy="p",
        occurred_at=T0 + timedelta(hours=1),
    )  # fmt: skip
    container.projections.runner("moderation").run_until_idle()  # risk row as it was
    decided = reader.case(cases[videos[1]])
    assert decided.status == "decided" and decided.risk == pytest.approx(0.95)
    assert decided.effective_priority == pytest.approx(decided.priority_score)


def sa_uuid(video: UUID, n: int) -> UUID:
    return uuid5(video, str(n))  # a distinct reporter (or moderator) id per report


def rows(container) -> tuple[list, list]:
    with container.read_engine.connect() as conn:
        by_case = sa.select(rm_moderation_risk).order_by(rm_moderation_risk.c.case_id)
        risk = list(conn.execute(by_case))
        metrics = list(
            conn.execute(
                sa.select(rm_model_metrics)
                .where(rm_model_metrics.c.model.in_([MODEL, BASELINE]))
                .order_by(rm_model_metrics.c.model, rm_model_metrics.c.metric)
            )
        )
    return risk, metrics


def test_a_restart_from_the_checkpoint_and_a_rebuild_write_the_same_rows(container):
    workload = generate(WorkloadConfig(seed=3, days=2, report_waves=12).scale(0.3))
    drive_application(container, workload.commands)
    container.projections.runner("moderation").run_until_idle()  # the queue, for the reader

    # A round far behind reads ten batches: five rounds of 10 x 23 events stop midway.
    interrupted = risk_runner(container, batch_size=23)
    for _ in range(5):
        interrupted.run_once()
    assert 0 < interrupted.position() < container.head_position
    risk_runner(container, batch_size=97).run_until_idle()  # a new process: loads the checkpoint
    restarted = rows(container)

    with container.write_engine.begin() as conn:  # rebuild from the first event
        conn.execute(rm_moderation_risk.delete())
        ours = rm_model_metrics.c.model.in_([MODEL, BASELINE])
        conn.execute(rm_model_metrics.delete().where(ours))
        for table in (projection_tracking, projection_checkpoints):
            conn.execute(table.delete().where(table.c.name == ModerationRiskProjection.name))
    risk_runner(container, batch_size=5000).run_until_idle()
    rebuilt = rows(container)

    risk, metrics = restarted
    assert len(risk) > 10 and {m.metric for m in metrics} == {"roc_auc", "log_loss"}
    assert any(r.outcome is not None for r in risk)
    assert restarted == rebuilt
    # The open queue now carries the risk of its open cases.
    items, _, _ = SqlModerationReader(container.read_engine).queue("open", 100, None)
    assert items and all(c.risk is not None for c in items)
    assert [c.effective_priority for c in items] == sorted(
        (c.effective_priority for c in items), reverse=True
    )


SCRIPT = """
import hashlib, sys
sys.path.insert(0, ".")
from tests.unit.test_moderation_risk import RecordingView, run, synthetic
from projections.moderation_risk import ModerationRiskProjection
view = RecordingView()
run(ModerationRiskProjection(), synthetic(60, seed=9)[0], view)
print(hashlib.sha256(repr(view.calls).encode()).hexdigest())
"""


def test_predictions_do_not_depend_on_the_hash_seed_of_the_process():
    # A rebuild runs in another process: set iteration order must not reach the model.
    digests = {
        subprocess.run(
            [sys.executable, "-c", SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
            cwd=Path(__file__).parents[2],
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1
