"""Where B1's time goes: the CPU per stored event of each part of the write path.

B1 runs in one interpreter, so its Python work is serialised by the GIL: the deciding
threads and the group commit's thread share one core, whatever overlaps with
PostgreSQL. This script measures that Python work, per event, on B1's workload:

1. the decisions alone (`EngagementApplication.ingest` against an appender that
   answers at once, no database): total CPU, then again with each phase timed
   (prepass, the missing-stream check, the rules, the encoding) and the time the
   garbage collector took;
2. the whole ingest into PostgreSQL from one thread (decisions and the group commit),
   process CPU per event and wall rate, and the raw COPY baseline of the same rows.

What one core allows is 1e6 / (total Python us per event) events/s; B1's target is 0.35
of the COPY. Usage (the dev database must hold the bench template, see `make bench`):

    .venv/bin/python -m benchmarks.write_profile postgresql://.../postgres TEMPLATE
    .venv/bin/python -m benchmarks.write_profile          # part 1 only
"""

import gc
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from adapters.bootstrap import bootstrap
from adapters.runtime import tune_gc
from adapters.settings import Settings
from adapters.workload import drive_application
from benchmarks.context import SCALES
from benchmarks.env import Server, workload
from benchmarks.ingest import BATCH, batches, ingest_in_process, raw_copy, stored_rows
from commands import engagement
from commands.appending import AppendRequest
from commands.write_model import WriteModel

ROUNDS = 3  # the minimum of these is reported (the machine may be shared)


class _Answering:
    """An appender that stores nothing and answers every request with the next ids."""

    def __init__(self) -> None:
        self.events = 0

    def submit(self, request: AppendRequest) -> "Future[list[int]]":
        future: Future[list[int]] = Future()
        first = self.events + 1
        self.events += len(request.events)
        future.set_result(list(range(first, self.events + 1)))
        return future

    def add_watch_listener(self, listener: Callable[..., None]) -> None:
        pass


PHASES = {  # what is timed: (owner, method) -> label
    (engagement.EngagementApplication, "_prepare"): "prepass (event times, stream ids)",
    (engagement.EngagementApplication, "_unread"): "streams to read first (write model)",
    (engagement._Decision, "apply"): "rules and new states (PairState, ...)",
    (engagement.EngagementApplication, "_encode"): "encoding (orjson, the library's format)",
    (engagement.EngagementApplication, "_after_commit"): "after the commit (positions)",
    (WriteModel, "wrote"): "write model bookkeeping",
}


@contextmanager
def _timed(spent: dict[str, int]) -> Iterator[None]:
    """Wrap the PHASES methods and the garbage collector with CPU-time counters."""
    originals = {key: getattr(*key) for key in PHASES}

    def wrap(label: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time_ns()
            try:
                return method(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0) + time.process_time_ns() - start

        return timed

    started = [0]

    def collector(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.process_time_ns()
        else:
            label = "garbage collector (inside the phases above)"
            spent[label] = spent.get(label, 0) + time.process_time_ns() - started[0]

    for (owner, name), method in originals.items():
        setattr(owner, name, wrap(PHASES[owner, name], method))
    gc.callbacks.append(collector)
    try:
        yield
    finally:
        gc.callbacks.remove(collector)
        for (owner, name), method in originals.items():
            setattr(owner, name, method)


def decisions(
    catalog: list[Any], signals: list[Any], spent: dict[str, int] | None
) -> tuple[float, int]:
    """(CPU us per decided event, events) of ingesting `signals` without a database."""
    container = bootstrap(Settings(database_url="memory://", projections_in_process=False))
    try:
        drive_application(container, catalog)
        app = container.engagement
        appender = _Answering()
        app.appender = appender  # type: ignore[assignment]
        app.take_snapshot = lambda *a, **k: None  # type: ignore[method-assign]
        work = batches(signals, BATCH)
        app.ingest(work[0])  # reads the videos and creators once, as a running server has
        appender.events = 0
        with _timed(spent) if spent is not None else _nothing():
            start = time.process_time()
            for batch in work[1:]:
                app.ingest(batch)
            cpu = time.process_time() - start
        return cpu / appender.events * 1e6, appender.events
    finally:
        container.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def main(argv: list[str]) -> None:
    tune_gc()
    scale = SCALES["default"]
    catalog, work = workload(scale.views, scale.creators)
    signals = work.signals[: scale.b1_signals]
    print(f"B1's workload: {len(signals):,} signals in batches of {BATCH}")
    total = min(decisions(catalog, signals, None)[0] for _ in range(ROUNDS))
    timed: list[tuple[float, int, dict[str, int]]] = []
    for _ in range(ROUNDS):
        spent: dict[str, int] = {}
        timed.append((*decisions(catalog, signals, spent), spent))
    per_event, events, spent = min(timed, key=lambda t: t[0])
    print(f"\n1. decisions without a database: {total:.1f} us CPU per event (min of {ROUNDS})")
    print(f"   phases (the fastest timed run, {per_event:.1f} us per event with the timers):")
    for label, ns in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"   {label:48s} {ns / 1e3 / events:6.1f} us/event")
    if len(argv) < 2:
        return
    srv, template = Server(argv[0], None), argv[1]
    rates, cpus, copies = [], [], []
    for _ in range(ROUNDS):
        with srv.fresh(template) as url:
            before = time.process_time()
            stored, seconds = ingest_in_process(url, signals, producers=1)
            cpus.append((time.process_time() - before) / stored * 1e6)
            rates.append(stored / seconds)
            rows = stored_rows(url, 0)[-stored:]
        with srv.fresh(template) as url:
            copies.append(raw_copy(url, rows, max(1, len(rows) // len(batches(signals)))))
    cpu, copy = min(cpus), max(copies)
    print(
        f"\n2. ingest into PostgreSQL, one thread: {max(rates):,.0f} ev/s, process CPU "
        f"{cpu:.1f} us per event (decisions, group commit, client side of the COPY)"
    )
    print(f"   raw COPY of the same rows: {copy:,.0f} ev/s")
    most = 1e6 / cpu
    print(f"   one core at {cpu:.1f} us per event: at most {most:,.0f} ev/s = "
          f"{most / copy:.2f} of the COPY; 0.35 needs <= {1e6 / (0.35 * copy):.1f} us")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
