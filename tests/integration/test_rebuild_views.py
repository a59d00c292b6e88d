"""The core read models do not depend on how the log is cut into batches.

The SQL views read what a batch needs up front (prefetch), buffer inserts until flush and
count new rows from `INSERT ... RETURNING` (adapters/readmodel/*_view.py). Whatever the
batch size, rebuilding from the same log must give the same tables, the stats must match
a recount from the event store, and a session's distinct-video count must equal its
session-video rows.
"""

from typing import Any

import pytest
import sqlalchemy as sa

from adapters.projections.registry import projection_specs
from adapters.projections.runner import ProjectionRunner
from adapters.readmodel import tables
from adapters.readmodel.db import create_read_engine, read_model_url, upgrade
from adapters.readmodel.recount import recount_check
from adapters.workload import WorkloadConfig, drive_application, generate

pytestmark = pytest.mark.postgres

CORE = ("stats", "moderation", "trending", "sessions")
TABLES = (
    tables.rm_videos, tables.rm_creators, tables.rm_hashtags, tables.rm_sounds,
    tables.rm_view_pairs, tables.rm_follow_pairs, tables.rm_viewer_sessions,
    tables.rm_session_videos, tables.rm_trend_buckets, tables.rm_trend_videos, tables.rm_cases,
)  # fmt: skip


def rebuild(container: Any, read_url: str, batch_size: int) -> sa.Engine:
    engine = create_read_engine(read_model_url(read_url, None), writer=True)
    upgrade(engine)
    for spec in projection_specs():
        if spec.name in CORE:
            runner = ProjectionRunner(
                spec, container.store, container.content.mapper, engine, batch_size=batch_size
            )
            runner.run_until_idle()
    return engine


def contents(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row; float sums rounded (a batch adds its deltas in its own order)."""

    def row(r: Any) -> tuple[Any, ...]:
        return tuple(round(v, 6) if isinstance(v, float) else v for v in r)

    with engine.connect() as conn:
        return {t.name: sorted(map(row, conn.execute(sa.select(t))), key=repr) for t in TABLES}


def test_rebuilds_in_big_and_tiny_batches_agree(pg_url, pg_server, container_factory):
    # Given a store holding a small seeded workload (views, likes, follows, moderation)
    container = container_factory(pg_url)
    config = WorkloadConfig(seed=3, creators=12, viewers=150, views_per_day=1_000)
    drive_application(container, generate(config).commands)

    # When the core read models are rebuilt twice: 1000 events per batch, and 13
    with pg_server.fresh_database() as big_url, pg_server.fresh_database() as tiny_url:
        big, tiny = rebuild(container, big_url, 1000), rebuild(container, tiny_url, 13)
        try:
            # Then both hold the same rows, and they agree with the event store
            assert contents(big) == contents(tiny)
            report = recount_check(container.store, container.content.mapper, big)
            assert report.ok, report.mismatches[:10]
            with big.connect() as conn:
                sessions = conn.execute(
                    sa.select(
                        tables.rm_viewer_sessions.c.videos_watched,
                        sa.select(sa.func.count())
                        .where(
                            tables.rm_session_videos.c.viewer_id
                            == tables.rm_viewer_sessions.c.viewer_id,
                            tables.rm_session_videos.c.session_no
                            == tables.rm_viewer_sessions.c.session_no,
                        )
                        .scalar_subquery(),
                    )
                ).all()
            assert len(sessions) > 50
            assert all(watched == rows for watched, rows in sessions)
        finally:
            big.dispose()
            tiny.dispose()
