"""B8: stores of a given size, filled fast, for the growth measurements.

Driving millions of events through the application would take hours on the benchmark
machine, so a large store is made from a real one: the template's catalog plus one block
of engagement events ingested through the application, then that block copied inside
PostgreSQL (INSERT ... SELECT) with fresh stream ids (md5 of the id and the copy number)
until the store holds the requested number of events. Every row is a real stored event
of the library's format; copies repeat the block's viewers, videos and event times.
"""

import psycopg

from benchmarks.core import Stopwatch, console

TABLE = "reelpulse_events"


def grow(url: str, block_after: int, target: int) -> int:
    """Copy the events after `block_after` until the store holds about `target` events.
    Returns the number of events stored."""
    with psycopg.connect(url, autocommit=True) as conn:
        head = int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])  # type: ignore[index]
        block = int(
            conn.execute(
                f"SELECT count(*) FROM {TABLE} WHERE notification_id > %s", (block_after,)
            ).fetchone()[0]  # type: ignore[index]
        )
        block_last = int(conn.execute(f"SELECT max(notification_id) FROM {TABLE}").fetchone()[0])  # type: ignore[index]
        console.print(f"  grow: head {head:,}, block {block:,} (ids {block_after}..{block_last})")
        copies = max(0, (target - head) // max(block, 1))
        done = 0
        with Stopwatch() as watch:
            while done < copies:
                step = min(copies - done, max(1, 500_000 // max(block, 1)))
                conn.execute(
                    f"INSERT INTO {TABLE} (originator_id, originator_version, topic, state) "
                    "SELECT md5(e.originator_id::text || ':' || g::text)::uuid, "
                    "e.originator_version, e.topic, e.state "
                    f"FROM generate_series(%s::int, %s::int) g, {TABLE} e "
                    "WHERE e.notification_id > %s AND e.notification_id <= %s "
                    "ORDER BY g, e.notification_id",
                    (done + 1, done + step, block_after, block_last),
                )
                done += step
                console.print(f"  growing the store: {head + done * block:,} events")
            conn.execute(f"VACUUM ANALYZE {TABLE}")
        total = int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])  # type: ignore[index]
    console.print(f"  store grown to {total:,} events in {watch.seconds:.0f}s")
    return total
