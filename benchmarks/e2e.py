"""B9, end to end: HTTP batch ingest at a fixed rate while every projection runs in the
same `reelpulse serve`, and how far the projections fall behind the store.

The server runs with its default settings (every projection of `projection_specs()` in
process, alert actions on) on a fresh copy of the template. wrk, paced by its Lua delay()
schedule (wrk.PACED, as B5's load), posts batches of `b9_batch` signals (the seeded
workload's, each pass after the first from new viewers; written to a file beforehand) to
POST /v1/engagement/batch at a fixed rate for `b9_seconds` over IN_FLIGHT connections (one
wrk thread), so at most IN_FLIGHT outstanding: a batch due while all IN_FLIGHT are
outstanding is skipped and counted, never sent late. Python only reads the store (the
sampler) and corrects the rate (issue 14: a Python client's CPU must not cap the load).

The rate, in events/s, is half of B4b's rate (every projection rebuilt from the log) in
the same run; without B4b, --b9-rate or DEFAULT_RATE. It becomes batches/s with the
events each item stores, measured during a warm-up (which also lets the online models
load their checkpoints) and corrected every CORRECT_SECONDS during the run from the
store's head against the items answered 2xx (`paced`, through a file wrk re-reads every
second): workload batches differ in events per item, and the rate is one of stored events.

A sampler thread reads every SAMPLE_SECONDS, in one query, the store's head (max
notification_id of reelpulse_events) and min(position) of projection_tracking over the
projections. lag(t) = t - (the time of the first sample whose head exceeded the
projections' min position at t), 0 when they are at the head. Reported: lag p99 while the
load runs, and the time from the last answer until lag is 0 (bounded by RECOVERY_LIMIT).
A run holds when lag p99 <= 2 s, lag is back to 0 within 5 s, the server took the load (at
most 5 % of the due batches skipped, none unfinished, and the store took >= 95 % of the
offered events: events stored per second between the first and the last sample of the
load) and every answer was 2xx. After the first run, a second: at 1.5x the rate if the
first held, else at half of it; the highest offered rate that held is reported.
"""

import bisect
import itertools
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

import orjson
import psycopg

from adapters.workload.drivers import batch_item
from benchmarks import serving, wrk
from benchmarks.context import Context
from benchmarks.core import Row, console, percentile
from benchmarks.ingest import read_head
from commands.engagement import Signal

DEFAULT_RATE = 1000.0  # events/s offered when B4b is not in the run and --b9-rate unset
IN_FLIGHT = 8  # batches outstanding at once, at most
SAMPLE_SECONDS = 0.1
RECOVERY_LIMIT = 30.0  # seconds after the load to wait for lag 0
WARM_UP_SECONDS = 5.0  # at WARM_UP_SHARE of the rate: models load, events/item measured
WARM_UP_SHARE = 0.2
GUESS = 1.6  # events per item before any is measured (the workload's is 1.5-2)
DRAIN_SECONDS = 30.0  # after the schedule: longest wait for batches still in flight
SPARE = 1.5  # bodies written for wrk: this many times those the schedule should need
CORRECT_SECONDS = 5.0  # how often the pacer re-estimates the events each item stores
LAG_P99, RECOVERY = 2.0, 5.0  # targets (s): lag p99 during the load, back to 0 after it
SKIPPED, TAKEN = 0.05, 0.95  # a run holds only if the server took the load: skipped at
# most this share of the due batches, and the store took this share of the offered events
HIGHER, LOWER = 1.5, 0.5  # the second run's rate, after a first run that held / did not
PROGRESS = "SELECT (SELECT coalesce(max(notification_id), 0) FROM reelpulse_events), " \
    "(SELECT min(position) FROM projection_tracking WHERE name = ANY(%s))"  # fmt: skip


