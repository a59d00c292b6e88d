"""The projection rebuild tool (issue 6): blue/green and in-place rebuilds, resumption
after kill -9, and the admin HTTP endpoints.

Given a store filled by the seeded workload generator and every projection caught up,
when projections are rebuilt blue/green, then every rebuilt read model equals the live
one (row counts and checksums over every owned row), the stats counters equal a recount,
and queries answered correctly throughout. A rebuild killed with SIGKILL resumes from its
own tracked position to the same result.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS
from typer.testing import CliRunner

from adapters.bootstrap import Container, bootstrap
from adapters.cli_projections import app as projections_cli
from adapters.http.app import create_app
from adapters.http.routes_admin import router as admin_router
from adapters.projections.rebuild import Rebuilder, owned_checksums, shadow_positions
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate

# ~3600 events; bursts and waves so that alerts and cases exist. Wide ingest windows only
# make filling faster.
WORKLOAD = WorkloadConfig(
    seed=3, creators=20, viewers=300, views_per_day=1500, bot_bursts=1, report_waves=3,
    batch_window_seconds=600,
)  # fmt: skip
QUERY = "{ summary { videos views openCases } trending(kind: HASHTAG, window: DAY, first: 5) { key score } }"  # noqa: E501
KILL_BATCH = 10  # small commits in the killed rebuild: many points where the kill can land
DEADLINE = 120.0


def fill(url: str) -> Container:
    container = bootstrap(Settings(database_url=url))
    stats = drive_application(container, generate(WORKLOAD).commands)
    assert stats.rejected_fraction < 0.01, stats.summary()
    container.run_projections_until_idle()
    return container


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filled, caught-up SQLite store and read-model file, copied by each test."""
    directory = tmp_path_factory.mktemp("template")
    fill(f"sqlite:///{directory}/store.db").close()
    return directory


@pytest.fixture
def sqlite_url(template: Path, tmp_path: Path) -> str:
    for f in template.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture
def container(sqlite_url: str) -> Iterator[Container]:
    c = bootstrap(Settings(database_url=sqlite_url))
    yield c
    c.close()


def all_checksums(c: Container) -> dict[str, Any]:
    return {name: owned_checksums(c.write_engine, name) for name in c.projections.names}


