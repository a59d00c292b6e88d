"""B4, B4b (and B8's rebuild): rebuilding read models from the event store.

    python -m benchmarks.rebuild --store URL --read URL [--projections core|all]
                                 [--scan] [--window N]

Runs in a process of its own so its peak RSS is its own. Rebuild: the core projections
(stats, moderation, trending, sessions; B4, the default) or all of them
(`--projections all`, B4b: every spec of `projection_specs()`, the online models
included) into empty read-model tables (Alembic-migrated before the clock starts) by a
`ProjectionGroup` of their runners, as `reelpulse project` catches up: one read and one
decoding of the log for all of them, each runner's batch of up to 1000 events in its own
transaction. `--scan` runs the
baseline instead: the whole events table read in notification-id order in pages of
1000 (keyset, as the runner reads) and every state decoded with `json.loads`.
`--window N` (B8 at 1M/10M) rebuilds only the first N events: the runner's head is capped
at notification id N, so it reads the start of a large table, not all of it.
Prints one JSON line: events, seconds, this process's CPU seconds in that time (on a
shared machine the CPU per event varies less than the wall rate; the database server's
share is not in it), peak RSS in MB.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg

CORE = ("stats", "moderation", "trending", "sessions")
PAGE = 1000


def child(*args: str) -> dict[str, float]:
    """Run this module in a child process (its own peak RSS); its JSON line."""
    from benchmarks.core import REPO

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.rebuild", *args],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError("benchmarks.rebuild failed: "
                           f"{done.stderr[-1500:]}")  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def rebuild_rate(
    srv: Any, store_url: str, peaks: list[float], window: int | None = None,
    projections: str = "core",
) -> float:  # fmt: skip
    """Events/s of a rebuild of `store_url` into a fresh read database on `srv`."""
    extra = ("--window", str(window)) if window else ()
    with srv.fresh() as read_url:
        got = child("--store", store_url, "--read", read_url, "--projections", projections,
                    *extra)  # fmt: skip
    peaks.append(got["peak_rss_mb"])
    return got["events"] / got["seconds"]


def scan_rate(store_url: str) -> float:
    got = child("--store", store_url, "--scan")
    return got["events"] / got["seconds"]


def rebuild(
    store_url: str, read_url: str, window: int | None = None, projections: str = "core"
) -> dict[str, Any]:
    from adapters.eventstore import open_shared_store
    from adapters.projections.group import ProjectionGroup
    from adapters.projections.registry import projection_specs
    from adapters.projections.runner import ProjectionRunner
    from adapters.readmodel.db import create_read_engine, read_model_url, upgrade
    from commands.content import ContentApplication

    store = open_shared_store(store_url)
    engine = create_read_engine(read_model_url(store_url, read_url), writer=True)
    upgrade(engine)
    mapper = ContentApplication(store).mapper
    specs = projection_specs()
    if projections == "core":
        specs = [s for s in specs if s.name in CORE]
        assert {s.name for s in specs} == set(CORE), [s.name for s in specs]
    if window is not None:  # the runners see a store whose head is notification id `window`
        real_head = store.recorder.max_notification_id
        store.recorder.max_notification_id = lambda: min(real_head() or 0, window)  # type: ignore[method-assign]
    head = store.recorder.max_notification_id() or 0
    runners = [ProjectionRunner(spec, store, mapper, engine, batch_size=PAGE) for spec in specs]
    group = ProjectionGroup(runners, store, mapper, lambda: positions(engine), batch_size=PAGE)
    # Setup, like the imports and the migration above: the sentiment projection's language
    # and VADER models load once per process (about 0.55 s of CPU), in a background thread
    # started when its runner starts it; loaded here when it is rebuilt, or the load
    # competes with the first second of the rebuild being timed. The core rebuild leaves
    # the sentiment projection out and never loads them.
    if any(s.name == "sentiment" for s in specs):
        from adapters.sentiment import load_models

        load_models()
    started, cpu = time.perf_counter(), time.process_time()
    group.run_until_idle()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    behind = {r.name: r.last_error for r in runners if positions(engine).get(r.name) != head}
    if behind:  # the group holds a failing runner back and goes on: a rebuild must not
        raise RuntimeError(f"projections short of the head {head}: {behind}")
    engine.dispose()
    store.factory.close()
    return {"events": head, "seconds": seconds, "cpu_seconds": cpu, "projections": len(specs)}


def positions(engine: Any) -> dict[str, int]:
    from adapters.readmodel.tables import projection_tracking

    with engine.connect() as conn:
        rows = conn.execute(projection_tracking.select())
        return {r.name: int(r.position) for r in rows}


def scan(store_url: str) -> dict[str, Any]:
    events, last = 0, 0
    started, cpu = time.perf_counter(), time.process_time()
    with psycopg.connect(store_url) as conn:
        while True:
            rows = conn.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM reelpulse_events WHERE notification_id > %s "
                "ORDER BY notification_id LIMIT %s",
                (last, PAGE),
                prepare=True,
            ).fetchall()
            if not rows:
                break
            for row in rows:
                json.loads(bytes(row[4]))
            events += len(rows)
            last = rows[-1][0]
    return {"events": events, "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu}  # fmt: skip


def peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM, the high-water mark of its address space. Not
    `ru_maxrss`: Linux carries the RSS of the address space an exec replaced into it, and
    this process was forked from the benchmark harness before its exec, so `ru_maxrss`
    reported the harness's size whenever that was larger (545 MB at the end of a full
    run, 244 MB when B8 ran alone, for the same rebuild)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rebuild", description=__doc__)
    parser.add_argument("--store", required=True, help="event store URL (postgresql://...)")
    parser.add_argument("--read", help="read-model database URL (rebuild only)")
    parser.add_argument("--scan", action="store_true", help="the baseline scan instead")
    parser.add_argument("--window", type=int, help="rebuild only the first N events")
    parser.add_argument(
        "--projections",
        choices=("core", "all"),
        default="core",
        help="the core read models (B4, default) or every projection (B4b)",
    )
    args = parser.parse_args(argv)
    from adapters.runtime import tune_gc

    tune_gc()  # as `reelpulse project` runs
    result = (scan(args.store) if args.scan
              else rebuild(args.store, args.read, args.window, args.projections))  # fmt: skip
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
