"""The servers of the HTTP rows, their queries, and B5 (freshness under paced commands).

`reelpulse serve` and the bare baseline (`python -m benchmarks.baseline_app`), both under
uvicorn, each in its own process; the GraphQL queries the rows send. The wrk rows (B2,
B3, B6, B7, B10, B11) are in benchmarks/wrk.py, benchmarks/http_rows.py and
benchmarks/contention.py; B9 in benchmarks/e2e.py.

B5  freshness: commands offered at a fixed rate, open loop with a bound (a command due
    while every connection is busy is skipped and counted): wrk sends most of them, paced
    by its Lua delay() (wrk.PACED_VIEWS), and a Python prober the rest (B5_PROBE_RATE); after
    each of its commands' answers the prober sends a GraphQL query carrying the command's
    position as X-Consistency-Token; the time from the command's answer to the query's is
    how long the write took to become visible (an upper bound: it includes the query
    itself). Projections run in process. Python only for the probes (wrk cannot send a
    request that depends on the previous answer), on a raw HTTP/1.1 client: httpx's CPU
    (~3 ms a request) capped the rate the old all-Python B5 could offer on two cores.
"""

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson

from benchmarks import wrk
from benchmarks.context import Context
from benchmarks.core import REPO, Row, console, median, percentile, tests_on_path

# The development admin key (REELPULSE_DEV_API_KEY) of the servers the benchmark starts,
# and a rate limit no benchmark reaches: requests are authenticated as in production.
API_KEY = "rp_dev_bench0123456789abcdef0123456789ab"
AUTH = {"X-API-Key": API_KEY}
SERVER_ENV = {"REELPULSE_DEV_API_KEY": API_KEY, "REELPULSE_RATE_LIMIT_PER_MINUTE": "100000000"}
VIDEO_PAGE = (
    "query($id: UUID!) { video(id: $id) { id caption hashtags soundId durationSeconds status "
    "publishedAt stats { views uniqueViewers likes shares comments totalWatchSeconds "
    "averageWatchSeconds completionRate engagementRate } creator { handle displayName "
    "followers } } }"
)
TRENDING = (
    "{ trending(kind: VIDEO, window: DAY, first: 100) { rank key score views likes shares "
    "comments velocity acceleration } }"
)
SUMMARY = (
    "{ summary { creators suspendedCreators videos removedVideos views likes shares comments "
    "watchHours openCases headPosition projectionPositions } }"
)
FRESHNESS = "query($id: UUID!) { video(id: $id) { stats { views } } }"


@dataclass(frozen=True)
class Served:
    """A running `reelpulse serve`: its base URL and process."""

    base: str
    proc: subprocess.Popen

    def cpu(self) -> float:
        """Seconds of CPU (user + system) the server process used so far (Linux)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def reelpulse(url: str, **env: str) -> Iterator[str]:
    with reelpulse_process(url, **env) as served:
        yield served.base


@contextlib.contextmanager
def reelpulse_process(url: str, **env: str) -> Iterator[Served]:
    tests_on_path()
    from e2e.servers import free_port, start_server

    port = free_port()
    proc = start_server(url, port, timeout=120, **{**SERVER_ENV, **env})
    try:
        yield Served(f"http://127.0.0.1:{port}", proc)
    finally:
        stop(proc)


@contextlib.contextmanager
def baseline(url: str) -> Iterator[str]:
    tests_on_path()
    from e2e.servers import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.baseline_app", "--database-url", url, "--port",
         str(port)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "the baseline server exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the baseline server did not start"
            time.sleep(0.05)  # not listening yet; bounded by the deadline
    try:
        yield base
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if the server has not exited after `grace` seconds (a server
    still working through a backlog must not outlive the run)."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def view_body() -> dict[str, Any]:
    return {"viewer_id": str(uuid4()), "watch_seconds": 3.0, "traffic_source": "for_you",
            "device": "ios"}  # fmt: skip


# -- B5 -------------------------------------------------------------------------------------
B5_PROBE_RATE = 25.0  # commands/s of the offered rate sent by the prober (each then probed)
B5_PROBE_CONNECTIONS = 8  # prober connections: a probe due while all are busy is skipped
B5_WRK_THREADS, B5_WRK_CONNECTIONS = 2, 16  # the paced load: at most 16 commands in flight
B5_DRAIN_SECONDS = 20.0  # after the schedule: longest wait for probes still in flight
B5_WARM_UP_RATE = 10.0  # commands/s, for B5_WARM_UP_SECONDS: the online models load
B5_WARM_UP_SECONDS = 5.0  # their checkpoints and catch up before the first round
B5_TAKEN = 0.95  # share of the offered rate the server must take
B5_P50_MS, B5_P99_MS = 30.0, 100.0  # freshness targets


@dataclass
class Freshness:
    """One B5 round: the paced load, what the server took, and the probes."""

    offered: float  # commands/s scheduled (wrk's paced load and the prober's commands)
    seconds: float  # the schedule's length
    done: int = 0  # commands answered 2xx (wrk's and the prober's)
    skipped: int = 0  # due while every connection was busy: the server did not take them
    failed: list[str] = field(default_factory=list)  # non-2xx answers, socket errors
    unfinished: int = 0  # probes still in flight at the drain limit (cancelled)
    timeouts: int = 0  # probes answered CONSISTENCY_TIMEOUT
    lagging: Counter[str] = field(default_factory=Counter)  # timeouts each projection was behind
    max_lag: dict[str, int] = field(default_factory=dict)  # its largest lag then, in events
    fresh: list[float] = field(default_factory=list)  # ms, command answer -> query answer
    command_ms: tuple[float, float] = (float("nan"), float("nan"))  # wrk's p50, p99
    server_cpu: float = 0.0  # s of CPU the server process used in the round
    prober_cpu: float = 0.0  # s of CPU this (prober) process used in the round

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU per command answered (its probe queries included)."""
        return self.server_cpu / self.done * 1000 if self.done else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.fresh, q) if self.fresh else float("nan")


