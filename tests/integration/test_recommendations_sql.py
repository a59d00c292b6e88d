"""recommendations() over SQLite: a small workload through the applications and projections."""

from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from adapters.bootstrap import Container, bootstrap
from adapters.evaluation.recommendations import NullView
from adapters.projections.runner import ProjectionRunner, ProjectionSpec
from adapters.readmodel.reco_reader import recommendations
from adapters.readmodel.reco_view import SqlRecommendationsView
from adapters.readmodel.recount import stored_events
from adapters.readmodel.tables import (
    rm_model_metrics,
    rm_reco_bandit,
    rm_reco_seen,
    rm_reco_viewers,
    rm_videos,
)
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from projections.recommendations import DEFAULT_PARAMS, RecommendationsProjection


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


def busy_recent_viewer(conn: sa.Connection) -> object:
    """The busiest viewer among those whose row was written in the last hour: the row
    freezes the viewer's lifts at its last event, so this one's lifts are current."""
    v = rm_reco_viewers.c
    latest = conn.execute(sa.select(sa.func.max(v.updated_at))).scalar_one()
    recent = sa.select(v.viewer_id).where(v.updated_at >= latest - timedelta(hours=1))
    return conn.execute(
        sa.select(rm_reco_seen.c.viewer_id)
        .where(rm_reco_seen.c.viewer_id.in_(recent))
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
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)


def test_a_cold_start_gets_trending_and_first_is_validated(container: Container):
    with container.read_engine.connect() as conn:
        recs = recommendations(conn, uuid4(), first=5)
        assert [r.source for r in recs] == ["trending"] * 5
        assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
        for bad in (0, 101):
            with pytest.raises(ValueError, match="first"):
                recommendations(conn, uuid4(), first=bad)


def test_explore_lets_the_stored_bandit_draw_the_taste_weight(container: Container):
    with container.read_engine.connect() as conn:
        arms = conn.execute(sa.select(rm_reco_bandit.c.arms)).scalar_one()
        viewer = busiest_viewer(conn)
        plain = recommendations(conn, viewer, first=10)
        explored = recommendations(conn, viewer, first=10, explore=True)
        again = recommendations(conn, viewer, first=10, explore=True)
        metrics = {(m.model, m.metric) for m in conn.execute(sa.select(rm_model_metrics))}
    assert set(arms) == set(DEFAULT_PARAMS.arms) and all(a["pulls"] > 0 for a in arms.values())
    assert explored == again  # stable for one viewer until the policy learns again
    for listed in (plain, explored):
        assert [r.score for r in listed] == sorted((r.score for r in listed), reverse=True)
        assert len({r.video_id for r in listed}) == len(listed) == 10
    assert {("recommendations", "hit_rate_at_10"), ("recommendations_baseline", "mae")} <= metrics


@pytest.mark.xfail(
    strict=True,
    reason="known gap (issue 17 notes): the read path scores from rows that store a viewer's "
    "lifts for some hashtags and one 'other' lift for the rest, so its score for a video can "
    "differ from the projection's by 25 %; the served list is not exactly the evaluated one",
)
def test_the_reader_ranks_as_the_projection_does(container: Container):
    """The read path's score is the projection's formula over the stored rows. They differ
    by what a row freezes (the viewer's lifts as of its last event: the hashtag shares
    moved since; the newest row's time as now) and by the candidate pools. A viewer who
    was active in the last hour, so that the frozen lifts are current: for a viewer last
    seen a day ago the read scores drift from the projection's (25 % seen here), a limit
    of the read model (docs/features.md)."""
    projection = RecommendationsProjection()
    events = list(stored_events(container.store, container.content.mapper))
    for position, event in events:
        projection.process(event, position, NullView())
    at = events[-1][1].occurred_at
    with container.read_engine.connect() as conn:
        viewer = busy_recent_viewer(conn)
        read = recommendations(conn, viewer, first=10)
    mine = projection.recommend(viewer, at)
    assert "personal" in {r.source for r in mine}
    scores = {r.video_id: r.score for r in mine}
    # The projection ranks its bounded pools (popular, newest, the viewer's strongest
    # hashtags' popular, followed creators'); the reader reads wider ones. Among the
    # projection's candidates, the reader's first five are in the projection's top 10.
    s = projection.state
    candidates = projection._candidates(s.viewer_index[viewer.int], at.timestamp()).items
    pooled = [r for r in read if s.video_index[r.video_id.int] in candidates]
    assert len(pooled) >= 5 and {r.video_id for r in pooled[:5]} <= set(scores)
    for r in read:
        if r.video_id in scores:
            assert r.score == pytest.approx(scores[r.video_id], rel=0.1)
