"""B1 and B2: engagement events/s into the PostgreSQL event store, against a raw COPY.

B1  `EngagementApplication.ingest` in process, batches of 1000 signals (the HTTP limit)
    from PRODUCERS threads (and, for the notes, from one): lean decisions against the
    write model, the group commit (one COPY under the store's table lock, one COMMIT for
    what is queued).
B2  signals POSTed by wrk (-t2 -c4: a few requests in flight, so the server can commit
    them together) to `/v1/engagement/batch` of a real `reelpulse serve` (projections
    off, so only the write side runs), 1000 distinct signals per request: the script
    rotates through pre-built bodies, each pass after the first from new viewers (see
    benchmarks/wrk.py), for B2_SECONDS; stored events (head difference) / wrk's duration.
Baseline: the stored rows B1 produced (same ids, topics, state bytes) written with a
raw binary COPY into a table with the events table's definition (primary key,
notification_id bigserial + unique index), one COMMIT per batch of the same size.
Figures are stored events per second; every round uses a fresh copy of the template.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from adapters.eventstore import open_shared_store
from adapters.workload.drivers import batch_item
from benchmarks import wrk
from benchmarks.core import Stopwatch
from benchmarks.env import Server
from commands.engagement import EngagementApplication, Signal

BATCH = 1000
PRODUCERS = 2  # B1's threads calling ingest (docs/benchmarks.md, "The write path ...")
HTTP_THREADS, HTTP_CONNECTIONS = 2, 4  # B2's wrk: a few batches in flight at once
RAW_TABLE = """
CREATE TABLE raw_events (
    originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text,
    state bytea, notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version));
CREATE UNIQUE INDEX raw_events_notification_id_idx ON raw_events (notification_id);
"""
EVENTS_TABLE = "reelpulse_events"


def head(url: str) -> int:
    with psycopg.connect(url) as conn:
        return read_head(conn)


def read_head(conn: psycopg.Connection) -> int:
    """The store's head position (the largest notification id)."""
    row = conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}")
    return int(row.fetchone()[0])  # type: ignore[index]


def batches(signals: Sequence[Signal], size: int = BATCH) -> list[Sequence[Signal]]:
    return [signals[i : i + size] for i in range(0, len(signals), size)]


def ingest_in_process(url: str, signals: Sequence[Signal], producers: int = 1) -> tuple[int, float]:
    """(events stored, seconds) for ingesting `signals` in batches of BATCH, from
    `producers` threads (each takes every producers-th batch), as concurrent callers of
    one process do (HTTP handlers, Kafka ingest workers): the group commit writes one
    producer's batch while another's is decided."""
    store = open_shared_store(url)
    app = EngagementApplication(store)
    work = batches(signals)
    try:
        before = store.recorder.max_notification_id() or 0
        with Stopwatch() as watch:
            if producers == 1:
                for batch in work:
                    app.ingest(batch)
            else:
                with ThreadPoolExecutor(producers) as pool:
                    done = [pool.submit(_ingest_every, app, work[i::producers])
                            for i in range(producers)]  # fmt: skip
                    for future in done:
                        future.result()
        events = (store.recorder.max_notification_id() or 0) - before
    finally:
        app.close()
        store.close()
    return events, watch.seconds


def _ingest_every(app: EngagementApplication, work: Sequence[Sequence[Signal]]) -> None:
    for batch in work:
        app.ingest(batch)


def stored_rows(url: str, after: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
            "WHERE notification_id > %s ORDER BY notification_id",
            (after,),
        )
        return [(r[0], r[1], r[2], bytes(r[3])) for r in cur]


def raw_copy(url: str, rows: Sequence[tuple[Any, ...]], per_commit: int) -> float:
    """Rows/s of a binary COPY of `rows`, one COMMIT every `per_commit` rows."""
    with psycopg.connect(url) as conn:
        conn.execute(RAW_TABLE)
        conn.commit()
        with Stopwatch() as watch:
            for i in range(0, len(rows), per_commit):
                with conn.cursor() as cur, cur.copy(
                    "COPY raw_events (originator_id, originator_version, topic, state) "
                    "FROM STDIN (FORMAT BINARY)"
                ) as copy:  # fmt: skip
                    copy.set_types(["uuid", "int8", "text", "bytea"])
                    for row in rows[i : i + per_commit]:
                        copy.write_row(row)
                conn.commit()
    return len(rows) / watch.seconds


@dataclass
class IngestBench:
    srv: Server
    template: str
    signals: Sequence[Signal]  # per round
    http_signals: Sequence[Signal]  # the distinct signals B2's bodies hold
    http_seconds: float = 10.0  # per B2 round
    rows: list[tuple[Any, ...]] | None = None
    events_per_batch: int = BATCH
    http_notes: list[str] = field(default_factory=list)  # what went wrong in B2 rounds
    http_batches: list[int] = field(default_factory=list)  # batches answered per B2 round

    def prepare(self) -> None:
        """A warm-up ingest (not timed) that yields the rows the COPY baseline writes."""
        with self.srv.fresh(self.template) as url:
            start = head(url)
            events, _ = ingest_in_process(url, self.signals)
            self.rows = stored_rows(url, start)
        self.events_per_batch = max(1, round(events / len(batches(self.signals))))

    def in_process(self, producers: int = PRODUCERS) -> float:
        with self.srv.fresh(self.template) as url:
            events, seconds = ingest_in_process(url, self.signals, producers)
        return events / seconds

    def copy(self) -> float:
        assert self.rows is not None
        with self.srv.fresh(self.template) as url:
            return raw_copy(url, self.rows, self.events_per_batch)

    def over_http(self) -> float:
        """Stored events/s while wrk posts the batches: the head difference from just
        before wrk starts to just after it ends, over wrk's own duration (batches still in
        flight when wrk stops commit afterwards and are not counted)."""
        from benchmarks.serving import API_KEY, reelpulse

        bodies = [orjson.dumps({"items": [batch_item(s) for s in b]})
                  for b in batches(self.http_signals)]  # fmt: skip
        with (
            wrk.workdir() as tmp,
            self.srv.fresh(self.template) as url,
            reelpulse(url, REELPULSE_PROJECTIONS_IN_PROCESS="false") as base,
            psycopg.connect(url, autocommit=True) as conn,
        ):
            requests = wrk.write_requests(
                tmp / "batches.txt", [("POST", "/v1/engagement/batch", b) for b in bodies]
            )
            before = read_head(conn)
            got = wrk.run(
                base, "requests", threads=HTTP_THREADS, connections=HTTP_CONNECTIONS,
                seconds=self.http_seconds, timeout=60, api_key=API_KEY,
                env={"BENCH_REQUESTS": str(requests), "BENCH_RETAG": "1"},
            )  # fmt: skip
            events = read_head(conn) - before
        self.http_batches.append(got.requests)
        if got.problems():
            self.http_notes.append(got.problems())  # type: ignore[arg-type]
        return events / got.seconds
