"""recommendations() over SQLite: a small workload through the applications and projections."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from eventsourcing.utils import get_topic

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


def caught_up_projection(container: Container) -> RecommendationsProjection:
    """A projection fed the events its runner was (its topics only: every event moves the
    watermark and the pools' refresh)."""
    projection = RecommendationsProjection()
    for position, event in stored_events(container.store, container.content.mapper):
        if get_topic(type(event)) in projection.topics:
            projection.process(event, position, NullView())
    return projection


def least_recent_viewer(conn: sa.Connection) -> object:
    """A viewer with a few views whose row is the oldest: every hashtag's views moved
    since it last watched (a row that froze its lifts would be off by now)."""
    seen = (
        sa.select(rm_reco_seen.c.viewer_id)
        .group_by(rm_reco_seen.c.viewer_id)
        .having(sa.func.count() >= 3)
    )
    return conn.execute(
        sa.select(rm_reco_viewers.c.viewer_id)
        .where(rm_reco_viewers.c.viewer_id.in_(seen))
        .order_by(rm_reco_viewers.c.updated_at, rm_reco_viewers.c.viewer_id)
        .limit(1)
    ).scalar_one()


def test_the_reader_ranks_as_the_projection_does(container: Container):
    """The read path serves the projection's list: the same videos in the same order
    with the same scores and reasons, for the busiest viewer, one last seen long ago and
    an unknown one. The reader computes the lifts from the viewer's views per hashtag and
    the hashtags' views, as of the projection's watermark, over the projection's pools."""
    projection = caught_up_projection(container)
    at = datetime.fromtimestamp(projection.state.now, UTC)
    with container.read_engine.connect() as conn:
        viewers = [busiest_viewer(conn), least_recent_viewer(conn), uuid4()]
        read = {v: recommendations(conn, v, first=50) for v in viewers}
    served = {v: projection.recommend(v, at) for v in viewers}
    assert "personal" in {r.source for r in served[viewers[0]]}
    for viewer in viewers:
        k = DEFAULT_PARAMS.top_k
        assert [r.video_id for r in read[viewer][:k]] == [r.video_id for r in served[viewer]]
        for mine, theirs in zip(read[viewer], served[viewer], strict=False):
            assert mine.source == theirs.source
            assert mine.score == pytest.approx(theirs.score, rel=1e-9)


def test_a_wider_list_continues_the_projection_ranking(container: Container):
    """first=50 is the projection's ranking of the same candidates, cut at 50."""
    projection = caught_up_projection(container)
    at = datetime.fromtimestamp(projection.state.now, UTC)
    with container.read_engine.connect() as conn:
        viewer = busiest_viewer(conn)
        read = recommendations(conn, viewer, first=50)
    wide = replace(DEFAULT_PARAMS, top_k=50)
    projection.params = wide
    served = projection.recommend(viewer, at)
    assert len(read) == 50
    assert [r.video_id for r in read] == [r.video_id for r in served]
