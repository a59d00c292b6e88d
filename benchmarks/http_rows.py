"""B3, B6, B7, B10: ReelPulse over HTTP against the bare baseline app, both under wrk.

B3  POST /v1/videos/{id}/views (a random catalog video and a new viewer each request:
    load the video, open the pair stream, store two events) under `wrk -t2 -c16`, against
    POST /insert of the baseline (one INSERT + COMMIT): req/s of 2xx answers and p50/p99.
B6  the video page query (video, stats, creator) over GraphQL, one connection (`wrk -t1
    -c1`), rotating over 100 videos, p50, against GET /plain/video/{id} reading the same
    tables with the same readers.
B7  trending(kind: VIDEO, window: DAY, first: 100), one connection, p50, against GET
    /plain/trending.
B10 three hot reads (trending 100, the summary, the video page of one video) under
    `wrk -t2 -c8`, req/s against the plain endpoints (/plain/trending, /plain/summary,
    /plain/video/{id}): whatever the server does to answer them (issue 14: a cache keyed by
    the projections' positions) shows as GraphQL req/s >= 2x the plain endpoint's.

Every row alternates the two sides for --repeat rounds (the order rotating) after a short
warm-up of each; answers that are not 2xx (or GraphQL answers carrying "errors") are not
counted as served and mark the row as not met.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import orjson

from benchmarks import serving, wrk
from benchmarks.context import Context
from benchmarks.core import Row, interleave, median
from benchmarks.serving import API_KEY, AUTH

WARM_UP_SECONDS = 1.0
B3_THREADS, B3_CONNECTIONS = 2, 16
B3_RATIO, B3_P99 = 0.6, 2.0  # req/s >= 0.6x the bare INSERT, p99 <= 2x its p99
B10_THREADS, B10_CONNECTIONS = 2, 8
B10_RATIO = 2.0
_seeds = itertools.count(1)  # each wrk run seeds its random numbers differently

Load = Callable[[], wrk.WrkResult]


def warmed(run: Callable[[float], wrk.WrkResult], seconds: float) -> Load:
    """A load of `seconds` whose first call is the short warm-up instead."""
    calls = itertools.count()
    return lambda: run(WARM_UP_SECONDS if next(calls) == 0 else seconds)


def measured(
    ctx: Context, label: str, runs: dict[str, Load], value: Callable[[wrk.WrkResult], float]
) -> tuple[dict[str, list[float]], dict[str, list[wrk.WrkResult]]]:
    """Call each load once (its warm-up, see `warmed`), then interleave them for --repeat
    rounds; `value` of each run, and the runs."""
    for load in runs.values():
        load()  # the warm-up's figures are dropped
    results: dict[str, list[wrk.WrkResult]] = {name: [] for name in runs}

    def measure(name: str) -> Callable[[], float]:
        def one() -> float:
            got = runs[name]()
            results[name].append(got)
            return value(got)

        return one

    got = interleave({name: measure(name) for name in runs}, ctx.repeat, label)
    return got, results


def problems(results: dict[str, list[wrk.WrkResult]]) -> list[str]:
    """One note per side whose rounds had non-2xx answers, GraphQL errors or socket errors."""
    out = []
    for name, runs in results.items():
        found = [p for r in runs if (p := r.problems())]
        if found:
            out.append(f"{name}: " + "; ".join(found))
    return out


def b3(ctx: Context) -> list[Row]:
    s = ctx.scale
    videos = serving.sample(ctx.work.videos, 200)
    with (
        wrk.workdir() as tmp,
        ctx.srv.fresh(ctx.template) as rp_url,
        ctx.srv.fresh(ctx.template) as base_url,
        serving.reelpulse(rp_url, REELPULSE_PROJECTIONS_IN_PROCESS="false") as rp,
        serving.baseline(base_url) as base,
    ):
        listed = wrk.write_lines(tmp / "videos.txt", videos)
        sides = {"B3 command": (rp, "/v1/videos/%s/views"), "bare INSERT": (base, "/insert")}

        def load(name: str) -> Load:
            url, path = sides[name]
            return warmed(lambda seconds: wrk.run(
                url, "views", threads=B3_THREADS, connections=B3_CONNECTIONS, seconds=seconds,
                api_key=API_KEY, env={"BENCH_VIDEOS": str(listed), "BENCH_PATH": path,
                                      "BENCH_SEED": str(next(_seeds))},
            ), s.b3_seconds)  # fmt: skip

        got, results = measured(ctx, "B3", {name: load(name) for name in sides}, lambda r: r.rate)
    rp_runs, base_runs = results["B3 command"], results["bare INSERT"]
    p99, base_p99 = (median([r.p(99) for r in x]) for x in (rp_runs, base_runs))
    p50, base_p50 = (median([r.p(50) for r in x]) for x in (rp_runs, base_runs))
    r = Row("B3", f"single command, wrk -c{B3_CONNECTIONS} (req/s)", "req/s",
            f">= {B3_RATIO}; p99 <= {B3_P99:g}x",
            got["B3 command"], got["bare INSERT"])  # fmt: skip
    r.ratio = r.figure / r.baseline if r.baseline else None  # type: ignore[operator]
    trouble = problems(results)
    r.met = bool(r.ratio and r.ratio >= B3_RATIO and p99 <= B3_P99 * base_p99 and not trouble)
    r.notes.append(
        f"latency p50 {p50:.1f} ms vs {base_p50:.1f} ms; p99 {p99:.1f} ms vs {base_p99:.1f} ms "
        f"({p99 / base_p99:.2f}x, target <= {B3_P99:g}x); {s.b3_seconds:.0f} s per round and "
        f"side, wrk -t{B3_THREADS} -c{B3_CONNECTIONS}"
    )
    r.notes += [f"not met: {p}" for p in trouble]
    return [r]


@dataclass(frozen=True)
class Pair:
    """One read, as a GraphQL request and as the plain endpoint's request(s)."""

    name: str
    graphql: list[tuple[str, str, bytes | None]]
    plain: list[tuple[str, str, bytes | None]]


