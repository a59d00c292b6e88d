"""The servers of the HTTP rows, their queries, and B5 (freshness under paced commands).

`reelpulse serve` and the bare baseline (`python -m benchmarks.baseline_app`), both under
uvicorn, each in its own process; the GraphQL queries the rows send. The wrk rows (B2,
B3, B6, B7, B10, B11) are in benchmarks/wrk.py, benchmarks/http_rows.py and
benchmarks/contention.py; B9 in benchmarks/e2e.py.

B5  freshness: commands paced at a fixed rate (open loop, at most B5_IN_FLIGHT outstanding:
    a command due while the server is saturated is skipped and counted); after every 10th
    response a GraphQL query carrying the command's position as X-Consistency-Token; the
    time from the command's response to the query's answer is how long the write took to
    become visible (an upper bound: it includes the query itself). Projections run in
    process. A Python client on purpose: wrk cannot pace requests at a fixed rate, nor
    send a probe that depends on the previous answer.
"""

import asyncio
import contextlib
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx

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


@contextlib.contextmanager
def reelpulse(url: str, **env: str) -> Iterator[str]:
    tests_on_path()
    from e2e.servers import free_port, start_server

    port = free_port()
    proc = start_server(url, port, timeout=120, **{**SERVER_ENV, **env})
    try:
        yield f"http://127.0.0.1:{port}"
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
B5_IN_FLIGHT = 16  # commands (with their probe) outstanding at once, at most
B5_DRAIN_SECONDS = 20.0  # after the schedule: longest wait for what is still in flight
B5_WARM_UP_RATE = 10.0  # commands/s, for B5_WARM_UP_SECONDS: the online models load
B5_WARM_UP_SECONDS = 5.0  # their checkpoints and catch up before the first round
B5_TAKEN = 0.95  # share of the offered rate the server must take
B5_P50_MS, B5_P99_MS = 30.0, 100.0  # freshness targets


@dataclass
class Freshness:
    """One B5 round: the open-loop schedule, what the server took, and the probes."""

    offered: float  # commands/s scheduled
    seconds: float  # from the first send to the last answer (or the drain limit)
    sent: int = 0
    done: int = 0
    skipped: int = 0  # due while B5_IN_FLIGHT were outstanding: the server was saturated
    unfinished: int = 0  # still in flight at the drain limit (cancelled)
    timeouts: int = 0  # probes answered CONSISTENCY_TIMEOUT
    lagging: Counter[str] = field(default_factory=Counter)  # timeouts each projection was behind
    max_lag: dict[str, int] = field(default_factory=dict)  # its largest lag then, in events
    fresh: list[float] = field(default_factory=list)  # ms, command response -> query answer

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.fresh, q) if self.fresh else float("nan")


async def _freshness(base: str, videos: list[UUID], rate: float, seconds: float) -> Freshness:
    """Open loop with a bound: a command is sent at its scheduled time unless B5_IN_FLIGHT
    are outstanding, then it is counted as skipped (never queued in the client: thousands
    of queued requests make httpx's connection pool quadratic and stalled the client)."""
    out = Freshness(offered=rate, seconds=0.0)
    limits = httpx.Limits(max_connections=B5_IN_FLIGHT, max_keepalive_connections=B5_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits, headers=AUTH) as client:

        async def one(i: int, probe: bool) -> None:
            video = videos[i % len(videos)]
            r = await client.post(f"/v1/videos/{video}/views", json=view_body())
            accepted = time.perf_counter()
            assert r.status_code < 400, r.text[:300]
            out.done += 1
            if probe:
                q = await client.post(
                    "/graphql",
                    json={"query": FRESHNESS, "variables": {"id": str(video)}},
                    headers={"X-Consistency-Token": str(r.json()["position"])},
                )
                body = q.json()
                if body.get("errors"):  # CONSISTENCY_TIMEOUT: not visible within the bound
                    assert body["errors"][0]["extensions"]["code"] == "CONSISTENCY_TIMEOUT", body
                    out.timeouts += 1
                    for name, lag in body["errors"][0]["extensions"]["lag"].items():
                        out.lagging[name] += 1
                        out.max_lag[name] = max(lag, out.max_lag.get(name, 0))
                out.fresh.append((time.perf_counter() - accepted) * 1000)

        started = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()
        for i in range(int(rate * seconds)):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the open-loop schedule, not a wait for a result
            finished = {t for t in pending if t.done()}
            for t in finished:
                t.result()  # a failed command or probe fails the row now, not at the end
            pending -= finished
            if len(pending) >= B5_IN_FLIGHT:
                out.skipped += 1
                continue
            pending.add(asyncio.create_task(one(i, out.sent % 10 == 0)))
            out.sent += 1
        finished, late = set(), set()
        if pending:
            finished, late = await asyncio.wait(pending, timeout=B5_DRAIN_SECONDS)
        out.seconds = time.perf_counter() - started
        for t in late:
            t.cancel()
        out.unfinished = len(late)
        for t in finished:
            t.result()  # a failed command or probe fails the row
    return out


def freshness(base: str, videos: list[UUID], rate: float, seconds: float) -> Freshness:
    return asyncio.run(_freshness(base, videos, rate, seconds))


def sample(videos: list[UUID], n: int, seed: int = 11) -> list[UUID]:
    return random.Random(seed).sample(videos, min(n, len(videos)))


def b5(ctx: Context) -> list[Row]:
    """At the issue's rate (what the server took is reported), then at half the rate it
    took, measured, to separate projection lag from queueing."""
    s = ctx.scale
    videos = sample(ctx.work.videos, 200)
    rounds: list[Freshness] = []
    with ctx.srv.fresh(ctx.template) as url, reelpulse(url) as rp:
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
    r.met = r.figure <= B5_P99_MS and p50 <= B5_P50_MS and took >= B5_TAKEN * s.b5_rate
    sent = sum(x.sent for x in rounds)
    r.notes.append(
        f"offered {s.b5_rate:.0f} commands/s, the server took {took:.0f}/s "
        f"({took / s.b5_rate:.0%}, target >= {B5_TAKEN:.0%}; median of "
        f"{len(rounds)} rounds; {sum(x.skipped for x in rounds)} of "
        f"{sent + sum(x.skipped for x in rounds)} due commands skipped while "
        f"{B5_IN_FLIGHT} were in flight, {sum(x.unfinished for x in rounds)} unfinished "
        f"at the {B5_DRAIN_SECONDS:.0f} s drain limit); freshness p50 {p50:.1f} ms "
        f"(target <= {B5_P50_MS:.0f}), p99 {r.figure:.1f} ms over "
        f"{sum(len(x.fresh) for x in rounds)} probes"
    )
    r.notes.append(
        f"at half the rate taken ({low.offered:.0f} commands/s offered, {low.rate:.0f}/s "
        f"taken, one round of {low.seconds:.0f} s): freshness p50 {low.p(50):.1f} ms, p99 "
        f"{low.p(99):.1f} ms over {len(low.fresh)} probes"
    )
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
    return (f"freshness p99 {f.p(99):.1f} ms, p50 {f.p(50):.1f} ms; offered "
            f"{f.offered:.0f}/s, took {f.rate:.0f}/s, skipped {f.skipped}, unfinished "
            f"{f.unfinished}, consistency timeouts {f.timeouts}/{len(f.fresh)}")  # fmt: skip
