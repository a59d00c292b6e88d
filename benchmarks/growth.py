"""B8: stores of a given size, filled fast, for the growth measurements.

Driving millions of events through the application would take hours on the benchmark
machine, so a large store is made from a real one: the template's catalog plus one block
of engagement events ingested through the application, then that block copied inside
PostgreSQL (INSERT ... SELECT) with fresh stream ids (md5 of the id and the copy number)
until the store holds the requested number of events. Every row is a real stored event
of the library's format; copies repeat the block's viewers, videos and event times.
`b8()` is the row: ingest and rebuild rates at two sizes, the larger against the smaller.
"""

import contextlib
from collections.abc import Callable

import psycopg

from benchmarks.context import Context
from benchmarks.core import Row, Stopwatch, console, interleave
from benchmarks.ingest import head, ingest_in_process
from benchmarks.rebuild import rebuild_rate

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


B8_ROUNDS = 2  # each round rebuilds the large store: the slowest part of the run
B8_INGEST_ROUNDS = 3  # ingest rounds per size (cheap; each with its own new signals)
B8_PROBE = 4_000  # signals per ingest round


def b8(ctx: Context) -> list[Row]:
    """Ingest and rebuild rates at two store sizes; the larger against the smaller.

    Both stores live side by side; the ingest rounds alternate between them (the order
    rotating), each round storing new signals into the grown store itself. With
    `ctx.window` the rebuild covers only the first `window` events of each store: it shows
    what the table's size does to reading, not the read models' growth over all N events."""
    small, large = ctx.scale.growth
    window = ctx.window
    s = ctx.scale
    block = ctx.work.signals[: s.b4_signals]
    # Signals on streams the block has not touched, so every round stores new events.
    rest = ctx.work.signals[s.b4_signals :]
    n = min(B8_PROBE, len(rest) // B8_INGEST_ROUNDS)
    probes = [rest[i * n : (i + 1) * n] for i in range(B8_INGEST_ROUNDS)]
    sizes = (small, large)
    stores: dict[int, tuple[str, int]] = {}
    peaks: dict[int, list[float]] = {n: [] for n in sizes}
    with contextlib.ExitStack() as stack:
        for size in sizes:
            url = stack.enter_context(ctx.srv.fresh(ctx.template))
            catalog_head = head(url)
            ingest_in_process(url, block)
            stores[size] = (url, grow(url, catalog_head, size))

        def rebuild_at(size: int) -> Callable[[], float]:
            return lambda: rebuild_rate(ctx.srv, stores[size][0], peaks[size], window)

        def ingest_at(size: int) -> Callable[[], float]:
            done = [0]

            def measure() -> float:
                url = stores[size][0]
                before = wal(url)
                events, seconds = ingest_in_process(url, probes[done[0]])
                after = wal(url)
                done[0] += 1
                fpi, mb = after[0] - before[0], (after[1] - before[1]) / 1e6
                wal_notes.append(f"{size:,}: {events:,} events, {fpi:,} full-page images, "
                                 f"{mb:,.1f} MB of WAL")  # fmt: skip
                return events / seconds

            return measure

        wal_notes: list[str] = []
        rebuilds = interleave({n: rebuild_at(n) for n in sizes}, min(ctx.repeat, B8_ROUNDS),
                              "B8 rebuild")  # fmt: skip
        ingests = interleave({n: ingest_at(n) for n in sizes}, B8_INGEST_ROUNDS, "B8 ingest")
    out = []
    b4_name = f"B4 rebuild of the first {window:,} events" if window else "B4 rebuild"
    for name, rates in (("B1 ingest", ingests), (b4_name, rebuilds)):
        r = Row("B8", f"{name} of a store holding {stores[large][1]:,} vs "
                f"{stores[small][1]:,} events (events/s)", "ev/s", "within 20%",
                rates[large], rates[small])  # fmt: skip
        r.ratio = r.figure / r.baseline  # type: ignore[operator]
        r.met = r.ratio >= 0.8
        out.append(r)
    out[0].notes.append("ingest rounds (store size: WAL written) " + "; ".join(wal_notes))
    worst = max(max(p) for p in peaks.values())
    what = f"rebuild ({window:,}-event window) peak RSS" if window else "rebuild peak RSS"
    r = Row("B8", f"{what} at both sizes (MB)", "MB", "< 500 MB", [worst])
    r.met = worst < 500
    r.notes.append(", ".join(f"{n:,}: {max(p):.0f} MB" for n, p in peaks.items()))
    out.append(r)
    return out


def wal(url: str) -> tuple[int, int]:
    """(full-page images, bytes) of WAL the server wrote so far (pg_stat_wal)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
    return int(row[0]), int(row[1])  # type: ignore[index]
