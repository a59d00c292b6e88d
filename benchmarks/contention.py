"""B11, contention: batch ingest over HTTP from many concurrent connections.

wrk (-t2) with `b11_clients[0]` and then `b11_clients[1]` connections, `b11_seconds` each,
each run on a fresh copy of the template and its own `reelpulse serve` with projections
off (the write path alone; B9 loads the projections). Every request is a batch of
BATCH_MIN..BATCH_MAX views (random size): half on one hot video, the rest spread over the
catalog; HOT_SHARE of the viewers from a pool of HOT_VIEWERS shared by every connection
(the same pair streams, written by concurrent batches), the others new. Each batch has an
id, sent as X-Request-ID and embedded in each item's client_event_id ("<batch>-<item>");
the Lua script writes down every answer that is not 2xx with the batch id the server
echoes (benchmarks/wrk.py, CONTENTION).

After each run the store is watched until it stops changing (no new event for
QUIET_SECONDS, at most SETTLE_LIMIT: work still committing after the clients stopped is
reported), the server is stopped, then SQL on the store checks:
  (a) no answer 503, nor any other 5xx;
  (b) no item of a batch that was answered with an error is stored (client_event_id,
      read from the stored event's JSON state);
  (c) positions stay dense: head positions used minus events stored < 1 % of the events.
Throughput is the events stored while wrk ran (counted as it ends) over wrk's duration.
Target: the larger run >= 0.9x the smaller one, and (a)-(c) hold in both. One run per
size (60 s each by default): --repeat does not apply.
"""

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import psycopg

from benchmarks import serving, wrk
from benchmarks.context import Context
from benchmarks.core import Row, console
from benchmarks.ingest import EVENTS_TABLE, read_head

BATCH_MIN, BATCH_MAX = 50, 150
HOT_VIEWERS, HOT_SHARE = 50, 0.3
THREADS = 2
TIMEOUT = 30.0  # wrk's request timeout: longer than the server's 10 s deadline (503)
QUIET_SECONDS, SETTLE_LIMIT = 2.0, 30.0
RATIO, DENSITY = 0.9, 0.01
STORED_OF = f"""
SELECT split_part(convert_from(state, 'UTF8')::jsonb ->> 'client_event_id', '-', 1) AS batch,
       count(*)
FROM {EVENTS_TABLE}
WHERE notification_id > %s AND topic LIKE 'domain.engagement:%%'
  AND split_part(convert_from(state, 'UTF8')::jsonb ->> 'client_event_id', '-', 1) = ANY(%s)
GROUP BY 1
"""


@dataclass
class Outcome:
    clients: int
    result: wrk.WrkResult
    rate: float = 0.0  # events stored per second while wrk ran
    failed: dict[str, int] = field(default_factory=dict)  # batch id -> error status
    unidentified: int = 0  # error answers without the echoed batch id
    stored_of_failed: dict[str, int] = field(default_factory=dict)  # batch id -> events
    events: int = 0  # stored by the run, after settling
    positions: int = 0  # head positions the run used
    settled: float | None = None  # s after wrk ended until the store stopped changing
    check_error: str | None = None

    @property
    def server_errors(self) -> dict[int, int]:
        return {s: n for s, n in self.result.statuses.items() if s >= 500}

    @property
    def gap(self) -> float:
        return (self.positions - self.events) / self.events if self.events else 0.0

    @property
    def ok(self) -> bool:
        return (not self.server_errors and not self.stored_of_failed and not self.unidentified
                and self.gap < DENSITY and self.check_error is None)  # fmt: skip

    def describe(self) -> str:
        r = self.result
        answers = ", ".join(f"{n} x {s}" for s, n in sorted(r.statuses.items())) or "none"
        socket = ", ".join(f"{n} {k}" for k, n in r.errors.items() if n and k != "status")
        settled = (f"{self.settled:.1f} s" if self.settled is not None
                   else f"still committing {SETTLE_LIMIT:.0f} s")  # fmt: skip
        stored = sum(self.stored_of_failed.values())
        return (
            f"-c{self.clients}: {self.rate:,.0f} events/s stored, {r.rate:,.1f} batches/s "
            f"answered 2xx; answers {answers}"
            + (f"; socket errors/timeouts: {socket}" if socket else "")
            + f"; (a) 5xx answers: {sum(self.server_errors.values())}; (b) {len(self.failed)} "
            f"batches answered with an error, {stored} of their events stored"
            + (f" ({self.unidentified} error answers without a batch id)"
               if self.unidentified else "")
            + f"; (c) {self.positions - self.events:,} positions unused of "
            f"{self.positions:,} ({self.gap:.2%}, target < {DENSITY:.0%}); the store "
            f"settled {settled} after wrk stopped; p50 {r.p(50):.0f} ms, p99 "
            f"{r.p(99):.0f} ms"
            + (f"; check failed: {self.check_error}" if self.check_error else "")
        )  # fmt: skip


