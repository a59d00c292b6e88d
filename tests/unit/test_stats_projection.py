"""The stats projection's fast path (a dispatch dict and the view's one-call `viewed`)
writes what its plain version (`process_reference`: a match on the event and
`engagement(views=1, ...)`) writes.

A seeded workload (views, likes, comments, follows, moderation) is recorded in memory;
its events go through each version into the real SQL view on an in-memory SQLite read
model, in batches of 97 events; every stats table must come out the same, row for row.
"""

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.bootstrap import bootstrap
from adapters.readmodel import tables
from adapters.readmodel.db import create_read_engine, upgrade
from adapters.readmodel.recount import all_events
from adapters.readmodel.stats_view import SqlStatsView
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from domain.engagement import Engagement
from projections.stats import StatsProjection

TABLES = (
    tables.rm_creators, tables.rm_videos, tables.rm_hashtags, tables.rm_sounds,
    tables.rm_view_pairs, tables.rm_follow_pairs,
)  # fmt: skip
BATCH = 97


@pytest.fixture(scope="module")
def events() -> list[Any]:
    container = bootstrap(Settings(database_url="memory://"))
    try:
        config = WorkloadConfig(seed=5, days=2).scale(0.2)
        drive_application(container, generate(config).commands)
        return list(all_events(container.store, container.content.mapper))
    finally:
        container.close()


def build(events: list[Any], process: Callable[[Any, int, Any], None]) -> dict[str, list[Any]]:
    engine = create_read_engine("sqlite://")
    upgrade(engine)
    for start in range(0, len(events), BATCH):
        with engine.begin() as conn:
            view = SqlStatsView(conn)
            for position, event in enumerate(events[start : start + BATCH], start + 1):
                process(event, position, view)
            view.flush()
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t))), key=repr) for t in TABLES}


def test_the_fast_path_writes_what_the_reference_writes(events):
    # Given a workload's events, views most of them
    assert sum(isinstance(e, Engagement.Viewed) for e in events) > len(events) / 3
    # When the stats are built through each version
    fast = build(events, StatsProjection().process)
    reference = build(events, StatsProjection().process_reference)
    # Then every table holds the same rows (floats too: the same additions, in order)
    assert fast["rm_videos"] and fast["rm_view_pairs"]
    assert fast == reference
