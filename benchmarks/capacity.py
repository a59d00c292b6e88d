"""Per-core rates of every pipeline stage, for the capacity model of docs/scaling.md.

    .venv/bin/python -m benchmarks.capacity [--events N] [--write-docs]

One PostgreSQL server (benchmarks/env.py: REELPULSE_TEST_DATABASE_URL, else a throwaway
local cluster with fsync and synchronous_commit on) and one Kafka-protocol broker
(tests/support/kafka.py: REELPULSE_TEST_KAFKA_BOOTSTRAP, else a Tansu broker in memory).
Every stage runs alone, in one process, timed by the wall clock and by CPU seconds: the
process's own (`time.process_time`, or /proc/<pid>/stat of a child) and the PostgreSQL
server's (its postmaster's and every backend's, from /proc), plus WAL bytes written
(`pg_current_wal_lsn`). Stages, in order:

  ingest       `EngagementApplication.ingest` (B1's path) in batches of 1000 signals from
               one thread, into a store that holds the workload's creators and videos,
               until the store holds about N events;
  relay        `Relay(settings, store).run(until_caught_up=True)` over a copy of that
               store, with the projection feeds on and, for comparison, off
               (REELPULSE_KAFKA_PROJECTION_FEEDS=false);
  projection   each of `projection_specs()` alone: a `ProjectionGroup` of its one runner
               (as `reelpulse project` runs it) over the store into an empty read
               database, in a child process of its own; then `global`: one group of
               every partition_by="global" projection (trending and the online models),
               what the single-process runner runs beside Kafka workers;
  kafka feed   `python -m adapters.cli kafka-project --feed video|viewer --once`, one
               worker process owning every partition of the feed the relay (feeds on)
               wrote; timed from its first group position to the store's head, read
               from projection_tracking every 50 ms;
  postgres     the server alone: COMMITs/s of one-row transactions (1 and 4 connections)
               and additive upserts/s (`INSERT .. ON CONFLICT DO UPDATE SET n = n + ..`,
               1000 sorted rows per statement and transaction, one connection).

Query rates are not measured here: the table repeats B10's (GraphQL under wrk), and B1's
(the event store with two producers), from the latest run recorded in docs/benchmarks.md,
which names its command.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.core import REPO, console

TICK = os.sysconf("SC_CLK_TCK")
DOCS = REPO / "docs" / "scaling.md"
BENCH_DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- capacity:results:begin -->", "<!-- capacity:results:end -->"
BATCH = 1000
SETTLE = 0.3  # seconds for backends that exited to be reaped (see measured)
FEEDS = ("video", "viewer")  # adapters.kafka.envelope.FEEDS: partition_by of their projections


# -- CPU accounting from /proc ----------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, [11] utime,
    [12] stime, [13] cutime, [14] cstime (clock ticks)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()


def process_cpu(pid: int) -> float:
    """CPU seconds of a live process (its threads included)."""
    f = _stat(pid)
    return (int(f[11]) + int(f[12])) / TICK


def tree_cpu(parent: int) -> float:
    """CPU seconds of `parent`, its reaped children and its live children (a postmaster:
    the whole server, since backends that exited are in its cutime/cstime)."""
    f = _stat(parent)
    total = sum(int(x) for x in f[11:15])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            g = _stat(int(entry.name))
            if int(g[1]) == parent:
                total += int(g[11]) + int(g[12])
    return total / TICK


def children_named(word: str) -> list[int]:
    """Live child processes of this one whose command name contains `word`."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                mine = int(_stat(int(entry.name))[1]) == os.getpid()
                if mine and word in Path(f"/proc/{entry.name}/comm").read_text():
                    out.append(int(entry.name))
    return out


