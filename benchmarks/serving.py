"""B3, B5, B6, B7: ReelPulse over HTTP against bare FastAPI endpoints, servers in their
own processes (`reelpulse serve` and `python -m benchmarks.baseline_app`, both uvicorn).

B3  single commands (POST /v1/videos/{id}/views, a new viewer each: load the video,
    open the pair stream, store two events) with 8 concurrent clients: requests/s and
    p50/p99 latency, against POST /insert of the baseline (one INSERT + COMMIT).
B5  freshness: commands paced at a fixed rate (open loop, at most B5_IN_FLIGHT outstanding:
    a command due while the server is saturated is skipped and counted); after every 10th
    response a GraphQL query carrying the command's position as X-Consistency-Token; the
    time from the command's response to the query's answer is how long the write took to
    become visible (an upper bound: it includes the query itself). Projections run in
    process.
B6  the video page query (video, stats, creator) over GraphQL, one client, against
    GET /plain/video/{id} reading the same tables with the same readers.
B7  trending(kind: VIDEO, window: DAY, first: 100) against GET /plain/trending.
"""

import asyncio
import contextlib
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx

from benchmarks.core import REPO, percentile, tests_on_path

CONCURRENCY = 8
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
FRESHNESS = "query($id: UUID!) { video(id: $id) { stats { views } } }"


@dataclass
class Latencies:
    seconds: float = 0.0
    samples: list[float] = field(default_factory=list)  # ms

    @property
    def rate(self) -> float:
        return len(self.samples) / self.seconds

    def p(self, q: float) -> float:
        return percentile(self.samples, q)


@contextlib.contextmanager
def reelpulse(url: str, **env: str) -> Iterator[str]:
    tests_on_path()
    from e2e.servers import free_port, start_server

    port = free_port()
    proc = start_server(url, port, timeout=120, **{**SERVER_ENV, **env})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
        proc.terminate()
        proc.wait(timeout=30)


Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def _closed_loop(base: str, send: Send, total: int, concurrency: int) -> Latencies:
    out = Latencies()
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits, headers=AUTH) as client:

        async def worker() -> None:
            for i in counter:
                started = time.perf_counter()
                r = await send(client, i)
                out.samples.append((time.perf_counter() - started) * 1000)
                assert r.status_code < 400, r.text[:500]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.seconds = time.perf_counter() - started
    return out


def closed_loop(base: str, send: Send, total: int, concurrency: int = CONCURRENCY) -> Latencies:
    return asyncio.run(_closed_loop(base, send, total, concurrency))


def view_body() -> dict[str, Any]:
    return {"viewer_id": str(uuid4()), "watch_seconds": 3.0, "traffic_source": "for_you",
            "device": "ios"}  # fmt: skip


def command_sender(videos: list[UUID]) -> Send:
    async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.post(f"/v1/videos/{videos[i % len(videos)]}/views", json=view_body())

    return send


async def insert_send(client: httpx.AsyncClient, i: int) -> httpx.Response:
    return await client.post("/insert", json=view_body())


def video_page_sender(videos: list[UUID]) -> Send:
    async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
        variables = {"id": str(videos[i % len(videos)])}
        return await client.post("/graphql", json={"query": VIDEO_PAGE, "variables": variables})

    return send


def plain_video_sender(videos: list[UUID]) -> Send:
    async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.get(f"/plain/video/{videos[i % len(videos)]}")

    return send


async def trending_send(client: httpx.AsyncClient, i: int) -> httpx.Response:
    r = await client.post("/graphql", json={"query": TRENDING})
    assert isinstance(r.json()["data"]["trending"], list), r.text[:300]
    return r


async def plain_trending_send(client: httpx.AsyncClient, i: int) -> httpx.Response:
    return await client.get("/plain/trending", params={"kind": "video", "window": 1440})


# -- B5 -------------------------------------------------------------------------------------
B5_IN_FLIGHT = 2 * CONCURRENCY  # commands (with their probe) outstanding at once, at most
B5_DRAIN_SECONDS = 20.0  # after the schedule: longest wait for what is still in flight


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


def trending_size(base: str) -> int:
    r = httpx.post(f"{base}/graphql", json={"query": TRENDING}, timeout=60, headers=AUTH)
    return len(r.json()["data"]["trending"])


def sample(videos: list[UUID], n: int, seed: int = 11) -> list[UUID]:
    return random.Random(seed).sample(videos, min(n, len(videos)))
