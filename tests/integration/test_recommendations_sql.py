"""recommendations() over SQLite: a small workload through the applications and projections."""

from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from adapters.bootstrap import Container, bootstrap
from adapters.projections.runner import ProjectionRunner, ProjectionSpec
from adapters.readmodel.reco_reader import recommendations
from adapters.readmodel.reco_view import SqlRecommendationsView
from adapters.readmodel.tables import rm_model_metrics, rm_reco_bandit, rm_reco_seen, rm_videos
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from projections.recommendations import RecommendationsProjection


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory):
    path: Path = tmp_path_factory.mktemp("reco") / "events.db"
    c = bootstrap(Settings(database_url=f"sqlite:///{path}"))
    config = WorkloadConfig(seed=11, days=1, creators=40, viewers=300, views_per_day=3000)
    drive_application(c, generate(config).commands)
    c.projections.run_until_idle()  # rm_videos (status) and rm_follow_pairs
    runner = ProjectionRunner(
        ProjectionSpec(RecommendationsProjection(), lambda conn: SqlRecommendationsView(conn)),
        c.store, c.content.mapper, c.write_engine, batch_size=500,
    )  # fmt: skip
    runner.run_until_idle()
    yield c
    c.close()


def busiest_viewer(conn: sa.Connection) -> object:
    return conn.execute(
        sa.select(rm_reco_seen.c.viewer_id)
        .group_by(rm_reco_seen.c.viewer_id)
        .order_by(sa.func.count().desc(), rm_reco_seen.c.viewer_id)
        .limit(1)
    ).scalar_one()


def test_recommendations_leave_out_seen_and_unavailable_videos(container: Container):
    with container.read_engine.connect() as conn:
        viewer = busiest_viewer(conn)
        seen = set(
            conn.scalars(
                sa.select(rm_reco_seen.c.video_id).where(rm_reco_seen.c.viewer_id == viewer)
            )
        )
        status = dict(conn.execute(sa.select(rm_videos.c.video_id, rm_videos.c.status)).all())
        recs = recommendations(conn, viewer, first=50)
    assert {"removed", "restricted"} <= set(status.values())  # the workload moderated some
    assert len(recs) == 50 and len(seen) >= 5
    ids = [r.video_id for r in recs]
    assert len(set(ids)) == len(ids)
    assert not set(ids) & seen
    assert {status[v] for v in ids} == {"active"}
    assert "personal" in {r.source for r in recs}


def test_a_cold_start_gets_trending_and_first_is_validated(container: Container):
    with container.read_engine.connect() as conn:
        recs = recommendations(conn, uuid4(), first=5)
        assert [r.source for r in recs] == ["trending"] * 5
        assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
        for bad in (0, 101):
            with pytest.raises(ValueError, match="first"):
                recommendations(conn, uuid4(), first=bad)


def test_explore_lets_the_stored_bandit_choose_the_leading_source(container: Container):
    with container.read_engine.connect() as conn:
        assert conn.execute(sa.select(rm_reco_bandit.c.arms)).scalar_one()  # it learned
        viewer = busiest_viewer(conn)
        plain = recommendations(conn, viewer, first=10)
        explored = recommendations(conn, viewer, first=10, explore=True)
        again = recommendations(conn, viewer, first=10, explore=True)
        metrics = {(m.model, m.metric) for m in conn.execute(sa.select(rm_model_metrics))}
    assert explored == again  # stable for one viewer until the policy learns again
    leader = explored[0].source
    lead = [r for r in explored if r.source == leader]
    assert explored[: len(lead)] == lead  # the chosen source's list comes first, in its order
    assert [r.score for r in lead] == sorted((r.score for r in lead), reverse=True)
    assert len({r.video_id for r in explored}) == len(explored) == len(plain) == 10
    assert {("recommendations", "hit_rate_at_10"), ("recommendations_baseline", "mae")} <= metrics
