"""Rebuilt equals live on a workload with late events (issue 15 §5).

`rm_videos.last_engaged_at` was overwritten with each batch's latest event time, so a
batch holding only a late event moved it backwards, and a rebuild (other batch cuts)
differed from the live table: "differs from the live version in rm_videos". Event-time
maxima are kept monotonic; the live table, built here one small batch at a time with
late events in between, must equal a blue/green rebuild built in large batches; so must
every other projection's.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.projections.rebuild import Rebuilder
from adapters.readmodel.tables import rm_videos
from commands.engagement import Signal


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_url")


def test_late_events_never_move_last_engaged_back_and_rebuild_equals_live(url, container_factory):
    c = container_factory(url)
    now = datetime.now(UTC).replace(microsecond=0)
    creator = c.content.register_creator(handle="late", display_name="L", region="DE")
    videos = [
        c.content.publish_video(
            creator_id=creator.id, caption="", hashtags=["late"], sound_id=None,
            duration_seconds=30.0, occurred_at=now - timedelta(hours=3),
        ).id
        for _ in range(3)
    ]  # fmt: skip
    c.run_projections_until_idle()
    # Each step is its own batch: on time, then a late one (an hour earlier), per video.
    for minutes in (60, 0, 30, 90, 10):
        for video in videos:
            at = now - timedelta(minutes=minutes)
            c.engagement.record(Signal("view", uuid.uuid4(), video, occurred_at=at,
                                       watch_seconds=3.0))  # fmt: skip
            c.engagement.record(Signal("like", uuid.uuid4(), video, occurred_at=at))
        c.run_projections_until_idle()

    with c.read_engine.connect() as conn:
        live = {
            r.video_id: r.last_engaged_at
            for r in conn.execute(sa.select(rm_videos.c.video_id, rm_videos.c.last_engaged_at))
        }
    assert all(live[v].astimezone(UTC) == now for v in videos), live  # the latest, not the last

    # Every projection, not only stats: rebuilt in one batch, each equals its live tables.
    rebuilder = Rebuilder.for_container(c, batch_size=10_000)
    for name in rebuilder.names:
        result = rebuilder.rebuild(name, require_identical=True)
        assert result.identical, result.summary()
    print(f"\nlate events ({url.split(':')[0]}): {len(rebuilder.names)} projections rebuilt, "
          f"each identical to its live version")  # fmt: skip