class Pg:
    """The server: its postmaster (for CPU) and one open connection (for the WAL position;
    kept open, so that reading it starts and ends no backend inside a measurement)."""

    def __init__(self, admin_url: str, postmaster: int | None = None) -> None:
        self.conn = psycopg.connect(admin_url, autocommit=True)
        backend = int(self.conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        self.postmaster = postmaster or int(_stat(backend)[1])

    def cpu(self) -> float:
        return tree_cpu(self.postmaster)

    def wal(self) -> int:
        row = self.conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        return int(row[0])  # type: ignore[index]


# -- one measured stage -----------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    what: str
    events: int = 0
    seconds: float = 0.0  # wall
    cpu: float = 0.0  # the stage's process
    pg_cpu: float = 0.0  # the PostgreSQL server
    wal_bytes: int = 0
    other_cpu: float = 0.0  # e.g. the broker
    unit: str = "ev"
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def per_core(self) -> float:
        """Events per CPU second of the stage's own process."""
        return self.events / self.cpu if self.cpu else 0.0

    def row(self) -> list[str]:
        per = lambda s: f"{s / self.events * 1e6:,.0f}" if self.events else "--"  # noqa: E731
        return [
            self.name, self.what, f"{self.events:,}", f"{self.seconds:.2f}",
            f"{self.rate:,.0f}", f"{self.cpu:.2f}", f"{self.per_core:,.0f}",
            per(self.pg_cpu),
            f"{self.events / (self.cpu + self.pg_cpu):,.0f}" if self.cpu + self.pg_cpu else "--",
            f"{self.wal_bytes / self.events:,.0f}" if self.events else "--",
            per(self.other_cpu) if self.other_cpu else "",
        ]  # fmt: skip


HEADERS = ["stage", "what runs", "units", "wall s", "units/s wall", "CPU s",
           "units per CPU-second", "PG CPU µs/unit",
           "units per CPU-second, process + PG", "WAL B/unit", "broker CPU µs/unit"]  # fmt: skip


@contextlib.contextmanager
def measured(stage: Stage, pg: Pg, cpu: Callable[[], float] = time.process_time) -> Iterator[Stage]:
    wal, pg_cpu, own = pg.wal(), pg.cpu(), cpu()
    started = time.perf_counter()
    yield stage
    stage.seconds, stage.cpu = time.perf_counter() - started, cpu() - own
    # Backends that closed at the end exit and are reaped a moment later: between the two
    # reads of tree_cpu (the postmaster's, then its children's) their CPU would be lost.
    time.sleep(SETTLE)
    stage.pg_cpu, stage.wal_bytes = pg.cpu() - pg_cpu, pg.wal() - wal


# -- stages -----------------------------------------------------------------------------------
def fill_and_ingest(srv: Any, pg: Pg, events: int) -> tuple[str, Stage]:
    """A store with the catalog (not timed), then signals ingested until about `events`."""
    from adapters.bootstrap import bootstrap
    from adapters.eventstore import open_shared_store
    from adapters.settings import Settings
    from adapters.workload import drive_application
    from benchmarks.env import workload
    from commands.engagement import EngagementApplication

    catalog, load = workload(views=events, creators=max(200, events // 500))
    name = srv.create()
    url = srv.url(name)
    container = bootstrap(Settings(database_url=url, projections_in_process=False))
    try:
        drive_application(container, catalog)
    finally:
        container.close()
    store = open_shared_store(url)
    app = EngagementApplication(store)
    stage = Stage("ingest", "EngagementApplication.ingest, batches of 1000, 1 thread")
    try:
        start = store.recorder.max_notification_id() or 0
        with measured(stage, pg):
            for i in range(0, len(load.signals), BATCH):
                app.ingest(load.signals[i : i + BATCH])
                if (store.recorder.max_notification_id() or 0) >= events:
                    break
        stage.events = (store.recorder.max_notification_id() or 0) - start
    finally:
        store.factory.close()
    stage.notes.append(f"store: {start:,} catalog events, then {stage.events:,} ingested")
    return name, stage


def relay_stage(srv: Any, pg: Pg, store_db: str, servers: str, feeds: bool) -> tuple[str, Stage]:
    """Relay a copy of the store; returns the copy's name and its topic prefix in .notes."""
    from adapters.eventstore import open_shared_store
    from adapters.kafka.client import ensure_topics
    from adapters.kafka.relay import Relay
    from adapters.settings import Settings

    copy = srv.create(template=store_db)
    prefix = f"cap{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=srv.url(copy), kafka_bootstrap_servers=servers,
        kafka_topic_prefix=prefix, kafka_projection_feeds=feeds,
    )  # fmt: skip
    what = "Relay.run(until_caught_up), feeds " + ("on" if feeds else "off")
    stage = Stage("relay" + ("" if feeds else " (no feeds)"), what)
    asyncio.run(ensure_topics(settings))
    store = open_shared_store(settings.database_url)
    broker = children_named("tansu")
    broker_cpu = lambda: sum(process_cpu(p) for p in broker)  # noqa: E731
    try:
        b0 = broker_cpu()
        with measured(stage, pg):
            stats = asyncio.run(Relay(settings, store).run(until_caught_up=True))
        stage.other_cpu = broker_cpu() - b0
        stage.events = stats.published
    finally:
        store.factory.close()
    stage.notes.append(f"{settings.kafka_partitions} partitions per topic, prefix {prefix}")
    return copy, stage


def projection_stage(srv: Any, pg: Pg, store_url: str, name: str) -> Stage:
    """`name`: one projection, or `global`: every partition_by="global" one in one group."""
    with srv.fresh() as read_url:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.capacity", "--child-projection", name,
             "--store", store_url, "--read", read_url, "--postmaster", str(pg.postmaster)],
            cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"projection {name} failed: {done.stderr[-1500:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    what = (
        f"ProjectionGroup of its runner, partition_by={got['partition_by']}"
        if name != "global"
        else f"ProjectionGroup of the {got['partition_by']} runners (the single-process runner)"
    )
    return Stage(
        f"projection {name}", what, events=got["events"], seconds=got["seconds"],
        cpu=got["cpu"], pg_cpu=got["pg_cpu"], wal_bytes=got["wal"],
    )  # fmt: skip


