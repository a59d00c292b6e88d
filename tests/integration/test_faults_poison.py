"""Fault: events a projection cannot apply (issue 15: one text value stopped two read
models for good).

- A stored event with a real topic but an undecodable payload, written with the recorder
  directly between valid events: every projection that reads it quarantines it (a row in
  projection_quarantine with its position and reason, an alert with rule
  `projection_quarantine`, the count in the status) and goes on to the head; the valid
  events before and after it in the same batch are applied exactly once.
- A video published with a NUL in its caption and sound id through another door than the
  commands (the recorder; PostgreSQL text cannot hold NUL): the projections that write
  those strings quarantine the event, the others apply it; a rebuild quarantines the same
  event and equals the live version.
- An error of the system (a read-model table that is gone) is never quarantined: the
  projection stays before the batch, reports the error, and goes on once the table is
  back.
"""

import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest
import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from support.poison import publish_with_nul

from adapters.projections.poison import install_poison_reporting
from adapters.projections.quarantine import (
    MAX_RECENT,
    RULE,
    SOURCE,
    quarantinable,
    quarantined,
    record,
)
from adapters.projections.rebuild import Rebuilder
from adapters.projections.runner import read_position
from adapters.projections.status import projection_status
from adapters.readmodel.tables import projection_quarantine, rm_alerts, rm_videos
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


def _setup(c):
    creator = c.content.register_creator(handle="poison", display_name="P", region="DE")
    video = c.content.publish_video(
        creator_id=creator.id, caption="", hashtags=[], sound_id=None, duration_seconds=30.0
    ).id
    return creator.id, video


def _views(c, video) -> int:
    with c.read_engine.connect() as conn:
        return conn.execute(
            sa.select(rm_videos.c.views).where(rm_videos.c.video_id == video)
        ).scalar_one()


def _readers_of(c, topic: str) -> list[str]:
    return [
        r.name
        for r in c.projections.runners
        if not r.spec.projection.topics or topic in r.spec.projection.topics
    ]


def test_undecodable_event_is_quarantined_and_projections_go_on(url, container_factory):
    c = container_factory(url)
    _, video = _setup(c)

    def view() -> None:
        c.engagement.record(Signal("view", uuid.uuid4(), video, watch_seconds=2.0))

    for _ in range(5):
        view()
    c.run_projections_until_idle()
    assert _views(c, video) == 5
    for _ in range(2):  # valid events in the same batch as the poison, before it
        view()
    topic = get_topic(Engagement.Viewed)
    c.store.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, topic, b"\x00not an event")])
    poison_position = c.head_position
    for _ in range(3):  # and after it
        view()
    head = c.head_position

    install_poison_reporting(c.projections)
    c.projections.start()
    try:
        _wait(
            lambda: all(p == head for p in c.projections.positions().values()),
            60,
            "every projection at the head",
        )
    finally:
        c.projections.stop()

    readers = _readers_of(c, topic)
    with c.read_engine.connect() as conn:
        rows = quarantined(conn)
        alerts = conn.execute(
            sa.select(rm_alerts).where(rm_alerts.c.rule == RULE).order_by(rm_alerts.c.subject_id)
        ).all()
    assert sorted(r.name for r in rows) == sorted(readers)  # each reader quarantined it once
    assert {r.position for r in rows} == {poison_position}
    assert all(r.topic == topic and r.error for r in rows)
    assert [a.subject_id for a in alerts] == sorted(readers)
    assert all(a.source == SOURCE and a.position == poison_position for a in alerts)
    assert _views(c, video) == 10  # the 2 views before the poison and the 3 after: once
    status = {s.name: s for s in projection_status(c.store, c.read_engine, sample_seconds=0)}
    assert status["stats"].quarantined == 1 and status["stats"].lag == 0
    assert not status["stats"].last_error
    print(
        f"\nundecodable event at {poison_position} ({url.split(':')[0]}): quarantined by "
        f"{len(readers)} projections, all at the head {head}; stats views 10"
    )


@pytest.mark.postgres
def test_nul_text_is_quarantined_where_it_cannot_be_held(pg_url, container_factory):
    c = container_factory(pg_url)
    creator_id, video = _setup(c)
    c.run_projections_until_idle()
    bad = publish_with_nul(c, creator_id)
    bad_position = c.head_position
    for _ in range(3):
        c.engagement.record(Signal("view", uuid.uuid4(), video, watch_seconds=2.0))
    head = c.head_position

    c.run_projections_until_idle()
    positions = c.projections.positions()
    assert all(positions[n] == head for n in c.projections.names), positions
    with c.read_engine.connect() as conn:
        rows = quarantined(conn)
    names = sorted(r.name for r in rows)
    assert "stats" in names and all(r.position == bad_position for r in rows), names
    assert all("NUL" in r.error or "0x00" in r.error for r in rows)
    assert _views(c, video) == 3  # the events after it were applied

    rebuilt = Rebuilder.for_container(c).rebuild("stats", require_identical=True)
    assert rebuilt.position == head and rebuilt.identical
    with c.read_engine.connect() as conn:
        again = [r.position for r in quarantined(conn, "stats")]
    assert again == [bad_position]  # the rebuild tried it again and quarantined it again
    print(f"\nNUL caption at {bad_position}: quarantined by {names}; rebuild stats identical")
    assert bad not in {r.video_id for r in _video_rows(c)}


