"""B12, keyed projections scaled out: 2 Kafka worker processes against 1 (issue 18).

The store: a copy of the template (the workload's creators and videos) with the signals of
the same seeded workload at STORE_FACTOR times the scale's views per day ingested into
it, relayed once (`Relay.run(until_caught_up=True)`) to a Kafka-protocol broker (a Tansu
broker started here, or REELPULSE_TEST_KAFKA_BOOTSTRAP's) in topics of PARTITIONS
partitions: every event on `<prefix>.feed.video.v1` with the relay's watermark markers.

A run: N `reelpulse kafka-project --feed video` processes (`python -m adapters.cli`), one
fresh consumer group, a fresh read-model database (Alembic-migrated before the clock
starts), applying the `stats`, `moderation` and `trending` projections until the group's position in
`projection_tracking` reaches the store's head. Every POLL seconds the benchmark reads
the events applied so far (the sum of `kafka_offsets.events`) and the backends waiting on
a lock (`pg_stat_activity`). The rate is the steady state: the events applied between
the first poll at WINDOW[0] of the events the projections read and the first at
WINDOW[1], over that time, so the processes' start, the group's first rebalance and the
tail (the last partitions alone) are left out. At the window's edges and at the start and
end of the run it reads the CPU seconds (/proc, user + system, children included) of the
broker process, the PostgreSQL server (postmaster and every backend) and the workers.

1 and 2 workers alternate, `--repeat` rounds, the order rotating; medians compared.
Baseline: 1 worker; figure: 2 workers; target: ratio >= TARGET.
"""

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from uuid import uuid4

import psycopg

from adapters.eventstore import open_shared_store
from adapters.kafka.projection_consumer import keyed_specs
from adapters.kafka.relay import Relay
from adapters.readmodel.db import create_read_engine, upgrade
from adapters.settings import Settings
from benchmarks.context import Context
from benchmarks.core import REPO, Row, console, interleave, tests_on_path
from benchmarks.env import Server, workload
from benchmarks.ingest import EVENTS_TABLE, ingest_in_process, read_head

STORE_FACTOR = 2  # the store's signals: the workload at this many times the scale's views
PARTITIONS = 6
WORKERS = (1, 2)  # baseline, figure
TARGET = 1.5
WINDOW = (0.1, 0.9)  # of the events applied: the steady state measured
POLL = 0.05  # seconds between polls of the read-model database
START_ATTEMPTS = 4  # a run whose worker failed to start is done again from scratch
RUN_LIMIT = 90.0  # seconds a run may take before it is reported as stuck
GROUPS = ("workers", "PostgreSQL", "broker")
# The machine's busy CPU less the three: this poller and whatever else runs meanwhile.
OTHER = "rest of the machine"
SHOWN = (*GROUPS, OTHER)
TICK = os.sysconf("SC_CLK_TCK")
PROGRESS = """
SELECT (SELECT coalesce(sum(events), 0) FROM kafka_offsets WHERE consumer_group = %(group)s),
       (SELECT count(*) FROM projection_tracking WHERE position >= %(head)s),
       (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock')
"""


# -- CPU seconds from /proc ---------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone (or not on this machine)
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                listed = Path(f"/proc/{pid}/task/{task}/children").read_text()
                out += [int(c) for c in listed.split()]
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants, living or exited:
    an exited child's time is in its parent's cutime/cstime once reaped."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    own = sum(int(x) for x in fields[11:15]) / TICK  # utime, stime, cutime, cstime
    return own + sum(tree_cpu(c) for c in _children(pid))