def gql(query: str, variables: dict[str, Any] | None = None) -> tuple[str, str, bytes]:
    body: dict[str, Any] = {"query": query}
    if variables:
        body["variables"] = variables
    return ("POST", "/graphql", orjson.dumps(body))


def video_page(videos: list[UUID]) -> Pair:
    return Pair("video page",
                [gql(serving.VIDEO_PAGE, {"id": str(v)}) for v in videos],
                [("GET", f"/plain/video/{v}", None) for v in videos])  # fmt: skip


TRENDING = Pair("trending, 100 items", [gql(serving.TRENDING)],
                [("GET", "/plain/trending?kind=video&window=1440&first=100", None)])  # fmt: skip
SUMMARY = Pair("summary", [gql(serving.SUMMARY)], [("GET", "/plain/summary", None)])


def loads(
    tmp: Path, pair: Pair, rp: str, base: str, threads: int, connections: int, seconds: float
) -> dict[str, Load]:
    """wrk runs of both sides of `pair`: {"GraphQL": ..., "plain": ...}; the first run of
    each is the short warm-up."""
    files = {
        "GraphQL": (rp, wrk.write_requests(tmp / f"{id(pair)}-gql.txt", pair.graphql), "1"),
        "plain": (base, wrk.write_requests(tmp / f"{id(pair)}-plain.txt", pair.plain), "0"),
    }

    def load(side: str) -> Load:
        url, path, check = files[side]
        return warmed(lambda duration: wrk.run(
            url, "requests", threads=threads, connections=connections, seconds=duration,
            api_key=API_KEY, env={"BENCH_REQUESTS": str(path), "BENCH_CHECK_ERRORS": check},
        ), seconds)  # fmt: skip

    return {side: load(side) for side in files}