def _video_rows(c) -> list[sa.Row]:
    with c.read_engine.connect() as conn:
        return conn.execute(sa.select(rm_videos.c.video_id)).all()


def test_system_error_is_never_quarantined(url, container_factory):
    c = container_factory(url)
    _, video = _setup(c)
    c.run_projections_until_idle()
    before = c.head_position
    with c.read_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE rm_videos RENAME TO rm_videos_away"))
    for _ in range(3):
        c.engagement.record(Signal("view", uuid.uuid4(), video, watch_seconds=2.0))
    head = c.head_position

    install_poison_reporting(c.projections)
    c.projections.start()
    try:
        failures = c.projections.group.failures
        _wait(lambda: failures["stats"] >= 2, 30, "stats failing twice")
        with c.read_engine.connect() as conn:
            assert read_position(conn, "stats") == before
            assert conn.execute(sa.select(sa.func.count()).select_from(projection_quarantine)
                                ).scalar_one() == 0  # fmt: skip
        status = {s.name: s for s in projection_status(c.store, c.read_engine, sample_seconds=0)}
        assert status["stats"].last_error and status["stats"].quarantined == 0
        with c.read_engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE rm_videos_away RENAME TO rm_videos"))
        _wait(lambda: c.projections.positions()["stats"] == head, 30, "stats at the head")
    finally:
        c.projections.stop()
    assert _views(c, video) == 3


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValueError("bad"), True),
        (KeyError("k"), True),
        (sa.exc.DataError("INSERT", {}, Exception("NUL")), True),
        (sa.exc.IntegrityError("INSERT", {}, Exception("dup")), True),
        (sa.exc.OperationalError("SELECT", {}, Exception("server closed")), False),
        (sa.exc.ProgrammingError("SELECT", {}, Exception("no such table")), False),
        (sa.exc.InterfaceError("SELECT", {}, Exception("closed")), False),
        (sa.exc.TimeoutError("pool"), False),
        (RuntimeError("?"), False),
        (TimeoutError(), False),
        (AssertionError("a bug"), False),
        (RecursionError(), False),
        (psycopg.errors.CharacterNotInRepertoire("0x00"), True),
        (psycopg.errors.UniqueViolation("dup"), True),
        (psycopg.errors.UndefinedTable("rm_x"), False),
        (psycopg.OperationalError("server closed the connection"), False),
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.IntegrityError("UNIQUE"), True),
    ],
)
def test_what_is_an_events_error_and_what_the_systems(error, expected):
    assert quarantinable(error) is expected


def test_many_quarantines_in_an_hour_stop_the_projection_instead(url, container_factory):
    """A fault of the code (a bad deploy failing on every event of a kind) must stop the
    projection, not skip its events: after MAX_RECENT quarantines within RECENT (counted
    in the table: restarts and rebuilds do not reset it) the next failure is not
    quarantined; the projection reports it and stays before the event."""
    c = container_factory(url)
    _setup(c)
    c.run_projections_until_idle()
    now = datetime.now(UTC)
    with c.read_engine.begin() as conn:
        conn.execute(projection_quarantine.insert(), [
            {"name": "stats", "position": -p, "originator_id": str(uuid.uuid4()),
             "originator_version": 1, "topic": "t", "error": "earlier", "quarantined_at": now}
            for p in range(1, MAX_RECENT + 1)
        ])  # fmt: skip
    before = c.head_position
    topic = get_topic(Engagement.Viewed)
    c.store.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, topic, b"?")])
    install_poison_reporting(c.projections)
    c.projections.start()
    try:
        failures = c.projections.group.failures
        _wait(lambda: failures["stats"] >= 2, 30, "stats failing twice")
    finally:
        c.projections.stop()
    with c.read_engine.connect() as conn:
        assert read_position(conn, "stats") == before
        assert [r.position for r in quarantined(conn, "stats") if r.position > 0] == []
    assert "QuarantineLimit" in (c.projections.runner("stats").last_error or "")


def test_a_reason_quoting_unstorable_text_is_recorded(pg_url, container_factory):
    """The error's text may quote the event's value: a NUL or a lone surrogate in the
    reason must not make recording the quarantine fail (PostgreSQL)."""
    c = container_factory(pg_url)
    _setup(c)
    n = c.store.recorder.select_notifications(start=1, limit=1)[0]
    with c.read_engine.begin() as conn:
        record(conn, "stats", n, ValueError("caption 'x\x00y' and '\ud800'"))
    with c.read_engine.connect() as conn:
        (row,) = quarantined(conn, "stats")
    assert "\\x00" in row.error and "\\ud800" in row.error