def machine_busy() -> float:
    """CPU seconds every CPU of the machine spent busy (not idle nor waiting on I/O)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK


def spent(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """CPU seconds between two readings, per group and for the rest of the machine."""
    out = {g: b[g] - a[g] for g in GROUPS}
    out[OTHER] = max(0.0, b["machine"] - a["machine"] - sum(out.values()))
    return out


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def broker_pid(bootstrap: str) -> int | None:
    """The broker process, when it is a child of this process (tests/support/kafka.py)."""
    port = bootstrap.rsplit(":", 1)[-1]
    for pid in _children(os.getpid()):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "broker" in cmdline and f":{port}" in cmdline:
                return pid
    return None


class StartFailed(Exception):
    """A worker process exited before the measured window began."""


# -- runs -----------------------------------------------------------------------------------
@dataclass
class Run:
    workers: int
    rate: float  # events/s applied in the window
    window: float  # seconds
    cpu: dict[str, float]  # CPU seconds in the window, per group
    run_cpu: dict[str, float]  # CPU seconds from the workers' start to the head
    seconds: float  # from the workers' start until the group's position was the head
    first: float  # seconds until the first event was applied
    lock_waits: float  # backends waiting on a lock, mean over the window's polls
    stall: float  # longest time in the window without an event applied (a rebalance)
    applied: int

    def cores(self, group: str) -> float:
        return self.cpu[group] / self.window

    def per_event(self, group: str) -> float:
        """CPU microseconds per event applied in the window."""
        return self.cpu[group] / (self.rate * self.window) * 1e6


@dataclass
class Scaling:
    srv: Server
    store_url: str
    head: int
    expected: int  # events the projections read (their topics): what the workers apply
    bootstrap: str
    prefix: str
    pids: dict[str, int | None]  # postmaster, broker
    logs: Path
    runs: dict[int, list[Run]] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)  # runs done again: a failed start

    def cpu(self, workers: list[subprocess.Popen[bytes]]) -> dict[str, float]:
        return {
            "workers": sum(tree_cpu(p.pid) for p in workers),
            "PostgreSQL": tree_cpu(self.pids["PostgreSQL"] or 0),
            "broker": tree_cpu(self.pids["broker"] or 0),
            "machine": machine_busy(),
        }

    def run(self, n: int) -> float:
        """Events/s applied by n worker processes in the steady-state window. A run in which
        a worker failed to start is done again from scratch (up to START_ATTEMPTS times),
        and the row says so: it would measure fewer workers than it names."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                got = self.attempt(n)
            except StartFailed as e:
                self.restarts.append(f"{n} worker(s), attempt {attempt}: {e}")
                if attempt == START_ATTEMPTS:
                    raise
                continue
            self.runs.setdefault(n, []).append(got)
            return got.rate
        raise AssertionError("unreachable")

    def attempt(self, n: int) -> Run:
        name = self.srv.create()
        read_url = self.srv.url(name)
        try:
            engine = create_read_engine(read_url, writer=True)
            upgrade(engine)
            engine.dispose()
            return self.measure(n, read_url, f"b12-{n}w-{uuid4().hex[:8]}")
        finally:
            self.srv.drop(name)

    def check_started(self, workers: list[subprocess.Popen[bytes]], group: str) -> None:
        for i, w in enumerate(workers):
            if w.poll() is not None:
                log = (self.logs / f"{group}-{i}.log").read_text(errors="replace").strip()
                last = log.splitlines()[-1][-200:] if log else ""
                raise StartFailed(f"worker {i} exited {w.returncode} at start ({last})")

    def spawn(self, i: int, read_url: str, group: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "REELPULSE_DATABASE_URL": self.store_url,
               "REELPULSE_READ_DATABASE_URL": read_url,
               "REELPULSE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
               "REELPULSE_KAFKA_TOPIC_PREFIX": self.prefix,
               "REELPULSE_KAFKA_PARTITIONS": str(PARTITIONS),
               "REELPULSE_LOG_LEVEL": "warning"}  # fmt: skip
        command = [sys.executable, "-m", "adapters.cli", "kafka-project", "--feed", "video",
                   "--group", group]  # fmt: skip
        with (self.logs / f"{group}-{i}.log").open("wb") as log:
            return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=log)  # fmt: skip

    def measure(self, n: int, read_url: str, group: str) -> Run:
        lo, hi = (math.ceil(f * self.expected) for f in WINDOW)
        specs = len(keyed_specs("video"))
        marks: dict[str, tuple[float, int, dict[str, float]]] = {}
        waits: list[int] = []
        first = last_change = None
        stall = 0.0
        previous = 0
        with psycopg.connect(read_url, autocommit=True) as conn:
            before = self.cpu([])
            started = time.perf_counter()
            workers = [self.spawn(i, read_url, group) for i in range(n)]
            try:
                while True:
                    row = conn.execute(PROGRESS, {"group": group, "head": self.head}).fetchone()
                    applied, at_head, locked = (int(x) for x in row)  # type: ignore[union-attr]
                    now = time.perf_counter()
                    if first is None and applied:
                        first = now - started
                    for mark, threshold in (("lo", lo), ("hi", hi)):
                        if mark not in marks and applied >= threshold:
                            marks[mark] = (now, applied, self.cpu(workers))
                            last_change = now
                    if "lo" in marks and "hi" not in marks:
                        waits.append(locked)
                        if applied > previous:
                            last_change = now
                        stall = max(stall, now - (last_change or now))
                    previous = applied
                    if at_head == specs:
                        end = (now, applied, self.cpu(workers))
                        break
                    if "lo" not in marks:
                        self.check_started(workers, group)
                    self.check(workers, group, now - started, conn)
                    time.sleep(POLL)  # polling the read model; bounded by RUN_LIMIT
            finally:
                for w in workers:
                    w.terminate()
                for w in workers:
                    w.wait(30)
        (t0, e0, c0), (t1, e1, c1) = marks["lo"], marks["hi"]
        window = max(t1 - t0, POLL)  # tiny stores: both edges may fall in one batch
        run = Run(n, (e1 - e0) / window, window, spent(c0, c1), spent(before, end[2]),
                  end[0] - started, first or 0.0, sum(waits) / max(len(waits), 1), stall,
                  end[1])  # fmt: skip
        split = ", ".join(f"{g} {run.cores(g):.2f}" for g in SHOWN)
        console.print(f"  B12 {n} worker(s): {run.rate:,.0f} ev/s over {window:.1f} s; "
                      f"cores {split}; head after {run.seconds:.1f} s")  # fmt: skip
        return run

    def check(self, workers: list[subprocess.Popen[bytes]], group: str, seconds: float,
              conn: psycopg.Connection) -> None:  # fmt: skip
        """Fail the run, saying where it stands, when a worker died or it is stuck."""
        dead = [w for w in workers if w.poll() is not None]
        if not dead and seconds <= RUN_LIMIT:
            return
        offsets = conn.execute(
            "SELECT partition, next_offset, events, complete_through FROM kafka_offsets "
            "WHERE consumer_group = %s ORDER BY partition", (group,)).fetchall()  # fmt: skip
        tracking = conn.execute("SELECT name, position FROM projection_tracking").fetchall()
        logs = "; ".join(
            f"worker {i} ({'exit ' + str(w.returncode) if w.poll() is not None else 'running'}):"
            f" {(self.logs / f'{group}-{i}.log').read_text(errors='replace')[-800:]}"
            for i, w in enumerate(workers)
        )
        what = "a worker exited" if dead else f"not at the head after {RUN_LIMIT:.0f} s"
        raise RuntimeError(
            f"{len(workers)} worker(s): {what}; head {self.head}; kafka_offsets (partition, "
            f"next offset, events, complete through) {offsets}; projection_tracking "
            f"{tracking}; {logs}"
        )


