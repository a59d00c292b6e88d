"""B4 (and B8's rebuild): rebuilding the core read models from the event store.

    python -m benchmarks.rebuild --store URL --read URL [--scan] [--window N]

Runs in a process of its own so its peak RSS is its own. Rebuild: the core projections
(stats, moderation, trending, sessions) into empty read-model tables (Alembic-migrated
before the clock starts) by a `ProjectionGroup` of their runners, as `reelpulse project`
catches up: one read and one decoding of the log for the four, each runner's batch of up
to 1000 events in its own transaction. `--scan` runs the
baseline instead: the whole events table read in notification-id order in pages of
1000 (keyset, as the runner reads) and every state decoded with `json.loads`.
`--window N` (B8 at 1M/10M) rebuilds only the first N events: the runner's head is capped
at notification id N, so it reads the start of a large table, not all of it.
Prints one JSON line: events, seconds, peak RSS in MB.
"""

import argparse
import json
import resource
import sys
import time
from typing import Any

import orjson
import psycopg

CORE = ("stats", "moderation", "trending", "sessions")
PAGE = 1000


def rebuild(store_url: str, read_url: str, window: int | None = None) -> dict[str, Any]:
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
    specs = [s for s in projection_specs() if s.name in CORE]
    assert {s.name for s in specs} == set(CORE), [s.name for s in specs]
    if window is not None:  # the runners see a store whose head is notification id `window`
        real_head = store.recorder.max_notification_id
        store.recorder.max_notification_id = lambda: min(real_head() or 0, window)  # type: ignore[method-assign]
    head = store.recorder.max_notification_id() or 0
    runners = [ProjectionRunner(spec, store, mapper, engine, batch_size=PAGE) for spec in specs]
    group = ProjectionGroup(runners, store, mapper, lambda: positions(engine), batch_size=PAGE)
    started = time.perf_counter()
    group.run_until_idle()
    seconds = time.perf_counter() - started
    behind = {r.name: r.last_error for r in runners if positions(engine).get(r.name) != head}
    if behind:  # the group holds a failing runner back and goes on: a rebuild must not
        raise RuntimeError(f"projections short of the head {head}: {behind}")
    engine.dispose()
    store.factory.close()
    return {"events": head, "seconds": seconds}


def positions(engine: Any) -> dict[str, int]:
    from adapters.readmodel.tables import projection_tracking

    with engine.connect() as conn:
        rows = conn.execute(projection_tracking.select())
        return {r.name: int(r.position) for r in rows}


def scan(store_url: str) -> dict[str, Any]:
    events, last = 0, 0
    started = time.perf_counter()
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
    return {"events": events, "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rebuild", description=__doc__)
    parser.add_argument("--store", required=True, help="event store URL (postgresql://...)")
    parser.add_argument("--read", help="read-model database URL (rebuild only)")
    parser.add_argument("--scan", action="store_true", help="the baseline scan instead")
    parser.add_argument("--window", type=int, help="rebuild only the first N events")
    args = parser.parse_args(argv)
    result = scan(args.store) if args.scan else rebuild(args.store, args.read, args.window)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
