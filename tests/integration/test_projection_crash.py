"""A projection worker killed (SIGKILL) mid-stream and restarted leaves every counter equal
to the recount, and to the read models of a run that never crashed.

Given a store filled with a seeded workload, when a `reelpulse project` worker committing
small batches is killed at several points of its catch-up and finally restarted with
--once, then no event was lost or applied twice: the counters equal a recount from the
event history and a reference built in-process without a crash; and every online model
(issue 5, acceptance 2) made exactly the same predictions, scores and alerts and ends in
exactly the same state as in the run that never crashed.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from psycopg import sql
from support.readmodels import model_outputs, model_states

from adapters.bootstrap import Container, bootstrap
from adapters.readmodel.db import create_read_engine, read_model_url
from adapters.readmodel.recount import recount_check
from adapters.readmodel.tables import (
    projection_tracking,
    rm_creators,
    rm_model_metrics,
    rm_videos,
    rm_virality,
)
from adapters.settings import Settings
from adapters.workload import Workload, WorkloadConfig, drive_application, generate
from projections.recount import CREATOR_COUNTERS, VIDEO_COUNTERS

# ~6000 events; wide ingest windows (fewer, larger batches) only make filling faster.
WORKLOAD = WorkloadConfig(
    seed=11, creators=30, viewers=400, views_per_day=1200, batch_window_seconds=600
)
KILLS = 2
BATCH_SIZE = 50  # many small commits: many points where a kill can land
READY_TIMEOUT = 60.0  # seconds for a worker to reach the next kill point
ONCE_TIMEOUT = 120.0  # seconds for the final `project --once` to catch up and exit
POLL_SECONDS = 0.01


@dataclass
class Worker:
    """`reelpulse project` subprocesses on one store; every one is killed at teardown."""

    url: str
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        env = {
            **os.environ,
            "REELPULSE_DATABASE_URL": self.url,
            "REELPULSE_PROJECTION_BATCH_SIZE": str(BATCH_SIZE),
            "REELPULSE_LOG_LEVEL": "warning",
        }
        with (
            (self.logs / f"worker-{n}.out").open("wb") as out,
            (self.logs / f"worker-{n}.err").open("wb") as err,
        ):
            proc = subprocess.Popen(
                [sys.executable, "-m", "adapters.cli", "project", *args],
                env=env,
                stdout=out,
                stderr=err,
            )
        self.procs.append(proc)
        return proc

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        path = self.logs / f"worker-{self.procs.index(proc)}.err"
        return path.read_text(errors="replace")[-3000:]

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def crash_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"  # read models in store-read.db beside it
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def worker(crash_store_url: str, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(crash_store_url, tmp_path)
    yield w
    w.kill_all()


@pytest.fixture
def read_engine(crash_store_url: str) -> Iterator[sa.Engine]:
    """Our own connection to the read models, to watch the worker's progress."""
    engine = create_read_engine(read_model_url(crash_store_url, None), pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(WORKLOAD)


@pytest.fixture(scope="module")
def reference(workload: Workload) -> dict[str, Any]:
    """The read models of the same workload projected once, in process, with no crash."""
    container = bootstrap(Settings(database_url="memory://"))
    try:
        drive_application(container, workload.commands)
        container.run_projections_until_idle()
        return {"events": stored_event_count(container), **read_models(container.read_engine)}
    finally:
        container.close()


def read_models(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        videos = conn.execute(sa.select(rm_videos.c.video_id, *counters(rm_videos, VIDEO_COUNTERS)))
        creators = conn.execute(
            sa.select(rm_creators.c.creator_id, *counters(rm_creators, CREATOR_COUNTERS))
        )
        tracking = conn.execute(sa.select(projection_tracking.c.name, projection_tracking.c.events))
        # The online model's outputs: predictions are made by a model whose state is
        # checkpointed with the position, so a crashed run must predict exactly the same.
        virality = conn.execute(
            sa.select(rm_virality.c.video_id, rm_virality.c.probability, rm_virality.c.viral)
        )
        model_metrics = conn.execute(sa.select(rm_model_metrics))
        outputs = {  # every model projection's rows (predictions, scores, alerts, factors)
            **model_outputs(engine),
            # and the models themselves: the checkpointed state at the head
            **{f"state:{name}": state for name, state in model_states(engine).items()},
        }
        return {
            "model_outputs": outputs,
            "virality": {row[0]: (row.probability, row.viral) for row in virality},
            "model_metrics": {(r.model, r.metric): (r.value, r.samples) for r in model_metrics},
            "videos": {row[0]: dict(row._mapping) for row in videos},
            "creators": {row[0]: dict(row._mapping) for row in creators},
            "events_applied": {row.name: int(row.events) for row in tracking},
        }


def counters(table: sa.Table, names: tuple[str, ...]) -> list[sa.Column[Any]]:
    return [table.c[name] for name in names]


def positions(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(projection_tracking.c.name, projection_tracking.c.position))
        return {row.name: int(row.position) for row in rows}


def mid_stream(pos: dict[str, int], head: int) -> int:
    """The furthest position of a projection that has started but not reached the head."""
    return max((p for p in pos.values() if 0 < p < head), default=0)


def fill_store(url: str, workload: Workload) -> int:
    container = bootstrap(Settings(database_url=url))
    try:
        stats = drive_application(container, workload.commands)
        assert stats.rejected_fraction < 0.01, stats.summary()
        return container.head_position
    finally:
        container.close()


def kill_mid_stream(
    worker: Worker, engine: sa.Engine, head: int, after: int, target: int
) -> tuple[int, dict[str, int]]:
    """Start a worker, SIGKILL it once a projection is past `target` (and `after`) but not
    at the head; return the furthest mid-stream position it had committed, and all."""
    proc = worker.start()
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"worker exited ({proc.returncode}) before the kill:\n{worker.stderr(proc)}"
            )
        pos = positions(engine)
        if mid_stream(pos, head) > max(after, target):
            os.kill(proc.pid, signal.SIGKILL)
            break
        if any(p >= head for p in pos.values()) and mid_stream(pos, head) == 0:
            pytest.fail(f"the worker reached the head {head} before a kill: {pos}")
        if time.monotonic() > deadline:
            pytest.fail(f"no projection passed {max(after, target)} in {READY_TIMEOUT:g}s: {pos}")
        time.sleep(POLL_SECONDS)  # polling a condition, bounded by the deadline
    assert proc.wait(10) == -signal.SIGKILL
    # What the killed worker had committed: it may have moved on between poll and kill.
    committed = positions(engine)
    return mid_stream(committed, head), committed


def test_killed_projection_worker_resumes_exactly_once(
    crash_store_url: str,
    worker: Worker,
    read_engine: sa.Engine,
    workload: Workload,
    reference: dict[str, Any],
) -> None:
    started = time.perf_counter()
    head = fill_store(crash_store_url, workload)
    filled = time.perf_counter()
    assert head > 20 * BATCH_SIZE, "too few events for mid-stream kills"

    kills: list[dict[str, int]] = []
    last = 0
    for k in range(1, KILLS + 1):
        at, committed = kill_mid_stream(
            worker, read_engine, head, after=last, target=head * k // (KILLS + 1)
        )
        assert 0 < at < head, f"kill {k} was not mid-stream: {committed} (head {head})"
        assert at > last, f"kill {k} at {at} is not past the previous kill at {last}"
        kills.append(committed)
        last = at

    killed = time.perf_counter()
    final = worker.start("--once")
    try:
        code = final.wait(ONCE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`project --once` did not finish in {ONCE_TIMEOUT:g}s")
    assert code == 0, worker.stderr(final)
    caught_up = time.perf_counter()

    container = bootstrap(Settings(database_url=crash_store_url))
    try:
        assert container.head_position == head  # the worker appended nothing
        report = recount_check(container.store, container.content.mapper, container.read_engine)
        assert report.ok, report.mismatches[:10]
        assert report.rows_checked == len(reference["videos"]) + len(reference["creators"])
        # Every stored event scanned once (PostgreSQL positions may have gaps), and the
        # same events as the reference run recorded.
        assert report.events == stored_event_count(container) == reference["events"]
        if crash_store_url.startswith("sqlite"):
            assert report.events == head  # SQLite positions have no gaps
        assert container.projections.positions() == dict.fromkeys(container.projections.names, head)
        crashed = read_models(container.read_engine)
    finally:
        container.close()

    assert crashed["videos"] == reference["videos"]
    assert crashed["creators"] == reference["creators"]
    assert crashed["virality"] == reference["virality"]  # same model state after restarts
    assert crashed["virality"] and crashed["model_metrics"] == reference["model_metrics"]
    for key, rows in reference["model_outputs"].items():  # every online model, exactly
        assert crashed["model_outputs"][key] == rows, f"{key} differs after the kills"
    # Each projection applied each of its events once: batches and tracking commit together.
    assert crashed["events_applied"] == reference["events_applied"]
    print(  # shown with -s: where the kills landed and where the time went
        f"\n{crash_store_url.split(':')[0]}: head {head}; killed at "
        f"{'; '.join(str(k) for k in kills)}; fill {filled - started:.1f}s, "
        f"kills {killed - filled:.1f}s, --once {caught_up - killed:.1f}s, "
        f"checks {time.perf_counter() - caught_up:.1f}s"
    )


def stored_event_count(container: Container) -> int:
    """Rows in the events table, counted in SQL rather than derived from positions."""
    recorder: Any = container.store.recorder
    name = recorder.events_table_name
    schema = getattr(recorder.datastore, "schema", None)  # PostgreSQL only
    with recorder.datastore.transaction(commit=False) as curs:
        if schema:
            table = sql.Identifier(schema, name)
            curs.execute(sql.SQL("SELECT COUNT(*) AS n FROM {}").format(table))
        else:
            curs.execute(f'SELECT COUNT(*) AS n FROM "{name}"')
        return int(curs.fetchone()["n"])