class RawClient:
    """One keep-alive HTTP/1.1 connection, as lean as a Python client gets (~0.3 ms of CPU
    a request here against httpx's ~3 ms): the prober's CPU must not be what limits the
    server on two cores. Answers must carry Content-Length (ours do)."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._io: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes, extra: str = "") -> tuple[int, bytes]:
        if self._io is None:
            self._io = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._io
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.head}{extra}Content-Type: "
            f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status, length = int(lines[0].split()[1]), None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        assert length is not None, f"answer without Content-Length: {lines[:6]}"
        return status, await reader.readexactly(length)

    def close(self) -> None:
        if self._io is not None:
            self._io[1].close()


def _paced_load(base: str, videos: Path, rate: float, seconds: float) -> subprocess.Popen:
    return wrk.start_paced(base, "views", threads=B5_WRK_THREADS, connections=B5_WRK_CONNECTIONS,
                           rate=rate, seconds=seconds, env={"BENCH_VIDEOS": str(videos)},
                           api_key=API_KEY)  # fmt: skip


async def _probes(
    base: str, videos: list[UUID], rate: float, seconds: float, out: Freshness
) -> None:
    """Commands at `rate` (open loop, at most B5_PROBE_CONNECTIONS in flight); after each
    answer, a GraphQL query carrying its position as X-Consistency-Token."""
    free = [RawClient(base, AUTH) for _ in range(B5_PROBE_CONNECTIONS)]
    clients = list(free)

    async def one(client: RawClient, video: UUID) -> None:
        try:
            status, body = await client.post(f"/v1/videos/{video}/views", orjson.dumps(view_body()))
            accepted = time.perf_counter()
            if status >= 300:
                out.failed.append(f"probe command answered {status}: {body[:200]!r}")
                return
            out.done += 1
            query = {"query": FRESHNESS, "variables": {"id": str(video)}}
            token = orjson.loads(body)["position"]
            status, body = await client.post(
                "/graphql", orjson.dumps(query), f"X-Consistency-Token: {token}\r\n"
            )
            out.fresh.append((time.perf_counter() - accepted) * 1000)
            errors = orjson.loads(body).get("errors") if status < 300 else None
            if status >= 300:
                out.failed.append(f"probe query answered {status}: {body[:200]!r}")
            elif errors:  # CONSISTENCY_TIMEOUT: not visible within the bound
                assert errors[0]["extensions"]["code"] == "CONSISTENCY_TIMEOUT", errors
                out.timeouts += 1
                for name, lag in errors[0]["extensions"]["lag"].items():
                    out.lagging[name] += 1
                    out.max_lag[name] = max(lag, out.max_lag.get(name, 0))
        finally:
            free.append(client)

    started = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    for i in range(int(rate * seconds)):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the open-loop schedule, not a wait for a result
        if not free:
            out.skipped += 1
            continue
        task = asyncio.create_task(one(free.pop(), videos[i % len(videos)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        _, late = await asyncio.wait(set(pending), timeout=B5_DRAIN_SECONDS)
        for t in late:
            t.cancel()
        out.unfinished = len(late)
    for c in clients:
        c.close()


def freshness(server: "Served", videos: list[UUID], rate: float, seconds: float) -> Freshness:
    """One round: wrk offers `rate` - B5_PROBE_RATE commands/s, the prober the rest (all
    of `rate` when it is below twice the probe rate) and probes each of its commands."""
    probe_rate = min(B5_PROBE_RATE, rate / 2) if rate >= 2 * B5_PROBE_RATE else rate
    out = Freshness(offered=rate, seconds=seconds)
    with tempfile.TemporaryDirectory(prefix="bench-b5-") as tmp:
        listed = wrk.write_lines(Path(tmp) / "videos.txt", videos)
        cpu0, mine0 = server.cpu(), time.process_time()
        load = (
            _paced_load(server.base, listed, rate - probe_rate, seconds)
            if rate > probe_rate
            else None
        )
        asyncio.run(_probes(server.base, videos, probe_rate, seconds, out))
        if load is not None:
            got = wrk.finish_paced(load, timeout=seconds + 60)
            out.done += got.ok
            out.skipped += got.skipped
            out.failed += [f"{n} commands answered {st}" for st, n in got.not_ok.items()]
            if got.socket_errors or got.timeouts:
                out.failed.append(f"wrk: {got.socket_errors} socket errors, "
                                  f"{got.timeouts} timeouts")  # fmt: skip
            out.command_ms = got.latency_ms
        out.server_cpu, out.prober_cpu = server.cpu() - cpu0, time.process_time() - mine0
    return out


def sample(videos: list[UUID], n: int, seed: int = 11) -> list[UUID]:
    return random.Random(seed).sample(videos, min(n, len(videos)))


def b5(ctx: Context) -> list[Row]:
    """At the issue's rate (what the server took is reported), then at half the rate it
    took, measured, to separate projection lag from queueing."""
    s = ctx.scale
    videos = sample(ctx.work.videos, 200)
    rounds: list[Freshness] = []
    with ctx.srv.fresh(ctx.template) as url, reelpulse_process(url) as rp:
        freshness(rp, videos, B5_WARM_UP_RATE, B5_WARM_UP_SECONDS)
        for i in range(ctx.repeat):
            got = freshness(rp, videos, s.b5_rate, s.b5_seconds)
            rounds.append(got)
            console.print(f"  B5 round {i + 1}/{ctx.repeat}: {describe(got)}")
        took = median([x.rate for x in rounds])
        low = freshness(rp, videos, max(1.0, took / 2), 2 * s.b5_seconds)
        console.print(f"  B5 at half the rate taken: {describe(low)}")
    p50 = median([x.p(50) for x in rounds])
    r = Row("B5", f"freshness p99 at {s.b5_rate:.0f} commands/s offered (ms)", "ms",
            f"p99 <= {B5_P99_MS:.0f} ms, p50 <= {B5_P50_MS:.0f} ms, >= 95 % taken",
            [x.p(99) for x in rounds])  # fmt: skip
    failed = [f for x in [*rounds, low] for f in x.failed]
    r.met = (r.figure <= B5_P99_MS and p50 <= B5_P50_MS and took >= B5_TAKEN * s.b5_rate
             and not failed)  # fmt: skip
    due = sum(x.done + x.skipped for x in rounds)
    probes = sum(len(x.fresh) for x in rounds)
    prober_ms = sum(x.prober_cpu for x in rounds) / max(1, probes) * 1000
    r.notes.append(
        f"offered {s.b5_rate:.0f} commands/s (wrk -t{B5_WRK_THREADS} -c{B5_WRK_CONNECTIONS} "
        f"paced at {s.b5_rate - B5_PROBE_RATE:.0f}/s, the prober {B5_PROBE_RATE:.0f}/s), the "
        f"server took {took:.0f}/s ({took / s.b5_rate:.0%}, target >= {B5_TAKEN:.0%}; median "
        f"of {len(rounds)} rounds of {s.b5_seconds:.0f} s; {sum(x.skipped for x in rounds)} of "
        f"{due} due commands skipped while every connection was busy); freshness p50 "
        f"{p50:.1f} ms (target <= {B5_P50_MS:.0f}), p99 {r.figure:.1f} ms over "
        f"{probes} probes; server CPU "
        f"{median([x.cpu_ms for x in rounds]):.2f} ms a command, command latency p50 "
        f"{median([x.command_ms[0] for x in rounds]):.1f} ms, p99 "
        f"{median([x.command_ms[1] for x in rounds]):.1f} ms (wrk); prober CPU "
        f"{prober_ms:.2f} ms a probe"
    )
    r.notes.append(
        f"at half the rate taken ({low.offered:.0f} commands/s offered, {low.rate:.0f}/s "
        f"taken, one round of {low.seconds:.0f} s): freshness p50 {low.p(50):.1f} ms, p99 "
        f"{low.p(99):.1f} ms over {len(low.fresh)} probes; server CPU {low.cpu_ms:.2f} ms a "
        f"command"
    )
    if failed:
        r.notes.append("not met: " + "; ".join(failed[:5]))
    timeouts = sum(x.timeouts for x in [*rounds, low])
    if timeouts:
        probes = sum(len(x.fresh) for x in [*rounds, low])
        lagging = sum((x.lagging for x in [*rounds, low]), Counter())
        worst = {n: max(x.max_lag.get(n, 0) for x in [*rounds, low]) for n in lagging}
        names = ", ".join(f"{n} in {c} (up to {worst[n]} events)" for n, c in lagging.most_common())
        r.notes.append(f"{timeouts} of {probes} probes hit the consistency timeout; "
                       f"projections still behind then: {names}")  # fmt: skip
    return [r]


def describe(f: Freshness) -> str:
    return (f"freshness p99 {f.p(99):.1f} ms, p50 {f.p(50):.1f} ms over {len(f.fresh)} "
            f"probes; offered {f.offered:.0f}/s, took {f.rate:.0f}/s, skipped {f.skipped}, "
            f"server CPU {f.cpu_ms:.2f} ms a command, commands p50/p99 "
            f"{f.command_ms[0]:.1f}/{f.command_ms[1]:.1f} ms, unfinished probes {f.unfinished}, "
            f"consistency timeouts {f.timeouts}, failures {len(f.failed)}")  # fmt: skip
