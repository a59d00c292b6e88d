"""ReelPulse's performance targets (issues 7, 14 and 18), each against a baseline in the same run.

    .venv/bin/python -m benchmarks run --all          # what `make bench` runs
    .venv/bin/python -m benchmarks run --rows B1,B4   # some rows
    .venv/bin/python -m benchmarks run --all --scale tiny --no-docs   # the smoke test

Starts a throwaway PostgreSQL 15 (or uses REELPULSE_TEST_DATABASE_URL) with fsync,
full_page_writes and synchronous_commit on, builds a template database holding a seeded
workload's creators and videos, then runs each row: ReelPulse and its baseline
alternate, `--repeat` rounds, the order rotating each round; medians are compared. HTTP
rows load both sides with wrk (installed with apt-get when missing; benchmarks/wrk.py).
Prints the table (figure, baseline, ratio, target, met) and writes it with the machine's
facts into docs/benchmarks.md (between the bench:results markers).
"""

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks import contention, e2e, http_rows, kafka_scaling, serving
from benchmarks.context import SCALES, Context, Scale
from benchmarks.core import (
    REPO,
    Row,
    Stopwatch,
    console,
    interleave,
    machine_facts,
    median,
    render,
    write_docs,
)
from benchmarks.env import make_template, server, workload
from benchmarks.growth import b8
from benchmarks.ingest import (
    BATCH,
    HTTP_CONNECTIONS,
    HTTP_THREADS,
    PRODUCERS,
    IngestBench,
    head,
    ingest_in_process,
)
from benchmarks.rebuild import child, rebuild_rate, scan_rate