def retag(signal: Signal, n: int) -> Signal:
    """The signal as a new viewer would send it on pass `n` (pass 0: unchanged): a new pair
    stream, so it is stored again rather than answered as a duplicate."""
    if n == 0:
        return signal
    cid = f"p{n}-{signal.client_event_id}" if signal.client_event_id else None
    return replace(signal, viewer_id=uuid5(NAMESPACE_URL, f"b9:{n}:{signal.viewer_id}"),
                   client_event_id=cid)  # fmt: skip


def bodies(signals: Sequence[Signal], size: int) -> Iterator[bytes]:
    """Batch bodies of `size` items, endlessly: the signals, then again from new viewers."""
    for n in itertools.count():
        for i in range(0, len(signals) - size + 1, size):
            items = [batch_item(retag(s, n)) for s in signals[i : i + size]]
            yield orjson.dumps({"items": items})


class Sampler(threading.Thread):
    """(time, head, min projection position) every SAMPLE_SECONDS, in its own thread."""

    def __init__(self, url: str, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.names = url, names
        self.samples: list[tuple[float, int, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.halt.is_set():
                t = time.perf_counter()
                head, low = conn.execute(PROGRESS, (self.names,), prepare=True).fetchone()  # type: ignore[misc]
                self.samples.append((t, int(head), int(low if low is not None else 0)))
                self.halt.wait(max(0.0, t + SAMPLE_SECONDS - time.perf_counter()))

    def lags(self, start: float, end: float) -> list[float]:
        """lag (s) of every sample taken in [start, end]."""
        samples = list(self.samples)
        times = [s[0] for s in samples]
        heads = [s[1] for s in samples]
        out = []
        for t, head, low in samples:
            if start <= t <= end:
                # The first sample whose head exceeded `low` (heads never decrease).
                out.append(0.0 if low >= head else t - times[bisect.bisect_right(heads, low)])
        return out

    def caught_up_after(self, t0: float) -> float | None:
        """Seconds from t0 to the first later sample with lag 0, or None."""
        for t, head, low in list(self.samples):
            if t > t0 and low >= head:
                return t - t0
        return None


@dataclass
class Run:
    offered: float  # events/s
    per_item: float = 0.0  # events per item, the pacer's last estimate
    started: float = 0.0
    ended: float = 0.0  # the last answer (or the drain limit)
    sent: int = 0
    skipped: int = 0
    unfinished: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    stored: int = 0  # events stored between the first and last sample of the load
    stored_seconds: float = 0.0  # between those samples
    lags: list[float] = field(default_factory=list)
    recovery: float | None = None  # s from the last answer to lag 0; None: not within limit

    @property
    def taken(self) -> float:
        return self.stored / self.stored_seconds if self.stored_seconds else 0.0

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300)

    def p(self, q: float) -> float:
        return percentile(self.lags, q) if self.lags else float("nan")

    @property
    def held(self) -> bool:
        return (bool(self.lags) and self.p(99) <= LAG_P99 and self.recovery is not None
                and self.recovery <= RECOVERY and self.skipped <= SKIPPED * self.due
                and self.taken >= TAKEN * self.offered and not self.errors
                and not self.unfinished)  # fmt: skip

    @property
    def due(self) -> int:
        return self.sent + self.skipped

    def describe(self) -> str:
        recovery = (f"{self.recovery:.1f} s" if self.recovery is not None
                    else f"not within {RECOVERY_LIMIT:.0f} s")  # fmt: skip
        answers = ", ".join(f"{n} x {s or 'no answer'}" for s, n in sorted(self.statuses.items()))
        seconds = self.ended - self.started
        return (f"offered {self.offered:,.0f} events/s ({self.sent / seconds:.2f} batches/s "
                f"sent, {self.per_item:.2f} events per item), stored {self.taken:,.0f}/s; "
                f"lag p50 {self.p(50):.2f} s, p99 "
                f"{self.p(99):.2f} s, max {max(self.lags, default=float('nan')):.2f} s over "
                f"{len(self.lags)} samples; lag 0 again {recovery} after the last answer; "
                f"{self.sent} batches sent ({answers}), {self.skipped} skipped while "
                f"{IN_FLIGHT} were in flight, {self.unfinished} unfinished; "
                f"{'held' if self.held else 'did not hold'}")  # fmt: skip


def progress(tmp: Path) -> tuple[int, int, int, float] | None:
    """(batches sent, answered, answered 2xx, the first slot's time.perf_counter()) as
    wrk's thread last wrote them, or None. Both clocks are CLOCK_MONOTONIC (Linux)."""
    try:
        sent, answered, ok, first = (tmp / "progress-1.txt").read_text().split()
    except (OSError, ValueError):
        return None
    return int(sent), int(answered), int(ok), float(first) / 1000


def paced(base: str, source: Iterator[bytes], sampler: Sampler, offered: float,
          per_item: float, batch: int, seconds: float) -> Run:  # fmt: skip
    """wrk (one thread, IN_FLIGHT connections, wrk.PACED_BODIES) offers `offered` events/s
    of batches from `source` for `seconds`. Its batches/s follow the events each item
    stores, `per_item` and then, every CORRECT_SECONDS, the store's head against the items
    answered 2xx (written to the rate file wrk re-reads), so that the events stored, not
    the batches sent, follow the rate (workload batches differ in events per item). After
    the schedule, wrk stops once every batch sent is answered (at most DRAIN_SECONDS)."""
    run = Run(offered, per_item=per_item)
    with wrk.workdir() as tmp:
        lines = math.ceil(offered / (batch * per_item) * seconds * SPARE) + IN_FLIGHT
        (tmp / "bodies.txt").write_bytes(b"".join(next(source) + b"\n" for _ in range(lines)))
        rate_file = tmp / "rate.txt"
        rate_file.write_text(f"{offered / (batch * per_item):.6f}\n")
        env = {"BENCH_BODIES": str(tmp / "bodies.txt"), "BENCH_PATH": "/v1/engagement/batch",
               "BENCH_RATE_FILE": str(rate_file), "BENCH_PROGRESS": str(tmp),
               "BENCH_SECONDS": f"{seconds:g}"}  # fmt: skip
        head0 = sampler.samples[-1][1] if sampler.samples else 0
        proc = wrk.start_paced(base, "bodies", threads=1, connections=IN_FLIGHT,
                               rate=offered / (batch * per_item), seconds=seconds + DRAIN_SECONDS,
                               env=env, api_key=serving.API_KEY, timeout=DRAIN_SECONDS)  # fmt: skip
        run.started = corrected = time.perf_counter()
        while proc.poll() is None:
            time.sleep(SAMPLE_SECONDS)  # wrk's progress, read at the sampler's pace
            now, counts = time.perf_counter(), progress(tmp)
            if counts is None:
                continue
            sent, answered, ok, run.started = counts  # started: the first slot
            if now < run.started + seconds:
                if now - corrected >= CORRECT_SECONDS and ok >= 2:
                    corrected = now
                    run.per_item = max(0.1, (sampler.samples[-1][1] - head0) / (ok * batch))
                    tmp_rate = tmp / "rate.tmp"
                    tmp_rate.write_text(f"{offered / (batch * run.per_item):.6f}\n")
                    tmp_rate.replace(rate_file)
            elif answered >= sent:
                break  # the schedule is over and every batch sent is answered
        run.ended = time.perf_counter()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # wrk stops and reports (its done())
        got = wrk.finish_paced(proc, timeout=60)
    run.sent, run.skipped = got.sent, got.skipped
    run.statuses.update(got.statuses)
    if got.socket_errors:
        run.statuses[0] += got.socket_errors  # no answer (connection lost): an error
    run.unfinished = max(0, got.sent - sum(got.statuses.values()) - got.socket_errors)
    return run


def wait_caught_up(sampler: Sampler, since: float) -> float | None:
    """Block until the projections reach the head after `since` (bounded by
    RECOVERY_LIMIT); the seconds it took, or None."""
    deadline = since + RECOVERY_LIMIT
    while time.perf_counter() < deadline:
        took = sampler.caught_up_after(since)
        if took is not None:
            return took
        time.sleep(SAMPLE_SECONDS)  # the sampler's next reading; bounded by the deadline
    return sampler.caught_up_after(since)


def measure(ctx: Context, rate: float) -> tuple[list[Run], float]:
    """The runs at `rate` events/s and at the second rate; and events per item."""
    from adapters.projections.registry import projection_specs

    s = ctx.scale
    names = [spec.name for spec in projection_specs()]
    source = bodies(ctx.work.signals, s.b9_batch)
    runs: list[Run] = []
    with ctx.srv.fresh(ctx.template) as url, serving.reelpulse(url) as base:
        sampler = Sampler(url, names)
        sampler.start()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                before = read_head(conn)
                warm_rate = max(WARM_UP_SHARE * rate, 0.5 * GUESS * s.b9_batch)
                warm = paced(base, source, sampler, warm_rate, GUESS, s.b9_batch,
                             WARM_UP_SECONDS)  # fmt: skip
                per_item = max(0.1, (read_head(conn) - before) / max(1, warm.sent * s.b9_batch))
            wait_caught_up(sampler, warm.ended)
            console.print(f"  B9 warm-up: {warm.sent} batches, {per_item:.2f} events per item")
            for i, offered in enumerate((rate, None)):
                if offered is None:
                    if runs[0].recovery is None:
                        console.print("  B9: the projections did not catch up: no second run")
                        break
                    offered = rate * (HIGHER if runs[0].held else LOWER)
                got = paced(base, source, sampler, offered, per_item, s.b9_batch,
                            s.b9_seconds)  # fmt: skip
                got.recovery = wait_caught_up(sampler, got.ended)
                during = [(t, h) for t, h, _ in sampler.samples if got.started <= t <= got.ended]
                if len(during) > 1:
                    got.stored = during[-1][1] - during[0][1]
                    got.stored_seconds = during[-1][0] - during[0][0]
                got.lags = sampler.lags(got.started, got.ended)
                runs.append(got)
                console.print(f"  B9 run {i + 1}: {got.describe()}")
        finally:
            sampler.halt.set()
            sampler.join(timeout=10)
    return runs, per_item


def b9(ctx: Context) -> list[Row]:
    rebuild = ctx.measured.get("B4b")
    if ctx.b9_rate:
        rate, source = ctx.b9_rate, "--b9-rate"
    elif rebuild:
        rate, source = rebuild / 2, f"half the B4b rebuild rate, {rebuild:,.0f} events/s"
    else:
        rate, source = DEFAULT_RATE, "the default; B4b not in this run"
    runs, per_item = measure(ctx, rate)
    first = runs[0]
    r = Row("B9", f"projection lag p99, batch ingest at {rate:,.0f} events/s ({source}) (ms)",
            "ms", f"p99 <= {LAG_P99:g} s, 0 within {RECOVERY:g} s",
            [first.p(99) * 1000] if first.lags else [])  # fmt: skip
    r.met = first.held
    r.notes += [f"run {i + 1}: {x.describe()}" for i, x in enumerate(runs)]
    r.notes.append(f"{ctx.scale.b9_batch} items per batch, {per_item:.2f} events per item "
                   f"(measured in the warm-up), {ctx.scale.b9_seconds:.0f} s per run, "
                   f"every projection in process")  # fmt: skip
    held = [x.offered for x in runs if x.held]
    best = Row("B9", "highest batch-ingest rate that held (events/s offered)", "ev/s",
               ">= 0.5x B4b" if rebuild else "--", [max(held)] if held else [],
               [rebuild] if rebuild else [])  # fmt: skip
    if held and rebuild:
        best.ratio = max(held) / rebuild
        best.met = best.ratio >= 0.5
    elif rebuild:
        best.met = False
    if not held:
        best.notes.append(f"no rate held (tried {', '.join(f'{x.offered:,.0f}' for x in runs)} "
                          f"events/s)")  # fmt: skip
    return [r, best]