def b6_b7(ctx: Context, rp: str, base: str, rows: set[str]) -> list[Row]:
    videos = serving.sample(ctx.work.videos, 100)
    out = []
    pairs = {"B6": (video_page(videos), "GraphQL video page", 2.0),
             "B7": (TRENDING, "GraphQL trending, 100 items", 3.0)}  # fmt: skip
    with wrk.workdir() as tmp:
        for row_id, (pair, measure, limit) in pairs.items():
            if row_id not in rows:
                continue
            runs = loads(tmp, pair, rp, base, 1, 1, ctx.scale.b67_seconds)
            got, results = measured(ctx, row_id, runs, lambda r: r.p(50))
            r = Row(row_id, f"{measure}, p50, one connection (ms)", "ms", f"p50 <= {limit:g}x",
                    got["GraphQL"], got["plain"])  # fmt: skip
            r.ratio = r.figure / r.baseline if r.baseline else None  # type: ignore[operator]
            trouble = problems(results)
            r.met = bool(r.ratio and r.ratio <= limit and not trouble)
            p99, base_p99 = (median([x.p(99) for x in results[k]]) for k in ("GraphQL", "plain"))
            r.notes.append(f"p99 {p99:.1f} ms vs {base_p99:.1f} ms ({p99 / base_p99:.2f}x)")
            if row_id == "B7":
                r.notes.append(f"{trending_size(rp)} items per answer")
            r.notes += [f"not met: {p}" for p in trouble]
            out.append(r)
    return out


def b10(ctx: Context, rp: str, base: str) -> list[Row]:
    video = serving.sample(ctx.work.videos, 1)[0]
    pairs = [TRENDING, SUMMARY, video_page([video])]
    out = []
    with wrk.workdir() as tmp:
        runs: dict[str, Load] = {}
        for pair in pairs:
            for side, load in loads(tmp, pair, rp, base, B10_THREADS, B10_CONNECTIONS,
                                    ctx.scale.b10_seconds).items():  # fmt: skip
                runs[f"{pair.name} {side}"] = load
        answers = {pair.name: same_answer(rp, base, pair) for pair in pairs}
        got, results = measured(ctx, "B10", runs, lambda r: r.rate)
    for pair in pairs:
        gql_name, plain_name = f"{pair.name} GraphQL", f"{pair.name} plain"
        r = Row("B10", f"GraphQL {pair.name}, wrk -c{B10_CONNECTIONS} (req/s)", "req/s",
                f">= {B10_RATIO:g}x plain", got[gql_name], got[plain_name])  # fmt: skip
        r.ratio = r.figure / r.baseline if r.baseline else None  # type: ignore[operator]
        trouble = problems({gql_name: results[gql_name], plain_name: results[plain_name]})
        r.met = bool(r.ratio and r.ratio >= B10_RATIO and not trouble)
        p50, base_p50 = (median([x.p(50) for x in results[k]]) for k in (gql_name, plain_name))
        r.notes.append(f"{pair.name}: p50 {p50:.1f} ms vs {base_p50:.1f} ms; answers "
                       f"{answers[pair.name]}")  # fmt: skip
        r.notes += [f"not met: {p}" for p in trouble]
        out.append(r)
    ratios = [r.ratio for r in out if r.ratio]
    if ratios:
        out[0].notes.append(f"median ratio of the three reads: {median(ratios):.2f} "
                            f"(target >= {B10_RATIO:g})")  # fmt: skip
    return out


def same_answer(rp: str, base: str, pair: Pair) -> str:
    """Whether GraphQL and the plain endpoint answer the same data (checked once, before
    the load; a note, not a target): "equal", or the fields that differ."""
    _, path, body = pair.graphql[0]
    g = httpx.post(f"{rp}{path}", content=body, timeout=60,
                   headers={**AUTH, "content-type": "application/json"}).json()  # fmt: skip
    p = httpx.get(f"{base}{pair.plain[0][1]}", timeout=60).json()
    data = next(iter((g.get("data") or {}).values()), None)
    if data == p:
        return "equal to the plain endpoint's"
    if isinstance(data, dict) and isinstance(p, dict):
        differ = sorted(k for k in data.keys() | p.keys() if data.get(k) != p.get(k))
        return f"differ from the plain endpoint's in {', '.join(differ)}"
    return f"differ from the plain endpoint's ({str(g)[:200]})"


def trending_size(base: str) -> int:
    r = httpx.post(f"{base}/graphql", json={"query": serving.TRENDING}, timeout=60,
                   headers=AUTH)  # fmt: skip
    return len(r.json()["data"]["trending"])