class Reader(threading.Thread):
    """Queries the GraphQL API in a loop; records every error or empty answer."""

    def __init__(self, client: TestClient) -> None:
        super().__init__(daemon=True)
        self.client, self.stop, self.queries, self.problems = client, threading.Event(), 0, []

    def run(self) -> None:
        while not self.stop.is_set():
            r = self.client.post("/graphql", json={"query": QUERY})
            body = r.json() if r.status_code == 200 else {"status": r.status_code}
            data = body.get("data") or {}
            if body.get("errors") or r.status_code != 200:
                self.problems.append(body)
            elif not data["summary"]["views"] or not data["trending"]:
                self.problems.append(data)
            self.queries += 1
            self.stop.wait(0.02)  # a steady trickle of queries, not a busy loop


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_blue_green_rebuild_of_every_projection_equals_live_while_queries_answer(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    c = bootstrap(Settings(database_url=url)) if backend == "sqlite" else fill(url)
    try:
        before = all_checksums(c)
        c.projections.start()  # live runners in this process (paused on switch); no alert actions
        reader = Reader(TestClient(create_app(c, run_background=False), headers=HEADERS))
        reader.start()
        try:
            results = [Rebuilder.for_container(c).rebuild(name) for name in c.projections.names]
        finally:
            reader.stop.set()
            reader.join(30)

        assert all(r.identical for r in results), [r.summary() for r in results if not r.identical]
        assert next(r for r in results if r.name == "stats").recount is not None
        assert all_checksums(c) == before
        assert c.projections.positions() == dict.fromkeys(c.projections.names, c.head_position)
        assert shadow_positions(c.write_engine, c.projections.names) == {}  # shadows dropped
        assert reader.queries >= 10 and not reader.problems, reader.problems[:3]
    finally:
        c.close()


def settle(c: Container) -> tuple[int, int]:
    """Run what writes in reaction to the log (the moderation policy, the alert actions:
    an alert's auto_flag opens a case) until it writes nothing more, the live projections
    reaching the head each time; the head then. Left in background threads, they could
    write after the head was read, and the live checksums would miss what the reference,
    built later from the whole log, has (seen once in CI: one auto-flagged case). Returns
    the head and how many alert actions were carried out."""
    acted = 0
    for _ in range(20):
        head = c.head_position
        reached = c.projections.wait_for(head, timeout=DEADLINE)
        assert all(p >= head for p in reached.values()), reached
        for follower in c.followers:
            follower.run_until_idle()
        if c.alert_worker is not None:
            acted += c.alert_worker.run_until_idle()
        if c.head_position == head:
            return head, acted
    raise AssertionError("the reactions to the log kept writing")


def test_live_writes_during_a_rebuild_are_caught_up_and_kept(tmp_path: Path) -> None:
    """The live version moves on while the shadow builds; after the switch the live
    runners carry on, and the result equals a reference built from scratch."""
    commands = generate(WORKLOAD).commands
    split = len(commands) * 3 // 4
    c = bootstrap(Settings(database_url=f"sqlite:///{tmp_path}/store.db"))
    try:
        drive_application(c, commands[:split])
        c.run_projections_until_idle()
        c.projections.start()  # the live runners; the reactions run in settle()
        writer = threading.Thread(target=drive_application, args=(c, commands[split:]))
        writer.start()
        results = [Rebuilder.for_container(c).rebuild(n) for n in ("stats", "virality")]
        writer.join(DEADLINE)
        assert not writer.is_alive()
        _, acted = settle(c)
        assert acted > 0  # the workload's alerts flag and escalate: the reactions are in
        assert results[0].recount is not None
        live = all_checksums(c)
    finally:
        c.close()
    reference = bootstrap(Settings(
        database_url=f"sqlite:///{tmp_path}/store.db",
        read_database_url=f"sqlite:///{tmp_path}/reference.db",
    ))  # fmt: skip
    try:
        reference.run_projections_until_idle()
        assert all_checksums(reference) == live
    finally:
        reference.close()


def _kill_mid_rebuild(
    cmd: list[str], env: dict[str, str], probe: Container, head: int, err: Path
) -> int | None:
    """Start the rebuild, freeze it (SIGSTOP) once its shadow passed a third of the head,
    and SIGKILL it if the frozen shadow is still mid-way: its position, else None."""
    with err.open("wb") as log:
        proc = subprocess.Popen([*cmd, "--batch-size", str(KILL_BATCH)], env=env, stderr=log)
    deadline = time.monotonic() + DEADLINE
    while not head // 3 < shadow_positions(probe.write_engine, ["virality"]).get("virality", 0):
        if proc.poll() is not None:
            assert proc.returncode == 0, err.read_text()[-2000:]
            return None  # finished between two polls
        assert time.monotonic() < deadline, "the rebuild never got a third of the way"
        time.sleep(0.02)  # polling a condition, bounded by the deadline
    os.kill(proc.pid, signal.SIGSTOP)  # frozen: it commits nothing more
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # Read once it is gone (a frozen process may hold SQLite's lock, and the position
    # read as 0 then): the kill left what was committed when it froze.
    frozen = shadow_positions(probe.write_engine, ["virality"]).get("virality")
    if not frozen:
        return None  # it was already switching: the shadow is gone
    if frozen >= head:  # complete, being verified: finish it so the next try starts afresh
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=DEADLINE)
        assert done.returncode == 0, done.stderr[-2000:]
        return None
    return frozen