def child_projection(name: str, store_url: str, read_url: str, postmaster: int) -> None:
    """In a child process: rebuild one projection (or the global ones); print one JSON line."""
    from adapters.eventstore import open_shared_store
    from adapters.projections.group import ProjectionGroup
    from adapters.projections.registry import projection_specs
    from adapters.projections.runner import ProjectionRunner
    from adapters.readmodel.db import create_read_engine, read_model_url, upgrade
    from adapters.runtime import tune_gc
    from benchmarks.rebuild import positions
    from commands.content import ContentApplication

    tune_gc()  # as `reelpulse project` runs
    store = open_shared_store(store_url)
    engine = create_read_engine(read_model_url(store_url, read_url), writer=True)
    upgrade(engine)
    specs = [
        s for s in projection_specs()
        if s.name == name or (name == "global" and s.projection.partition_by == "global")
    ]  # fmt: skip
    mapper = ContentApplication(store).mapper
    head = store.recorder.max_notification_id() or 0
    runners = [ProjectionRunner(spec, store, mapper, engine, batch_size=BATCH) for spec in specs]
    group = ProjectionGroup(runners, store, mapper, lambda: positions(engine), batch_size=BATCH)
    pg = Pg(read_url.split("?")[0], postmaster)
    time.sleep(SETTLE)
    stage = Stage(name, "")
    with measured(stage, pg):
        group.run_until_idle()
    behind = {r.name: r.last_error for r in runners if positions(engine).get(r.name) != head}
    if behind:
        raise RuntimeError(f"short of the head {head}: {behind}")
    engine.dispose()
    store.factory.close()
    partition_by = specs[0].projection.partition_by if len(specs) == 1 else f"{len(specs)} global"
    print(json.dumps({
        "events": head, "seconds": stage.seconds, "cpu": stage.cpu, "pg_cpu": stage.pg_cpu,
        "wal": stage.wal_bytes, "partition_by": partition_by,
    }))  # fmt: skip