# -- the store, the broker and the row ----------------------------------------------------
def expected_events(url: str) -> int:
    """Events of the topics the video feed's projections read: what the workers apply."""
    topics = sorted(set().union(*(s.projection.topics for s in keyed_specs("video"))))
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE topic = ANY(%s)",
                           (topics,)).fetchone()  # fmt: skip
        return int(row[0])  # type: ignore[index]


def relay(url: str, bootstrap: str, prefix: str) -> float:
    """Relay the whole store once; seconds taken."""
    settings = Settings(database_url=url, kafka_bootstrap_servers=bootstrap,
                        kafka_topic_prefix=prefix, kafka_partitions=PARTITIONS)  # fmt: skip
    store = open_shared_store(url)
    try:
        started = time.perf_counter()
        asyncio.run(Relay(settings, store).run(until_caught_up=True))
        return time.perf_counter() - started
    finally:
        store.factory.close()


@contextlib.contextmanager
def broker() -> Iterator[str]:
    tests_on_path()
    from support.kafka import kafka_broker  # REELPULSE_TEST_KAFKA_BOOTSTRAP's, or Tansu

    with kafka_broker() as servers:
        yield servers


def postmaster(url: str) -> int | None:
    with psycopg.connect(url) as conn:
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
    return parent_of(backend)