def count_after(conn: psycopg.Connection, after: int) -> int:
    row = conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE notification_id > %s",
                       (after,)).fetchone()  # fmt: skip
    return int(row[0])  # type: ignore[index]


def settle(conn: psycopg.Connection) -> float | None:
    """Seconds until the head has not moved for QUIET_SECONDS (None: still moving at
    SETTLE_LIMIT)."""
    started = last_change = time.perf_counter()
    last = read_head(conn)
    while time.perf_counter() - started < SETTLE_LIMIT:
        time.sleep(0.25)  # polling the store's head; bounded by SETTLE_LIMIT
        head, now = read_head(conn), time.perf_counter()
        if head != last:
            last, last_change = head, now
        elif now - last_change >= QUIET_SECONDS:
            return last_change - started
    return None


def failures(out: Path) -> tuple[dict[str, int], int]:
    """Batch ids answered with an error (from the script's files), and error answers that
    carried no batch id."""
    failed: dict[str, int] = {}
    unidentified = 0
    for path in out.glob("failed-*.txt"):
        for line in path.read_text().splitlines():
            status, _, batch = line.partition(" ")
            if batch.strip() in ("", "-"):
                unidentified += 1
            else:
                failed[batch.strip()] = int(status)
    return failed, unidentified


def one_run(ctx: Context, clients: int, videos: Path, hot: Path, hot_video: UUID,
            tmp: Path) -> Outcome:  # fmt: skip
    out = tmp / f"c{clients}"
    out.mkdir()
    with ctx.srv.fresh(ctx.template) as url, psycopg.connect(url, autocommit=True) as conn:
        before = read_head(conn)
        with serving.reelpulse(url, REELPULSE_PROJECTIONS_IN_PROCESS="false") as base:
            got = wrk.run(
                base, "contention", threads=THREADS, connections=clients,
                seconds=ctx.scale.b11_seconds, timeout=TIMEOUT, api_key=serving.API_KEY,
                env={"BENCH_VIDEOS": str(videos), "BENCH_HOT_VIEWERS": str(hot),
                     "BENCH_HOT_VIDEO": str(hot_video), "BENCH_HOT_SHARE": str(HOT_SHARE),
                     "BENCH_MIN": str(BATCH_MIN), "BENCH_MAX": str(BATCH_MAX),
                     "BENCH_TAG": f"c{clients}", "BENCH_OUT": str(out),
                     "BENCH_SEED": str(clients)},
            )  # fmt: skip
            outcome = Outcome(clients, got, count_after(conn, before) / got.seconds)
            outcome.settled = settle(conn)
        # The server has stopped: nothing commits any more.
        outcome.failed, outcome.unidentified = failures(out)
        outcome.events = count_after(conn, before)
        outcome.positions = read_head(conn) - before
        if outcome.failed:
            try:
                rows = conn.execute(STORED_OF, (before, list(outcome.failed))).fetchall()
                outcome.stored_of_failed = {r[0]: int(r[1]) for r in rows}
            except psycopg.Error as e:
                outcome.check_error = f"{type(e).__name__}: {str(e)[:200]}"
    console.print(f"  B11 {outcome.describe()}")
    return outcome


def b11(ctx: Context) -> list[Row]:
    rng = random.Random(14)
    videos = list(ctx.work.videos)
    hot_video = rng.choice(videos)
    small, large = ctx.scale.b11_clients
    with wrk.workdir() as tmp:
        listed = wrk.write_lines(tmp / "videos.txt", videos)
        hot = wrk.write_lines(tmp / "hot-viewers.txt",
                              [UUID(int=rng.getrandbits(128), version=4)
                               for _ in range(HOT_VIEWERS)])  # fmt: skip
        runs = [one_run(ctx, n, listed, hot, hot_video, tmp) for n in (small, large)]
    a, b = runs
    r = Row("B11", f"batch ingest under contention, wrk -c{large} vs -c{small} (events/s)",
            "ev/s", f">= {RATIO}x; no 503; no error stored; gaps < {DENSITY:.0%}",
            [b.rate], [a.rate])  # fmt: skip
    r.ratio = b.rate / a.rate if a.rate else None
    r.met = bool(r.ratio and r.ratio >= RATIO and a.ok and b.ok)
    r.notes += [x.describe() for x in runs]
    r.notes.append(f"batches of {BATCH_MIN}-{BATCH_MAX} views, half on one hot video, "
                   f"{HOT_SHARE:.0%} of viewers from {HOT_VIEWERS} hot ones; projections off; "
                   f"{ctx.scale.b11_seconds:.0f} s per run, one run each")  # fmt: skip
    return [r]
