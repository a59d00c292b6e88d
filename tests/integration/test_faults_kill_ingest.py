"""Fault: `kill -9` of a real `reelpulse serve` process during batch ingest.

Each run starts the server on the same store, a client thread posts batches of views
(every item carries a client_event_id) and records which batches got a 2xx answer, and
the main thread SIGKILLs the server at a random point (seeded): after a random number of
acknowledged batches plus a random fraction of a batch. Some batches left unanswered by a
kill are retried after the restart, as a client would. At the end:

- every acknowledged item is stored exactly once (counted per client_event_id in the
  event store), every unacknowledged one 0 or 1 times, nothing else is stored;
- after a restart the projections reach the head and the read models equal a recount
  from history (recount_check).

Short runs are part of the default suite; `pytest -m slow -k kill_ingest` runs the long
ones (docs/reliability.md has the figures).
"""

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from e2e.servers import free_port, wait_until_serving
from support.artifacts import keep_on_failure
from support.auth import ENV as AUTH_ENV
from support.auth import HEADERS
from support.stored import stored_client_events

SEED = 20261122
BATCH_ITEMS = 20
VIDEOS = 3
NAMESPACE = uuid.UUID("0b8f6d2c-3f1e-4c8e-9a55-5d1b0f7e2a11")
REQUEST_TIMEOUT = 15.0  # a batch answer; a killed server ends the request at once


@dataclass
class Ledger:
    """What the client knows: which batches were acknowledged, which are in doubt."""

    acked: set[str] = field(default_factory=set)  # client_event_ids of acknowledged items
    sent: set[str] = field(default_factory=set)  # every client_event_id ever sent
    batches_acked: int = 0
    in_doubt: list[list[dict]] = field(default_factory=list)  # sent, never answered
    retried: int = 0  # in-doubt batches resent (and then acknowledged) after a restart
    videos: list[str] = field(default_factory=list)
    next_batch: int = 0


def _batch(number: int, videos: list[str]) -> list[dict]:
    items = []
    for i in range(BATCH_ITEMS):
        viewer = uuid.uuid5(NAMESPACE, f"viewer-{number}-{i % 4}")
        items.append(
            {
                "type": "view",
                "viewer_id": str(viewer),
                "video_id": videos[i % len(videos)],
                "watch_seconds": 1.0 + i % 7,
                "completed": i % 3 == 0,
                "client_event_id": f"b{number}-i{i}",
            }
        )
    return items


def _post(client: httpx.Client, base: str, items: list[dict]) -> httpx.Response:
    return client.post(f"{base}/v1/engagement/batch", json={"items": items}, headers=HEADERS)