def kafka_feed_stage(pg: Pg, db_url: str, servers: str, prefix: str, feed: str) -> Stage:
    """One `kafka-project --feed` worker process over the relayed topics."""
    from adapters.projections.registry import projection_specs

    names = tuple(s.name for s in projection_specs() if s.projection.partition_by == feed)
    env = {
        **os.environ, "REELPULSE_DATABASE_URL": db_url,
        "REELPULSE_KAFKA_BOOTSTRAP_SERVERS": servers, "REELPULSE_KAFKA_TOPIC_PREFIX": prefix,
        "REELPULSE_LOG_LEVEL": "warning",
    }  # fmt: skip
    with psycopg.connect(db_url, autocommit=True) as conn:
        head = int(conn.execute("SELECT max(notification_id) FROM reelpulse_events").fetchone()[0])  # type: ignore[index]
        cmd = [sys.executable, "-m", "adapters.cli", "kafka-project", "--feed", feed, "--once"]
        child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)  # fmt: skip
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(child.stdout or []), daemon=True)
        reader.start()
        stage = Stage(f"kafka --feed {feed}", f"1 kafka-project worker ({', '.join(names)})")
        start: tuple[float, float, float, int, int] | None = (
            None  # wall, cpu, pg cpu, position, wal
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and child.poll() is None:
            rows = conn.execute(
                "SELECT name, position FROM projection_tracking WHERE name = ANY(%s)",
                (list(names),),
            ).fetchall()
            position = min((int(p) for _, p in rows), default=0) if len(rows) == len(names) else 0
            now = time.perf_counter()
            if start is None and position > 0:
                start = (now, process_cpu(child.pid), pg.cpu(), position, pg.wal())
            if start is not None and position >= head:
                stage.seconds, stage.cpu = now - start[0], process_cpu(child.pid) - start[1]
                stage.pg_cpu, stage.events = pg.cpu() - start[2], head - start[3]
                stage.wal_bytes = pg.wal() - start[4]
                break
            time.sleep(0.05)
        child.wait(120)
        reader.join(5)
    if not stage.events:
        raise RuntimeError(f"kafka-project --feed {feed} did not reach {head}: {''.join(output)}")
    stage.notes.append(f"timed from group position {start[3]:,} to the head {head:,}")  # type: ignore[index]
    return stage


def commit_rate(pg: Pg, url: str, connections: int, seconds: float = 3.0) -> Stage:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS commit_probe (id bigserial, v bigint)")
    counts = [0] * connections

    def loop(i: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                conn.execute("INSERT INTO commit_probe (v) VALUES (%s)", (i,), prepare=True)
                counts[i] += 1

    stage = Stage(f"pg commits, {connections} conn", "INSERT one row + COMMIT", unit="commit")
    with measured(stage, pg):
        threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    stage.events = sum(counts)
    return stage


def upsert_rate(pg: Pg, url: str, seconds: float = 3.0, keys: int = 50_000) -> Stage:
    import random

    rng = random.Random(7)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE upsert_probe (k bigint PRIMARY KEY, n bigint NOT NULL)")
        stage = Stage("pg upserts, 1 conn", "1000 sorted additive upserts per COMMIT", unit="row")
        rows = 0
        with measured(stage, pg):
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                batch = sorted(set(rng.randrange(keys) for _ in range(BATCH)))
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO upsert_probe (k, n) SELECT * FROM unnest(%s::bigint[], "
                        "%s::bigint[]) ON CONFLICT (k) DO UPDATE SET n = upsert_probe.n + "
                        "excluded.n", (batch, [1] * len(batch)), prepare=True,
                    )  # fmt: skip
                rows += len(batch)
        stage.events = rows
    return stage


# -- queries: B10 from docs/benchmarks.md ----------------------------------------------------------
def recorded_queries() -> tuple[list[str], str]:
    text = BENCH_DOCS.read_text() if BENCH_DOCS.exists() else ""
    section = text.split("<!-- bench:results:begin -->")[-1]
    stamp = re.search(r"### Latest run \(([^)]*)\)", section)
    command = re.search(r"\$ (.+)", section)
    rows = [line for line in section.splitlines() if line.startswith(("| B1 |", "| B10 |"))]
    where = (
        f"docs/benchmarks.md, latest run ({stamp.group(1) if stamp else '?'}): "
        f"`{command.group(1) if command else '?'}`"
    )
    return rows, where


# -- the report ---------------------------------------------------------------------------------
def markdown(stages: list[Stage], facts: str, command: str, seconds: float) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"### Measured {stamp} ({seconds / 60:.1f} min)", "", f"```\n$ {command}\n```", "",
             f"Machine: {facts}", "", "| " + " | ".join(HEADERS) + " |",
             "|---|---|" + "---:|" * (len(HEADERS) - 2)]  # fmt: skip
    lines += ["| " + " | ".join(s.row()) + " |" for s in stages]
    notes = [f"- {s.name}: {n}" for s in stages for n in s.notes]
    queries, where = recorded_queries()
    lines += [
        "",
        *notes,
        "",
        f"Event store with 2 producers and queries (not measured by this command; from {where}):",
        "",
    ]
    header = ["| id | measure | figure | baseline | ratio | target | met |",
              "|---|---|---:|---:|---:|---|---|"]  # fmt: skip
    lines += [*header, *queries] if queries else ["(none recorded)"]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = DOCS.read_text() if DOCS.exists() else "# Scaling\n"
    section = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + section + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section + "\n"
    DOCS.write_text(doc)


def run(args: argparse.Namespace) -> tuple[list[Stage], str]:
    from adapters.projections.registry import projection_specs
    from benchmarks.env import server
    from benchmarks.kafka_relay import broker

    stages: list[Stage] = []

    def done(stage: Stage) -> Stage:
        console.print(f"{stage.name:<32} {stage.events:>9,} {stage.unit} {stage.rate:>10,.0f}/s "
                      f"wall, {stage.per_core:>10,.0f} per CPU-second")  # fmt: skip
        stages.append(stage)
        return stage

    with server() as srv, broker(args.bootstrap) as servers:
        pg = Pg(srv.admin_url)
        store_db, ingest = fill_and_ingest(srv, pg, args.events)
        done(ingest)
        fed_db, relay = relay_stage(srv, pg, store_db, servers, feeds=True)
        done(relay)
        plain_db, plain = relay_stage(srv, pg, store_db, servers, feeds=False)
        done(plain)
        srv.drop(plain_db)
        prefix = relay.notes[-1].rsplit(" ", 1)[1]
        for name in [spec.name for spec in projection_specs()] + ["global"]:
            done(projection_stage(srv, pg, srv.url(store_db), name))
        for feed in FEEDS:
            done(kafka_feed_stage(pg, srv.url(fed_db), servers, prefix, feed))
        with srv.fresh() as probe:
            for connections in (1, 4):
                done(commit_rate(pg, probe, connections))
            done(upsert_rate(pg, probe))
        srv.drop(fed_db)
        srv.drop(store_db)
        pg.conn.close()
        facts = machine(srv.version)
    return stages, facts


def machine(server_version: str) -> str:
    from benchmarks.core import machine_facts

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return (
        f"commit {head}{' with uncommitted changes' if dirty else ''}; "
        + machine_facts(server_version)
        + "; broker: "
        + (os.environ.get("REELPULSE_TEST_KAFKA_BOOTSTRAP") or "Tansu (in memory), same machine")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.capacity", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--events", type=int, default=100_000, help="events in the store")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: see above)")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS.name}")
    parser.add_argument("--child-projection", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--read", help=argparse.SUPPRESS)
    parser.add_argument("--postmaster", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_projection:
        child_projection(args.child_projection, args.store, args.read, args.postmaster)
        return
    started = time.perf_counter()
    stages, facts = run(args)
    command = "python -m benchmarks.capacity" + " ".join(
        [""] + [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write-docs"]
    )
    text = markdown(stages, facts, command, time.perf_counter() - started)
    print(text)
    if args.write_docs:
        write_docs(text)
        console.print(f"wrote {DOCS.relative_to(REPO)}")
    console.print(f"capacity: {len(stages)} stages in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