def b12(ctx: Context) -> list[Row]:
    s = ctx.scale
    _, work = workload(s.views * STORE_FACTOR, s.creators)
    with (
        ctx.srv.fresh(ctx.template) as url,
        broker() as bootstrap,
        tempfile.TemporaryDirectory(prefix="reelpulse-b12-") as logs,
    ):
        ingest_in_process(url, work.signals)
        with psycopg.connect(url) as conn:
            head = read_head(conn)
        prefix = f"b12x{uuid4().hex[:8]}"
        relayed = relay(url, bootstrap, prefix)
        console.print(f"  B12 store: {head:,} events, relayed in {relayed:.1f} s")
        bench = Scaling(ctx.srv, url, head, expected_events(url), bootstrap, prefix,
                        {"PostgreSQL": postmaster(url), "broker": broker_pid(bootstrap)},
                        Path(logs))  # fmt: skip
        one, two = WORKERS
        got = interleave({f"{one} worker": lambda: bench.run(one),
                          f"{two} workers": lambda: bench.run(two)}, ctx.repeat, "B12")  # fmt: skip
    r = Row("B12", f"keyed projections from Kafka (stats, moderation, trending), {two} worker "
            f"processes vs {one}, {bench.expected:,} events applied, {PARTITIONS} partitions "
            "(events/s)",
            "ev/s", f">= {TARGET}x", got[f"{two} workers"], got[f"{one} worker"])  # fmt: skip
    r.ratio = r.figure / r.baseline if r.baseline else None
    r.met = r.ratio is not None and r.ratio >= TARGET
    r.notes += [describe(bench, n) for n in WORKERS]
    r.notes += [f"run done again (a worker failed to start): {x}" for x in bench.restarts]
    wrong = sorted({(n, run.applied) for n, runs in bench.runs.items() for run in runs
                    if run.applied != bench.expected})  # fmt: skip
    if wrong:
        r.met = False
        r.notes += [f"not met: a run of {n} worker(s) applied {a:,} events of "
                    f"{bench.expected:,} (lost or applied twice)" for n, a in wrong]  # fmt: skip
    r.notes.append(
        f"rate: events applied (sum of kafka_offsets.events, polled every {POLL * 1000:.0f} ms) "
        f"from {WINDOW[0]:.0%} to {WINDOW[1]:.0%} of them, per second; cores: CPU seconds "
        f"in that window over its length ({os.cpu_count()} CPUs on this machine); the store "
        f"({head:,} events) relayed once in {relayed:.1f} s; fresh read-model database and "
        "consumer group per run"
    )  # fmt: skip
    return [r]


def describe(bench: Scaling, n: int) -> str:
    """One worker count's rounds: rates, the CPU split (medians), stalls, start-up."""
    runs = bench.runs.get(n, [])
    if not runs:
        return f"{n} worker(s): no run"
    measured = {g: g == "workers" or bench.pids[g] is not None for g in GROUPS}
    measured[OTHER] = all(measured.values())

    def cores(g: str) -> str:
        return f"{g} {median(r.cores(g) for r in runs):.2f}" if measured[g] else f"{g} n/a"

    def each(values: Iterable[float], fmt: str) -> str:
        return ", ".join(format(v, fmt) for v in values)

    per_event = ", ".join(f"{g} {median(r.per_event(g) for r in runs):.0f} µs" for g in GROUPS
                          if measured[g])  # fmt: skip
    run_cpu = ", ".join(f"{g} {median(r.run_cpu[g] for r in runs):.1f}" for g in GROUPS
                        if measured[g])  # fmt: skip
    return (
        f"{n} worker(s): {each((r.rate for r in runs), ',.0f')} ev/s over "
        f"{each((r.window for r in runs), '.1f')} s windows; cores busy in the window "
        f"(medians): {', '.join(cores(g) for g in SHOWN)}; CPU per event applied: {per_event}; "
        f"longest stall in the window "
        f"{each((r.stall for r in runs), '.2f')} s; lock-waiting backends "
        f"{median(r.lock_waits for r in runs):.2f} on average; first event applied after "
        f"{median(r.first for r in runs):.1f} s, head after {median(r.seconds for r in runs):.1f}"
        f" s; CPU seconds in the whole run: {run_cpu}"
    )
