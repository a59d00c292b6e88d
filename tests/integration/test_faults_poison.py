"""Fault: a poison event that projections cannot process.

A stored event with a real topic (Engagement.Viewed) but an undecodable payload is
written with the recorder directly, between valid events. The projections that read it
must fail on it for real: report it (last_error in projection_tracking, the status, and
an alert with rule `projection_error`), never skip it (the position stays before the
batch that holds it), and leave the read model as it was (the batch rolled back, so the
valid events of the same batch are not half-applied). Projections that do not read that
topic carry on to the head.
"""

import time
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from adapters.projections.poison import RULE, SOURCE, install_poison_reporting
from adapters.projections.runner import read_position
from adapters.projections.status import projection_status
from adapters.readmodel.tables import projection_tracking, rm_alerts, rm_videos
from commands.engagement import Signal
from domain.engagement import Engagement


def _wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.05)  # polling a condition, bounded by the deadline


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_url")


def test_poison_event_is_reported_not_skipped(url, container_factory):
    c = container_factory(url)
    creator = c.content.register_creator(handle="poison", display_name="P", region="DE")
    video = c.content.publish_video(
        creator_id=creator.id, caption="", hashtags=[], sound_id=None, duration_seconds=30.0
    ).id

    def view(n: int) -> None:
        c.engagement.record(Signal("view", uuid.uuid4(), video, watch_seconds=2.0))

    for n in range(5):
        view(n)
    c.run_projections_until_idle()
    before = c.head_position

    def views() -> int:
        with c.read_engine.connect() as conn:
            return conn.execute(
                sa.select(rm_videos.c.views).where(rm_videos.c.video_id == video)
            ).scalar_one()

    assert views() == 5
    for n in range(2):  # valid events in the same batch as the poison, before it
        view(n)
    poison = StoredEvent(uuid.uuid4(), 1, get_topic(Engagement.Viewed), b"\x00not an event")
    c.store.recorder.insert_events([poison])
    poison_position = c.head_position
    for n in range(3):  # and after it
        view(n)
    head = c.head_position

    install_poison_reporting(c.projections)
    c.projections.start()
    try:

        def alert_row() -> sa.Row | None:
            with c.read_engine.connect() as conn:
                return conn.execute(
                    sa.select(rm_alerts).where(
                        rm_alerts.c.rule == RULE, rm_alerts.c.subject_id == "stats"
                    )
                ).first()

        topic = get_topic(Engagement.Viewed)
        stuck_names = [
            r.name
            for r in c.projections.runners
            if not r.spec.projection.topics or topic in r.spec.projection.topics
        ]
        assert stuck_names
        _wait(lambda: alert_row() is not None, 30, "an alert for the stats projection")
        # Retried (every ~1 s), never skipped: still stuck after another attempt of each.
        failures = c.projections.group.failures
        _wait(lambda: all(failures[n] >= 2 for n in stuck_names), 30, "a retry of each stuck one")
        first_error = c.projections.runner("stats").last_error
        assert first_error is not None
    finally:
        c.projections.stop()

    alert = alert_row()
    assert alert is not None and alert.source == SOURCE and alert.severity == "critical"
    assert alert.position == before + 1 and "stats" in alert.summary
    with c.read_engine.connect() as conn:
        for name in stuck_names:
            position = read_position(conn, name)
            assert position < poison_position, (name, position)
        row = conn.execute(
            sa.select(projection_tracking).where(projection_tracking.c.name == "stats")
        ).one()
        alerts = conn.execute(
            sa.select(sa.func.count()).select_from(rm_alerts).where(rm_alerts.c.rule == RULE)
        ).scalar_one()
    assert row.position == before  # the batch [view, view, poison, ...] rolled back
    assert row.last_error  # the status carries the error
    assert views() == 5  # neither the 2 views before the poison nor the 3 after
    assert alerts == len(stuck_names)  # one alert per stuck projection, however many retries
    status = {s.name: s for s in projection_status(c.store, c.read_engine, sample_seconds=0)}
    assert status["stats"].last_error and status["stats"].lag >= head - before
    print(
        f"\npoison event at position {poison_position} ({url.split(':')[0]}): "
        f"{len(stuck_names)} projections stuck before it (head {head}) and alerted once "
        f"each; stats views still 5"
    )
