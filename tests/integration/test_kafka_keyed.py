"""Keyed projections run by Kafka consumer groups build the single-process read models.

Given a PostgreSQL store filled with a seeded workload, its read models built by the
single-process runner (database A), and the store relayed to the Tansu broker (the
projection feeds included, plus a batch the relay "re-published" as after a crash), when
`reelpulse kafka-project` worker processes (each a member of every feed's group) build
the keyed projections into database B from the feeds (two start, a third joins late, one
leaves with SIGTERM mid-stream, one is SIGKILLed mid-stream, the last one finishes alone),
then every table the keyed
projections own holds the same rows in A and B, and B's projection positions (from the
relay's watermarks) reach the store's head, so read-your-writes tokens are met.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient
from support.auth import HEADERS
from support.poison import publish_with_nul
from support.readmodels import group_events, model_outputs

from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.kafka.client import producer
from adapters.kafka.envelope import build_envelope, feed_topic
from adapters.kafka.projection_consumer import (
    FEED_GROUP,
    KafkaProjectionWorker,
    kafka_runs,
    keyed_specs,
)
from adapters.kafka.relay import KeyResolver, Relay
from adapters.projections.quarantine import quarantined
from adapters.projections.rebuild import Rebuilder
from adapters.readmodel.db import create_read_engine, upgrade
from adapters.readmodel.tables import projection_tracking, rm_videos
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from commands.engagement import Signal
from domain.engagement import Engagement

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(300)]

WORKLOAD = WorkloadConfig(
    seed=18, days=3, creators=40, viewers=2000, views_per_day=10_000, batch_window_seconds=900
)
PARTITIONS = 6
BATCH = 150  # events per worker transaction: many transactions, many chances to interleave
SESSION_TIMEOUT_MS = 4_000  # how long the SIGKILLed worker's partitions wait for the group
REPUBLISHED = 400
TIMEOUT = 120.0  # longest wait for any one condition


@dataclass
class Workers:
    """`reelpulse kafka-project` processes on one store and read model; all are killed at
    teardown."""

    env: dict[str, str]
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, feed: str = "all") -> subprocess.Popen[bytes]:
        """A worker process: with `all`, one group member per feed (video, viewer and the
        engagement counters), so a join, a leave or a kill moves every feed's partitions."""
        n = len(self.procs)
        with (self.logs / f"worker-{n}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "adapters.cli", "kafka-project", "--feed", feed],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.logs,  # no stray .env from the repository
            )
        self.procs.append(proc)
        return proc

    def start_relay(self) -> subprocess.Popen[bytes]:
        """`reelpulse relay` following new events (killed at teardown with the workers)."""
        with (self.logs / f"relay-{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "adapters.cli", "relay"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.logs,
            )
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        path = self.logs / f"worker-{self.procs.index(proc)}.log"
        return path.read_text(errors="replace")[-3000:]

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def positions(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(projection_tracking.c.name, projection_tracking.c.position))
        return {r.name: int(r.position) for r in rows}


def on_read_models(settings: Settings, read_url: str) -> Container:
    """A container on the same store and broker, writing the read models at `read_url`."""
    return bootstrap(
        settings.model_copy(update={"read_database_url": read_url, "kafka_projections": False})
    )