ALL_ROWS = ("B1", "B2", "B3", "B4", "B4b", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12")
# Seconds a row group may run (at the default scale it needs about half); the watchdog
# reports a group past its limit as not measured instead of letting the run hang. Keyed
# by the group's first row.
TIME_LIMITS = {"B1": 240.0, "B3": 240.0, "B4": 600.0, "B5": 180.0, "B9": 330.0,
               "B11": 420.0, "B12": 300.0, "B8": 480.0}  # fmt: skip
BUDGET = 19.0  # minutes for the whole default run: `make bench` stays under 20
# --growth (the 1M/10M): B8 may take this long, the run this many minutes.
GROWTH_LIMIT = 3600.0
GROWTH_BUDGET = 70.0
# --growth-window 0 (full rebuilds at both sizes, about an hour at 10M here): the same.
FULL_GROWTH_LIMIT = 3 * 3600.0
FULL_GROWTH_BUDGET = 190.0
# --growth: B4 rebuilds the first this many events of each store (a few minutes each).
GROWTH_WINDOW = 500_000
B1_RATIO, B2_RATIO, B4_RATIO, B4B_RATIO = 0.35, 0.25, 0.35, 0.2


def ratio_row(row: Row, target: float) -> Row:
    """Ratio = figure / baseline; met when it reaches `target`."""
    row.ratio = row.figure / row.baseline if row.baseline else None
    row.met = row.ratio is not None and row.ratio >= target
    return row


def b1_b2(ctx: Context, rows: set[str]) -> list[Row]:
    s = ctx.scale
    rest = ctx.work.signals[s.b1_signals :]
    bench = IngestBench(ctx.srv, ctx.template, ctx.work.signals[: s.b1_signals],
                        rest[: s.b2_signals], s.b2_seconds)  # fmt: skip
    bench.prepare()
    runs: dict[str, Callable[[], float]] = {"raw COPY": bench.copy}
    if "B1" in rows:
        runs["B1 bulk ingest"] = bench.in_process
        runs["B1 one producer"] = lambda: bench.in_process(producers=1)
    if "B2" in rows:
        runs["B2 HTTP batch"] = bench.over_http
    got = interleave(runs, ctx.repeat, "B1/B2")
    out = []
    if "B1" in rows:
        r = ratio_row(Row("B1", f"ingest, in process, {PRODUCERS} producers (events/s)",
                          "ev/s", f">= {B1_RATIO}", got["B1 bulk ingest"], got["raw COPY"]),
                      B1_RATIO)  # fmt: skip
        single = median(got["B1 one producer"])
        r.notes.append(
            f"batches of {BATCH} signals from {PRODUCERS} threads; one sequential caller (it "
            f"waits for each commit, nothing to overlap): {single:,.0f} ev/s = "
            f"{single / median(got['raw COPY']):.2f} of the COPY"
        )
        out.append(r)
    if "B2" in rows:
        r = ratio_row(Row("B2", "ingest, HTTP batch under wrk (events/s)", "ev/s",
                          f">= {B2_RATIO}", got["B2 HTTP batch"], got["raw COPY"]),
                      B2_RATIO)  # fmt: skip
        distinct = len(bench.http_signals)
        r.notes.append(
            f"wrk -t{HTTP_THREADS} -c{HTTP_CONNECTIONS}, {s.b2_seconds:.0f} s per round, "
            f"{min(BATCH, distinct)} signals per batch ({distinct:,} distinct, each pass after "
            f"the first from new viewers); batches answered per round: "
            f"{', '.join(str(n) for n in bench.http_batches)}"
        )
        if bench.http_notes:
            r.met = False
            r.notes += [f"not met: {n}" for n in bench.http_notes]
        out.append(r)
    return out


def reads(ctx: Context, rows: set[str]) -> list[Row]:
    """One store with engagement (ingested): rebuilt for B4/B4b; with its core read models
    built, queried for B6/B7/B10 (server with projections off)."""
    out: list[Row] = []
    with ctx.srv.fresh(ctx.template) as url:
        ingest_in_process(url, ctx.work.signals[: ctx.scale.b4_signals])
        if rows & {"B4", "B4b"}:
            out += b4(ctx, url, rows)
        if rows & {"B6", "B7", "B10"}:
            child("--store", url, "--read", url)  # the core read models of this store
            with (
                serving.reelpulse(url, REELPULSE_PROJECTIONS_IN_PROCESS="false") as rp,
                serving.baseline(url) as base,
            ):
                out += http_rows.b6_b7(ctx, rp, base, rows)
                if "B10" in rows:
                    out += http_rows.b10(ctx, rp, base)
    return out


def b4(ctx: Context, url: str, rows: set[str]) -> list[Row]:
    """B4 (core read models) and B4b (every projection) against the same scan + decode."""
    peaks: dict[str, list[float]] = {"core": [], "all": []}
    runs: dict[str, Callable[[], float]] = {}
    if "B4" in rows:
        runs["B4 rebuild core"] = lambda: rebuild_rate(ctx.srv, url, peaks["core"])
    if "B4b" in rows:
        runs["B4b rebuild all"] = lambda: rebuild_rate(ctx.srv, url, peaks["all"],
                                                       projections="all")  # fmt: skip
    runs["scan + decode"] = lambda: scan_rate(url)
    got = interleave(runs, ctx.repeat, "B4")
    events = head(url)
    out = []
    if "B4" in rows:
        r = ratio_row(Row("B4", f"rebuild of the core read models, {events:,} events "
                          "(events/s)", "ev/s", f">= {B4_RATIO}", got["B4 rebuild core"],
                          got["scan + decode"]), B4_RATIO)  # fmt: skip
        r.notes.append(f"rebuild peak RSS {max(peaks['core']):.0f} MB")
        out.append(r)
    if "B4b" in rows:
        r = ratio_row(Row("B4b", f"rebuild of every projection (online models included), "
                          f"{events:,} events (events/s)", "ev/s", f">= {B4B_RATIO}",
                          got["B4b rebuild all"], got["scan + decode"]), B4B_RATIO)  # fmt: skip
        r.notes.append(f"rebuild peak RSS {max(peaks['all']):.0f} MB")
        ctx.measured["B4b"] = r.figure
        out.append(r)
    return out


class RowTimeout(Exception):
    """Raised in the main thread by the watchdog when a row group runs past its limit."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (SIGALRM, main thread): blocking waits (sockets,
    subprocesses, asyncio.run) are interrupted too; the servers and databases the block
    opened are closed by their context managers as the exception unwinds."""

    def expire(signum: int, frame: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise RowTimeout(f"timed out after {round(seconds, 1):g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def guarded(
    ids: list[str], measure: Callable[[], list[Row]], keep_going: bool, limit: float
) -> list[Row]:
    """A row that fails or runs past `limit` seconds is reported as not measured (with the
    reason); the others still run."""
    reason = f"not measured: run budget exhausted ({limit:.0f} s left)"
    if limit > 0:
        try:
            with watchdog(limit):
                return measure()
        except RowTimeout as e:
            if not keep_going:
                raise
            console.print(f"[red]{'/'.join(ids)}: {e}[/red]")
            reason = f"not measured: {e}"
        except Exception as e:
            if not keep_going:
                raise
            console.print_exception()
            reason = f"failed: {type(e).__name__}: {str(e)[:300]}"
    failed = []
    for row_id in ids:
        r = Row(row_id, "FAILED" if reason.startswith("failed") else "not measured", "", "")
        r.met = False
        r.notes.append(reason)
        failed.append(r)
    return failed


def chosen(args: argparse.Namespace) -> set[str]:
    """The rows asked for (ids in any case: b4b is B4b)."""
    if args.all or not args.rows:
        return set(ALL_ROWS)
    known = {r.upper(): r for r in ALL_ROWS}
    asked = [x.strip().upper() for x in args.rows.split(",") if x.strip()]
    unknown = [x for x in asked if x not in known]
    if unknown:
        raise SystemExit(f"unknown rows {', '.join(unknown)}; rows: {', '.join(ALL_ROWS)}")
    return {known[x] for x in asked}


def run(args: argparse.Namespace) -> list[Row]:
    rows = chosen(args)
    scale = SCALES[args.scale]
    if args.growth:
        scale = Scale(**{**scale.__dict__, "growth": tuple(int(x) for x in args.growth.split(","))})
    window = args.growth_window
    if args.growth and window is None:
        window = GROWTH_WINDOW
    window = window or None  # 0: full rebuilds
    full_growth = bool(args.growth) and window is None
    limit, budget = (FULL_GROWTH_LIMIT, FULL_GROWTH_BUDGET) if full_growth else (
        GROWTH_LIMIT, GROWTH_BUDGET)  # fmt: skip
    limits = {**TIME_LIMITS, "B8": limit} if args.growth else TIME_LIMITS
    budget = args.budget or (budget if args.growth else BUDGET)
    given = sys.argv[1:] if args.argv is None else args.argv
    command = " ".join([".venv/bin/python -m benchmarks", *given])
    settings = dict(args.pg_setting)
    with Stopwatch() as watch, server(settings) as srv:
        catalog, work = workload(scale.views, scale.creators)
        ctx = Context(srv, make_template(srv, catalog), work, scale, args.repeat, window,
                      args.b9_rate)  # fmt: skip
        results: list[Row] = []
        # In this order: B9 uses B4b's rate, measured in the "B4" group.
        groups: list[tuple[str, set[str], Callable[[], list[Row]]]] = [
            ("B1", {"B1", "B2"}, lambda: b1_b2(ctx, rows)),
            ("B3", {"B3"}, lambda: http_rows.b3(ctx)),
            ("B4", {"B4", "B4b", "B6", "B7", "B10"}, lambda: reads(ctx, rows)),
            ("B5", {"B5"}, lambda: serving.b5(ctx)),
            ("B9", {"B9"}, lambda: e2e.b9(ctx)),
            ("B11", {"B11"}, lambda: contention.b11(ctx)),
            ("B12", {"B12"}, lambda: kafka_scaling.b12(ctx)),
            ("B8", {"B8"}, lambda: b8(ctx)),
        ]
        deadline = watch.started + budget * 60
        for key, ids, measure in groups:
            if rows & ids:
                wanted = [r for r in ALL_ROWS if r in rows & ids]
                limit = min(limits[key], deadline - time.perf_counter())
                with Stopwatch() as took:
                    results += guarded(wanted, measure, args.keep_going, limit)
                console.print(f"{'/'.join(wanted)}: {took.seconds:.0f} s (limit {limit:.0f} s)")
        facts = machine_facts(srv.version)
        if settings:
            facts += "; server settings " + ", ".join(f"{k}={v}" for k, v in settings.items())
        srv.drop(ctx.template)
    results.sort(key=lambda r: ALL_ROWS.index(r.id))  # stable: B8's rows keep their order
    table, markdown = render(results)
    from rich.console import Console

    Console().print(table)
    for row in results:
        for note in row.notes:
            print(f"{row.id}: {note}")
    print(f"\n{facts}")
    met = sum(1 for r in results if r.met)
    print(f"{met}/{len(results)} targets met in {watch.seconds / 60:.1f} min")
    if args.docs:
        write_docs(Path(args.docs), markdown, command, facts, watch.seconds)
    return results


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run benchmark rows and print the table")
    p.add_argument("--all", action="store_true", help="every row (the default)")
    p.add_argument("--rows", help="comma-separated row ids, e.g. B1,B4")
    p.add_argument("--scale", choices=sorted(SCALES), default="default")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds per row")
    p.add_argument("--growth", help="B8 store sizes in events, e.g. 1000000,10000000 (raises "
                   f"B8's limit to {GROWTH_LIMIT:.0f} s and the default budget to "
                   f"{GROWTH_BUDGET:.0f} min)")  # fmt: skip
    p.add_argument("--growth-window", type=int,
                   help="B8 rebuilds only the first N events of each store (default: all; "
                   f"{GROWTH_WINDOW:,} with --growth; 0: all, which raises B8's limit to "
                   f"{FULL_GROWTH_LIMIT / 3600:.0f} h and the budget to "
                   f"{FULL_GROWTH_BUDGET:.0f} min)")  # fmt: skip
    p.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                   type=_setting,
                   help="an extra setting of the benchmark's PostgreSQL server, e.g. "
                   "wal_compression=lz4 (repeatable; reloadable settings only)")  # fmt: skip
    p.add_argument("--docs", default=str(REPO / "docs" / "benchmarks.md"),
                   help="Markdown file to write the results into")  # fmt: skip
    p.add_argument("--no-docs", dest="docs", action="store_const", const=None)
    p.add_argument("--budget", type=float,
                   help=f"minutes for the whole run (default {BUDGET:g}): a row group still "
                   "running when the budget or its own limit ends is reported as not "
                   "measured")  # fmt: skip
    p.add_argument("--b9-rate", type=float,
                   help="B9's offered events/s (default: half of B4b's rate in the same run, "
                   f"else {e2e.DEFAULT_RATE:g})")  # fmt: skip
    p.add_argument("--keep-going", action="store_true",
                   help="report a row that fails and run the others (make bench)")  # fmt: skip
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse(argv)
    # SIGTERM (kill, a CI timeout) unwinds like Ctrl-C: servers stopped, databases dropped,
    # the throwaway cluster destroyed, instead of a cluster left running in /dev/shm.
    signal.signal(signal.SIGTERM, _terminated)
    return run(args)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