def test_killed_rebuild_resumes_to_the_same_result(sqlite_url: str, tmp_path: Path) -> None:
    c = bootstrap(Settings(database_url=sqlite_url))
    try:
        before, head, names = all_checksums(c), c.head_position, c.projections.names
    finally:
        c.close()
    env = {**os.environ, "REELPULSE_DATABASE_URL": sqlite_url, "REELPULSE_LOG_LEVEL": "warning"}
    # virality: a model projection, so the shadow's checkpoint must resume with its position
    cmd = [sys.executable, "-m", "adapters.cli_projections", "rebuild", "virality"]
    probe = bootstrap(Settings(database_url=sqlite_url))
    try:
        killed_at = None
        for attempt in range(3):  # a kill that lands after the switch proves nothing: again
            killed_at = _kill_mid_rebuild(cmd, env, probe, head, tmp_path / f"killed{attempt}.err")
            if killed_at is not None:
                break
        assert killed_at is not None, "three rebuilds all finished before the kill could land"
        assert 0 < killed_at < head
        assert all_checksums(probe) == before  # the live version never saw the rebuild
    finally:
        probe.close()

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed from {killed_at}" in done.stderr
    assert "identical to the live version" in done.stderr
    c = bootstrap(Settings(database_url=sqlite_url))
    try:
        assert all_checksums(c) == before
        assert shadow_positions(c.write_engine, names) == {}
    finally:
        c.close()


def test_in_place_rebuild_and_cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELPULSE_DATABASE_URL", sqlite_url)
    c = bootstrap(Settings(database_url=sqlite_url))
    try:
        before = all_checksums(c)
    finally:
        c.close()
    cli = CliRunner()
    result = cli.invoke(projections_cli, ["rebuild", "sessions", "stats", "--in-place"])
    assert result.exit_code == 0, result.output
    assert "stats: in-place rebuild" in result.output and "recount ok" in result.output
    assert "rebuilt 2 projection(s) (in place)" in result.output
    c = bootstrap(Settings(database_url=sqlite_url))
    try:
        assert all_checksums(c) == before
    finally:
        c.close()

    unknown = cli.invoke(projections_cli, ["rebuild", "nope"])
    assert unknown.exit_code == 2 and "unknown projection nope" in unknown.output
    assert "Traceback" not in unknown.output
    assert cli.invoke(projections_cli, ["rebuild"]).exit_code == 2
    status = cli.invoke(projections_cli, ["status", "--sample", "0", "--json"])
    assert status.exit_code == 0, status.output
    assert '"lag": 0' in status.output and '"name": "recommendations"' in status.output


def test_admin_http_endpoints(container: Container) -> None:
    app = create_app(container, run_background=False)
    app.include_router(admin_router)
    client = TestClient(app, headers=HEADERS)
    before = all_checksums(container)

    status = client.get("/v1/admin/projections", params={"sample_seconds": 0})
    assert status.status_code == 200
    rows = {p["name"]: p for p in status.json()["projections"]}
    assert set(rows) == set(container.projections.names)
    assert all(p["lag"] == 0 and p["position"] == container.head_position for p in rows.values())

    missing = client.post("/v1/admin/projections/nope/rebuild")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_projection"
    assert client.get("/v1/admin/rebuilds/nope").status_code == 404
    assert client.get("/v1/admin/projections", params={"sample_seconds": -1}).status_code == 422

    with Rebuilder.for_container(container).hold("trending"):  # as another process would
        busy = client.post("/v1/admin/projections/trending/rebuild")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "rebuild_running"

    started = client.post("/v1/admin/projections/trending/rebuild")
    assert started.status_code == 202, started.text
    job = started.json()
    assert started.headers["location"] == f"/v1/admin/rebuilds/{job['id']}"
    deadline = time.monotonic() + DEADLINE
    while job["status"] == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)  # polling the job, bounded by the deadline
        job = client.get(f"/v1/admin/rebuilds/{job['id']}").json()
    assert job["status"] == "succeeded", job
    (result,) = job["results"]
    assert result["identical"] is True and result["position"] == container.head_position
    assert all(t["identical"] for t in result["tables"])
    assert all_checksums(container) == before