def first_difference(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"{x} != {y}"
    return f"{len(a)} rows != {len(b)} rows"


async def republish(settings: Settings, container: Container, count: int) -> None:
    """Send `count` events to the video feed a second time, as a relay restarted after a
    crash between the broker's acks and its tracking write would."""
    keys = KeyResolver(container.store)
    topic = feed_topic(settings.kafka_topic_prefix, "video")
    kafka = producer(settings)
    await kafka.start()
    try:
        notifications = container.store.recorder.select_notifications(start=1, limit=count)
        acks = []
        for n in notifications:
            envelope = build_envelope(n, keys.key(n))
            acks.append(await kafka.send(topic, envelope.to_bytes(), key=envelope.key.encode()))
        await asyncio.gather(*acks)
    finally:
        await kafka.stop()


@pytest.fixture
def store(pg_server: Any, kafka_bootstrap: str, kafka_prefix: str) -> Iterator[Container]:
    with pg_server.fresh_database() as url:
        settings = Settings(
            database_url=url,
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=kafka_prefix,
            kafka_partitions=PARTITIONS,
        )
        container = bootstrap(settings)
        try:
            yield container
        finally:
            container.close()


def test_three_workers_joining_leaving_and_killed_build_the_single_process_read_models(
    store: Container, pg_server: Any, tmp_path: Path
) -> None:
    settings = store.settings
    drive_application(store, generate(WORKLOAD).commands)
    store.projections.run_until_idle()  # database A: the single-process runner
    head = store.head_position
    relayed = asyncio.run(Relay(settings, store.store).run(until_caught_up=True))
    assert relayed.position == head
    asyncio.run(republish(settings, store, REPUBLISHED))

    video = [s.name for s in keyed_specs("video")]
    viewer = [s.name for s in keyed_specs("viewer")]
    assert {"stats", "moderation", "trending"} <= set(video) and viewer == ["sessions"]
    wanted = set().union(*(s.projection.topics for s in keyed_specs("video")))
    expected = sum(
        1 for n in store.store.recorder.select_notifications(start=1, limit=10**7)
        if n.topic in wanted
    )  # fmt: skip
    group = FEED_GROUP.format(feed="video")

    with pg_server.fresh_database() as b_url:
        b = create_read_engine(b_url, writer=True)
        upgrade(b)
        workers = Workers(
            {
                **os.environ,
                "REELPULSE_DATABASE_URL": settings.database_url,
                "REELPULSE_READ_DATABASE_URL": b_url,
                "REELPULSE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
                "REELPULSE_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
                "REELPULSE_KAFKA_PARTITIONS": str(PARTITIONS),
                "REELPULSE_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
                "REELPULSE_PROJECTION_BATCH_SIZE": str(BATCH),
                "REELPULSE_LOG_LEVEL": "warning",
            },
            tmp_path,
        )
        try:
            first, leaving = workers.start(), workers.start()

            def past(fraction: float) -> Callable[[], bool]:
                def check() -> bool:
                    for proc in workers.procs:
                        if proc.returncode is None and proc.poll() is not None:
                            raise AssertionError(f"a worker exited early:\n{workers.log(proc)}")
                    return group_events(b, group) >= fraction * expected

                return check

            wait_for(past(0.10), "the first two workers apply 10 % of the events")
            late = workers.start()  # joins late: the group rebalances
            wait_for(past(0.30), "30 % applied")
            leaving.send_signal(signal.SIGTERM)  # leaves mid-stream: finishes its batch
            assert leaving.wait(30) == 0, workers.log(leaving)
            wait_for(past(0.50), "50 % applied")
            assert group_events(b, group) < expected, "the stream ended before the kill"
            first.kill()  # SIGKILL mid-stream: its partitions wait for the session timeout
            first.wait(10)
            wait_for(
                lambda: all(positions(b).get(n, 0) >= head for n in [*video, *viewer]),
                "every keyed projection's position reaches the head",
            )
            for proc in (late,):
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0, workers.log(proc)
        finally:
            workers.kill_all()

        assert {n: p for n, p in positions(b).items() if n in video + viewer} == dict.fromkeys(
            video + viewer, head
        )
        assert group_events(b, group) == expected  # each event once, the re-published dropped
        keyed = video + viewer
        single, kafka = model_outputs(store.write_engine, keyed), model_outputs(b, keyed)
        assert single.keys() == kafka.keys()
        assert [t for t in single if not single[t]] == [], "the workload leaves these empty"
        differ = {t: first_difference(single[t], kafka[t]) for t in single if single[t] != kafka[t]}
        assert differ == {}, "tables differ (single process != Kafka workers):\n" + "\n".join(
            f"{t}: {d}" for t, d in differ.items()
        )

        # Read-your-writes in Kafka mode: a server that leaves the keyed projections to the
        # workers waits on their rows and meets a token at the head.
        reader = bootstrap(
            Settings(database_url=settings.database_url, read_database_url=b_url,
                     kafka_projections=True)
        )  # fmt: skip
        try:
            assert set(video + viewer) <= set(reader.projections.remote)
            assert not {r.name for r in reader.projections.runners} & set(video + viewer)
            reached = reader.projections.wait_for(head, 5.0, names=video + viewer)
            assert all(reached[n] >= head for n in video + viewer)
        finally:
            reader.close()
        b.dispose()


REBUILT = WorkloadConfig(
    seed=19, days=1, creators=20, viewers=800, views_per_day=8_000, batch_window_seconds=900
)
MORE = WorkloadConfig(
    seed=20, days=1, creators=15, viewers=600, views_per_day=12_000, batch_window_seconds=900
)
LAST = WorkloadConfig(
    seed=21, days=1, creators=3, viewers=50, views_per_day=300, batch_window_seconds=900
)


def test_a_kafka_mode_rebuild_switches_in_while_the_workers_run(
    store: Container, pg_server: Any, tmp_path: Path
) -> None:
    """Given workers that built the video feed's projections to the head, when more events
    arrive (relayed by a following `relay`) while the workers are held (SIGSTOP, between
    batches) and `rebuild_kafka` rebuilds the video feed's projections blue/green to the store's new
    head, then the workers, let go, drop what the switched-in rows hold and go on, and
    after they read past a last few events the tables equal the single-process ones: nothing lost,
    nothing twice."""
    settings = store.settings
    drive_application(store, generate(REBUILT).commands)
    asyncio.run(Relay(settings, store.store).run(until_caught_up=True))
    video = [s.name for s in keyed_specs("video")]
    with pg_server.fresh_database() as b_url:
        b = create_read_engine(b_url, writer=True)
        upgrade(b)
        env = {
            **os.environ,
            "REELPULSE_DATABASE_URL": settings.database_url,
            "REELPULSE_READ_DATABASE_URL": b_url,
            "REELPULSE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
            "REELPULSE_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "REELPULSE_KAFKA_PARTITIONS": str(PARTITIONS),
            "REELPULSE_PROJECTION_BATCH_SIZE": str(BATCH),
            "REELPULSE_LOG_LEVEL": "warning",
        }
        workers = Workers(env, tmp_path)
        try:
            held = [workers.start("video"), workers.start("video")]
            head = store.head_position
            wait_for(lambda: all(positions(b).get(n, 0) >= head for n in video), "first head")
            for proc in held:  # caught up and idle: no batch (no transaction) in flight
                proc.send_signal(signal.SIGSTOP)
            group = FEED_GROUP.format(feed="video")
            applied_before = group_events(b, group)
            workers.start_relay()
            drive_application(store, generate(MORE).commands)
            new_head = store.head_position
            reader = on_read_models(settings, b_url)
            try:
                rebuilder = Rebuilder.for_container(reader)
                rebuilder.kafka = asyncio.run(kafka_runs(reader.settings))
                run = rebuilder.kafka_run("stats")
                assert run is not None and set(run.names) == set(video)
                results = rebuilder.rebuild_kafka(run)
            finally:
                reader.close()
            assert [r.name for r in results] == list(run.names)
            assert [r.position for r in results] == [new_head] * len(results)
            assert all(r.recount is None or r.recount.startswith("ok") for r in results)
            # The held workers applied none of the new events: the switched-in rows are
            # ahead of their offsets, and what they read next is already there.
            assert group_events(b, group) == applied_before
            for proc in held:
                proc.send_signal(signal.SIGCONT)
            # The switch set the positions to new_head already. Events after it, and the
            # relay's watermark markers behind them on every partition, show when the
            # workers have read past everything the rebuild covered.
            drive_application(store, generate(LAST).commands)
            last_head = store.head_position
            wait_for(
                lambda: all(positions(b).get(n, 0) >= last_head for n in video), "the last head"
            )
        finally:
            workers.kill_all()
        store.projections.run_until_idle()
        single, kafka = model_outputs(store.write_engine, video), model_outputs(b, video)
        differ = {t: first_difference(single[t], kafka[t]) for t in single if single[t] != kafka[t]}
        assert differ == {}, "tables differ after the rebuild:\n" + "\n".join(
            f"{t}: {d}" for t, d in differ.items()
        )
        b.dispose()


def test_read_your_writes_over_http_when_kafka_workers_run_the_keyed_projections(
    store: Container, tmp_path: Path
) -> None:
    """Given `serve`'s app with REELPULSE_KAFKA_PROJECTIONS (the keyed projections left to
    Kafka workers), when a command's token is sent with a query before any relay or worker
    runs, then the query times out naming the keyed projections' lag; when a relay and a
    worker run, the same query with the same token sees the command's effect."""
    settings = store.settings.model_copy(
        update={"kafka_projections": True, "consistency_timeout_seconds": 2.0}
    )
    served = bootstrap(settings)
    env = {
        **os.environ,
        "REELPULSE_DATABASE_URL": settings.database_url,
        "REELPULSE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "REELPULSE_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "REELPULSE_KAFKA_PARTITIONS": str(PARTITIONS),
        "REELPULSE_LOG_LEVEL": "warning",
    }
    workers = Workers(env, tmp_path)
    query = "query($id: UUID!) { video(id: $id) { stats { views likes } } }"
    try:
        with TestClient(create_app(served), headers=HEADERS) as client:
            creator = client.post(
                "/v1/creators", json={"handle": "kafkamode", "display_name": "K", "region": "US"}
            ).json()["id"]
            video = client.post(
                "/v1/videos",
                json={"creator_id": creator, "caption": "c", "hashtags": ["#a"],
                      "duration_seconds": 30},
            ).json()["id"]  # fmt: skip
            viewer = str(uuid.uuid4())
            client.post(f"/v1/videos/{video}/views", json={"viewer_id": viewer, "watch_seconds": 3})
            token = client.post(f"/v1/videos/{video}/likes", json={"viewer_id": viewer}).json()[
                "position"
            ]

            def ask() -> dict[str, Any]:
                r = client.post(
                    "/graphql",
                    json={"query": query, "variables": {"id": video}},
                    headers={"X-Consistency-Token": str(token)},
                )
                assert r.status_code == 200, r.text
                return r.json()  # type: ignore[no-any-return]

            early = ask()["errors"][0]["extensions"]
            assert early["code"] == "CONSISTENCY_TIMEOUT"
            assert {"stats", "trending", "sessions"} <= set(early["lag"])  # left to Kafka

            workers.start_relay()
            workers.start()
            deadline = time.monotonic() + TIMEOUT
            while "errors" in (body := ask()):
                assert body["errors"][0]["extensions"]["code"] == "CONSISTENCY_TIMEOUT", body
                assert time.monotonic() < deadline, f"never consistent: {body}"
            assert body["data"]["video"]["stats"] == {"views": 1, "likes": 1}
    finally:
        workers.kill_all()
        served.close()


def test_a_poison_event_is_quarantined_by_kafka_workers_as_by_the_runner(
    store: Container, pg_server: Any
) -> None:
    """Given a NUL caption stored between valid events (and an event nobody can decode),
    when the single-process runner and a Kafka worker of the video feed apply them, then
    both quarantine the same events for the same projections, apply every other event
    (the views after them count) and reach the head."""
    settings = store.settings
    creator = store.content.register_creator(handle="poisoned", display_name="P", region="DE")
    video = store.content.publish_video(
        creator_id=creator.id, caption="", hashtags=["fine"], sound_id=None,
        duration_seconds=30.0,
    ).id  # fmt: skip
    publish_with_nul(store, creator.id)
    bad = store.head_position
    topic = get_topic(Engagement.Liked)
    not_an_event = StoredEvent(uuid.uuid4(), 1, topic, b'{"not": "an event"}')
    store.store.recorder.insert_events([not_an_event])  # JSON, but not a Liked
    undecodable = store.head_position
    for _ in range(3):
        store.engagement.record(Signal("view", uuid.uuid4(), video, watch_seconds=2.0))
    head = store.head_position
    store.projections.run_until_idle()
    asyncio.run(Relay(settings, store.store).run(until_caught_up=True))
    video_names = [s.name for s in keyed_specs("video")]

    def quarantine(engine: sa.Engine) -> set[tuple[str, int]]:
        with engine.connect() as conn:
            return {(r.name, r.position) for r in quarantined(conn) if r.name in video_names}

    with pg_server.fresh_database() as b_url:
        reader = on_read_models(settings, b_url)
        try:
            worker = KafkaProjectionWorker.for_feed(reader, "video")
            asyncio.run(asyncio.wait_for(worker.run(until_idle=True), TIMEOUT))
            found = quarantine(reader.write_engine)
            assert positions(reader.write_engine)["stats"] == head
            with reader.write_engine.connect() as conn:
                views = conn.execute(
                    sa.select(rm_videos.c.views).where(rm_videos.c.video_id == video)
                ).scalar_one()
        finally:
            reader.close()
    expected = quarantine(store.write_engine)
    assert ("stats", bad) in expected and ("stats", undecodable) in expected, expected
    assert found == expected
    assert views == 3