def _acknowledge(ledger: Ledger, items: list[dict], response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    # Every item is recorded, or a duplicate of an earlier recording (a retried batch).
    assert body["recorded"] + body["duplicates"] == len(items), body
    ledger.acked.update(i["client_event_id"] for i in items)
    ledger.batches_acked += 1


class Poster(threading.Thread):
    """Posts batches back to back until the server dies (or `stop` is set)."""

    def __init__(self, base: str, videos: list[str], first: int, ledger: Ledger) -> None:
        super().__init__(daemon=True)
        self.base, self.videos, self.next, self.ledger = base, videos, first, ledger
        self.acked_here = 0
        self.progress = threading.Condition()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            while not self.stop.is_set():
                items = _batch(self.next, self.videos)
                self.next += 1
                self.ledger.sent.update(i["client_event_id"] for i in items)
                try:
                    response = _post(client, self.base, items)
                except httpx.TransportError:
                    self.ledger.in_doubt.append(items)  # killed while in flight
                    return
                try:
                    _acknowledge(self.ledger, items, response)
                except BaseException as e:  # reported by the main thread
                    self.error = e
                    return
                with self.progress:
                    self.acked_here += 1
                    self.progress.notify_all()

    def wait_acked(self, count: int, timeout: float) -> bool:
        with self.progress:
            return self.progress.wait_for(
                lambda: self.acked_here >= count or not self.is_alive(), timeout
            )


def _setup_videos(base: str) -> list[str]:
    with httpx.Client(timeout=REQUEST_TIMEOUT, headers=HEADERS) as client:
        r = client.post(
            f"{base}/v1/creators", json={"handle": "faults", "display_name": "F", "region": "DE"}
        )
        assert r.status_code == 201, r.text
        creator = r.json()["id"]
        videos = []
        for n in range(VIDEOS):
            r = client.post(
                f"{base}/v1/videos",
                json={"creator_id": creator, "caption": f"v{n}", "duration_seconds": 30.0},
            )
            assert r.status_code == 201, r.text
            videos.append(r.json()["id"])
    return videos


# A process that has imported the server once and forks a `reelpulse serve` per request:
# the child runs the CLI's own entry point (`reelpulse serve --port N`) on the given
# store, so it is a real server process, started in ~1 s instead of re-importing the
# whole application each run (5-7 s of CPU, far more on a loaded 2-core CI machine).
ZYGOTE = """
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
import adapters.cli, adapters.http.app, uvicorn  # noqa: preload, then fork per server
print("ready", flush=True)
for line in sys.stdin:
    port, log, url = line.rstrip("\\n").split(" ", 2)
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND), 2)
            os.dup2(os.open(os.devnull, os.O_RDWR), 0)
            os.dup2(os.open(os.devnull, os.O_RDWR), 1)
            os.environ.update(REELPULSE_DATABASE_URL=url, REELPULSE_LOG_LEVEL="warning")
            sys.argv = ["reelpulse", "serve", "--port", port]
            adapters.cli.main()
        finally:
            os._exit(0)
    print(pid, flush=True)
"""


class ServerForker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            env={**os.environ, **AUTH_ENV},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        ready = self.stdout.readline()  # blocks until imported; the pytest timeout bounds it
        assert ready.strip() == "ready", ready
        self.log = keep_on_failure(  # kept only when the test fails
            tempfile.NamedTemporaryFile(  # noqa: SIM115 (named in failure messages)
                prefix="reelpulse-faults-", suffix=".log", delete=False
            ).name
        )

    def start(self, database_url: str, port: int, timeout: float = 60) -> int:
        self.stdin.write(f"{port} {self.log} {database_url}\n")
        self.stdin.flush()
        pid = int(self.stdout.readline())
        wait_until_serving(port, lambda: _alive(pid), self.log, timeout, lambda: kill(pid))
        return pid

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill(pid: int, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
    """Send `sig` and wait (bounded) until the process is gone."""
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still alive {timeout:g}s after {sig}"
        time.sleep(0.02)  # polling the process table, bounded by the deadline


def _wait_projections_at_head(base: str, timeout: float) -> dict:
    """Until /readyz says every projection is at the store head (lag 0)."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/readyz", timeout=5).json()
        lags = body.get("checks", {}).get("projections", {}).get("lag", {})
        if lags and not any(lags.values()):
            return body
        time.sleep(0.1)  # polling a condition, bounded by the deadline
    raise AssertionError(f"projections did not reach the head in {timeout:g}s: {body}")


@dataclass(frozen=True)
class KillFigures:
    runs: int
    batches_acked: int
    items_acked: int
    items_in_doubt: int
    retried_batches: int
    events_stored: int
    lost: int
    duplicated: int
    seconds: float


def run_kill_ingest(database_url: str, runs: int, seed: int = SEED) -> KillFigures:
    rng = random.Random(seed)
    started = time.monotonic()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ledger = Ledger()
    forker = ServerForker()
    try:
        for _ in range(runs):
            _one_run(forker, database_url, base, port, rng, ledger)
        # Restart once more: the projections must catch up and agree with a recount.
        pid = forker.start(database_url, port)
        try:
            _wait_projections_at_head(base, timeout=60)
        finally:
            kill(pid, signal.SIGTERM)
    finally:
        forker.close()
    return _verify(database_url, runs, ledger, started)


def _one_run(
    forker: ServerForker,
    database_url: str,
    base: str,
    port: int,
    rng: random.Random,
    ledger: Ledger,
) -> None:
    pid = forker.start(database_url, port)
    poster = None
    try:
        if not ledger.videos:
            ledger.videos = _setup_videos(base)
        # A client that lost its answer may retry the same items: they must not double.
        still_in_doubt = []
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            for items in ledger.in_doubt:
                if rng.random() < 0.5:
                    _acknowledge(ledger, items, _post(client, base, items))
                    ledger.retried += 1
                else:
                    still_in_doubt.append(items)
        ledger.in_doubt = still_in_doubt
        poster = Poster(base, ledger.videos, ledger.next_batch, ledger)
        poster.start()
        assert poster.wait_acked(rng.randint(0, 4), timeout=30), "no progress in 30 s"
        time.sleep(rng.uniform(0.0, 0.06))  # the kill point: somewhere inside a batch
    finally:
        kill(pid)
    poster.join(REQUEST_TIMEOUT + 5)
    assert not poster.is_alive(), "the client hung after the server was killed"
    if poster.error is not None:
        raise poster.error
    ledger.next_batch = poster.next


def _verify(database_url: str, runs: int, ledger: Ledger, started: float) -> KillFigures:
    stored, report = stored_client_events(database_url)
    lost = sorted(c for c in ledger.acked if stored[c] == 0)
    duplicated = sorted(c for c, n in stored.items() if n > 1)
    unknown = sorted(set(stored) - ledger.sent)
    assert not lost, f"acknowledged items lost: {lost[:10]}"
    assert not duplicated, f"items stored more than once: {duplicated[:10]}"
    assert not unknown, f"items stored that were never sent: {unknown[:10]}"
    assert report.ok, f"read models differ from the recount: {report.mismatches[:10]}"
    figures = KillFigures(
        runs=runs,
        batches_acked=ledger.batches_acked,
        items_acked=len(ledger.acked),
        items_in_doubt=len(ledger.sent - ledger.acked),
        retried_batches=ledger.retried,
        events_stored=report.events,
        lost=len(lost),
        duplicated=len(duplicated),
        seconds=round(time.monotonic() - started, 1),
    )
    print(f"\nkill -9 during batch ingest ({database_url.split(':')[0]}): {figures}")
    return figures


def _check(figures: KillFigures, runs: int) -> None:
    assert figures.runs == runs
    assert figures.batches_acked >= 1
    assert figures.items_acked == figures.batches_acked * BATCH_ITEMS  # no batch acked twice
    assert figures.lost == 0
    assert figures.duplicated == 0


def test_kill_during_batch_ingest_sqlite(tmp_path):
    runs = 4
    _check(run_kill_ingest(f"sqlite:///{tmp_path}/store.db", runs), runs)


@pytest.mark.postgres
def test_kill_during_batch_ingest_postgres(pg_url):
    runs = 2
    _check(run_kill_ingest(pg_url, runs, seed=SEED + 1), runs)


@pytest.mark.slow
def test_kill_during_batch_ingest_sqlite_long(tmp_path, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long fault run: pytest -m slow -k kill_ingest")
    runs = 25
    _check(run_kill_ingest(f"sqlite:///{tmp_path}/store.db", runs, seed=SEED + 2), runs)


@pytest.mark.slow
@pytest.mark.postgres
def test_kill_during_batch_ingest_postgres_long(pg_url, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long fault run: pytest -m slow -k kill_ingest")
    runs = 20
    _check(run_kill_ingest(pg_url, runs, seed=SEED + 3), runs)
