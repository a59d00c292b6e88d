"""wrk, the C load generator of the HTTP rows, and the Lua scripts that drive it.

Both sides of an HTTP row (ReelPulse and its baseline) are loaded by the same wrk
command, so neither is capped by a Python client's CPU (issue 14: an httpx client at
3.4 ms of CPU a request capped the B3 baseline at about 280 req/s). Every script shares
`COMMON`: it counts answers by status in each thread (`response()`), and `done()` prints
one JSON line (marker `WRKJSON`) with wrk's own summary (completed requests, duration,
socket errors), the latency percentiles and the status counts, which `run()` parses.
Scripts read their inputs from files and environment variables (`BENCH_*`), never from
the command line, so that bodies of any size and shape pass through untouched.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.core import console

MARKER = "WRKJSON "
_missing: str | None = None  # why wrk could not be installed (asked once per run)

COMMON = r"""
-- Shared by every script: thread numbers, status counts, helpers, the JSON summary.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
  thread:set("thread_count", tonumber(os.getenv("BENCH_THREADS")) or 1)
end

statuses = {}  -- answers by status (string keys: they cross threads via thread:get)
flagged = 0    -- 2xx answers whose body reports an error (GraphQL "errors")

function record(status, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if CHECK_ERRORS and status < 300 and body and body:find('"errors"', 1, true) then
    flagged = flagged + 1
  end
end

function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function seed_random()
  local seed = (tonumber(os.getenv("BENCH_SEED")) or 0) * 1000003 + thread_no * 7919
  math.randomseed(seed + os.time())
  for _ = 1, 10 do math.random() end
end

function uuid4()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", r(0, 65535), r(0, 65535),
    r(0, 65535), r(0, 4095), 32768 + r(0, 16383), r(0, 65535), r(0, 65535), r(0, 65535))
end

function base_headers()
  return {["Content-Type"] = "application/json", ["X-API-Key"] = os.getenv("BENCH_API_KEY")}
end

local function encode(v)
  local t = type(v)
  if t == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = encode(tostring(k)) .. ":" .. encode(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.6f", v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end)
      .. '"'
  end
  return "null"
end

function done(summary, latency, requests)
  local all, flags = {}, 0
  for _, t in ipairs(threads) do
    for k, n in pairs(t:get("statuses") or {}) do all[k] = (all[k] or 0) + n end
    flags = flags + (t:get("flagged") or 0)
  end
  local errors = {}
  for k, n in pairs(summary.errors) do errors[k] = n end
  local out = {
    requests = summary.requests, duration_us = summary.duration, errors = errors,
    statuses = all, flagged = flags,
    latency_us = {p50 = latency:percentile(50), p90 = latency:percentile(90),
                  p99 = latency:percentile(99), mean = latency.mean, max = latency.max},
  }
  io.write("WRKJSON " .. encode(out) .. "\n")
end
"""

# Requests from a file, one per line: METHOD <tab> PATH <tab> BODY (may be empty). The
# threads take them in turn (thread i the i-th, i+T-th, ...) and start over at the end.
# BENCH_RETAG=1 (B2): on every pass after the first, each viewer id's first four hex
# digits become the pass number, so a pass sends the same signals from new viewers (new
# pair streams, new client event ids): stored, not answered as duplicates.
REQUESTS = r"""
local list, headers, sent, retag

function init(args)
  CHECK_ERRORS = os.getenv("BENCH_CHECK_ERRORS") == "1"
  retag = os.getenv("BENCH_RETAG") == "1"
  headers = base_headers()
  list = {}
  for _, line in ipairs(read_lines(os.getenv("BENCH_REQUESTS"))) do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t(.*)$")
    list[#list + 1] = {method, path, body ~= "" and body or nil}
  end
  sent = thread_no - 1
end

function request()
  local r = list[sent % #list + 1]
  local pass = math.floor(sent / #list)
  sent = sent + thread_count
  local body = r[3]
  if retag and pass > 0 and body then
    body = body:gsub('"viewer_id":"%x%x%x%x', string.format('"viewer_id":"%04x', pass % 65536))
  end
  return wrk.format(r[1], r[2], headers, body)
end

function response(status, hdrs, body)
  record(status, body)
end
"""

# B3: one view per request, a random catalog video and a new viewer each time.
# BENCH_PATH is a format string ("/v1/videos/%s/views", or "/insert": no video).
VIEWS = r"""
local videos, headers, path

function init(args)
  seed_random()
  videos = read_lines(os.getenv("BENCH_VIDEOS"))
  path = os.getenv("BENCH_PATH")
  headers = base_headers()
end

function request()
  local video = videos[math.random(#videos)]
  local body = '{"viewer_id":"' .. uuid4() ..
    '","watch_seconds":3.0,"traffic_source":"for_you","device":"ios"}'
  return wrk.format("POST", string.format(path, video), headers, body)
end

function response(status, hdrs, body)
  record(status)
end
"""

# B11: batches of BENCH_MIN..BENCH_MAX views; half on the hot video, the rest spread
# over the catalog; a BENCH_HOT_SHARE of viewers from the shared hot pool, the others
# new. Each batch has an id (run tag, thread, counter) sent as X-Request-ID and embedded
# in every item's client_event_id ("<batch>-<item>"). Every answer that is not 2xx is
# written to BENCH_OUT/failed-<thread>.txt as "<status> <X-Request-ID echoed>".
CONTENTION = r"""
local videos, hot_viewers, hot_video, hot_share, lo, hi, tag, headers, out, n

function init(args)
  seed_random()
  videos = read_lines(os.getenv("BENCH_VIDEOS"))
  hot_viewers = read_lines(os.getenv("BENCH_HOT_VIEWERS"))
  hot_video = os.getenv("BENCH_HOT_VIDEO")
  hot_share = tonumber(os.getenv("BENCH_HOT_SHARE"))
  lo, hi = tonumber(os.getenv("BENCH_MIN")), tonumber(os.getenv("BENCH_MAX"))
  tag = os.getenv("BENCH_TAG")
  headers = base_headers()
  out = assert(io.open(os.getenv("BENCH_OUT") .. "/failed-" .. thread_no .. ".txt", "w"))
  n = 0
end

function request()
  n = n + 1
  local batch = string.format("%st%dn%d", tag, thread_no, n)
  local items = {}
  for i = 1, math.random(lo, hi) do
    local video = (math.random() < 0.5) and hot_video or videos[math.random(#videos)]
    local viewer = (math.random() < hot_share) and hot_viewers[math.random(#hot_viewers)]
      or uuid4()
    items[i] = '{"type":"view","video_id":"' .. video .. '","viewer_id":"' .. viewer ..
      '","watch_seconds":' .. math.random(1, 5) ..
      ',"traffic_source":"for_you","device":"ios","client_event_id":"' .. batch .. "-" .. i ..
      '"}'
  end
  headers["X-Request-ID"] = batch
  return wrk.format("POST", "/v1/engagement/batch", headers,
    '{"items":[' .. table.concat(items, ",") .. "]}")
end

function response(status, hdrs, body)
  record(status)
  if status < 200 or status > 299 then
    out:write(status, " ", hdrs["x-request-id"] or hdrs["X-Request-ID"] or "-", "\n")
    out:flush()
  end
end
"""

SCRIPTS = {"requests": REQUESTS, "views": VIEWS, "contention": CONTENTION}


@dataclass
class WrkResult:
    """One wrk run: what its done() reported."""

    requests: int  # completed (answered) requests
    seconds: float  # wrk's own duration of the run
    statuses: dict[int, int] = field(default_factory=dict)
    flagged: int = 0  # 2xx answers reporting an error in the body (GraphQL)
    errors: dict[str, int] = field(default_factory=dict)  # wrk's socket errors and timeouts
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p90, p99, mean, max

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300) - self.flagged

    @property
    def rate(self) -> float:
        """Successful answers per second (non-2xx and flagged answers do not count)."""
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def not_ok(self) -> dict[int, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if not 200 <= s < 300}

    def p(self, q: int) -> float:
        return self.latency_ms[f"p{q}"]

    def problems(self) -> str | None:
        """What went wrong in this run (non-2xx answers, GraphQL errors, socket errors or
        timeouts), or None."""
        parts = [f"{n} answers {s}" for s, n in self.not_ok.items()]
        if self.flagged:
            parts.append(f"{self.flagged} GraphQL answers with errors")
        parts += [f"{n} socket {k} errors" for k, n in self.errors.items()
                  if n and k != "status"]  # fmt: skip
        return ", ".join(parts) or None


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get (Debian package `wrk`) when missing:
    `apt-get install -y wrk`, after an `apt-get update` if that fails, through sudo when
    not root. Asked once per run: a failure is remembered and raised again."""
    global _missing
    found = shutil.which("wrk")
    if found:
        return found
    if _missing is not None:
        raise RuntimeError(_missing)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "wrk"]
    console.print("wrk is missing: " + " ".join(install))
    quiet: dict[str, Any] = {"stdout": sys.stderr, "stderr": sys.stderr, "env": env}
    try:
        if subprocess.run(install, **quiet).returncode != 0:
            subprocess.run([*sudo, "apt-get", "update"], **quiet)
            subprocess.run(install, **quiet)
    except OSError as e:
        console.print(f"cannot run apt-get: {e}")
    found = shutil.which("wrk")
    if not found:
        _missing = "wrk is not installed and `apt-get install -y wrk` did not install it"
        raise RuntimeError(_missing)
    return found


def write_requests(path: Path, requests: Sequence[tuple[str, str, bytes | None]]) -> Path:
    """The file the `requests` script reads: METHOD <tab> PATH <tab> BODY per line."""
    with path.open("wb") as f:
        for method, target, body in requests:
            body = body or b""
            assert b"\n" not in body and b"\t" not in target.encode(), "one request per line"
            f.write(f"{method}\t{target}\t".encode() + body + b"\n")
    return path


def write_lines(path: Path, lines: Sequence[object]) -> Path:
    path.write_text("".join(f"{x}\n" for x in lines))
    return path


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        yield Path(tmp)


def run(
    base: str,
    script: str,
    *,
    threads: int,
    connections: int,
    seconds: float,
    env: dict[str, str],
    timeout: float = 10.0,
    api_key: str = "",
) -> WrkResult:
    """Run wrk against `base` with one of SCRIPTS for `seconds`; `env` are the script's
    BENCH_* inputs. Requests time out after `timeout` s (counted in `errors`)."""
    binary = ensure_wrk()
    threads = max(1, min(threads, connections))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as lua:
        lua.write(COMMON + SCRIPTS[script])
        lua.flush()
        command = [
            binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout:g}s", "--latency", "-s", lua.name, base,
        ]  # fmt: skip
        variables = {"BENCH_THREADS": str(threads), "BENCH_API_KEY": api_key, **env}
        done = subprocess.run(
            command, env={**os.environ, **variables}, capture_output=True, text=True,
            timeout=seconds + timeout + 60,
        )  # fmt: skip
    lines = [x for x in done.stdout.splitlines() if x.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-800:]}"
                           f"{done.stdout[-800:]}")  # fmt: skip
    return parse(lines[-1][len(MARKER) :])


def parse(line: str) -> WrkResult:
    """A WrkResult from the JSON line of COMMON's done()."""
    doc = orjson.loads(line)
    return WrkResult(
        requests=int(doc["requests"]),
        seconds=float(doc["duration_us"]) / 1e6,
        statuses={int(k): int(v) for k, v in (doc.get("statuses") or {}).items()},
        flagged=int(doc.get("flagged") or 0),
        errors={k: int(v) for k, v in (doc.get("errors") or {}).items()},
        latency_ms={k: float(v) / 1000 for k, v in (doc.get("latency_us") or {}).items()},
    )


# -- Paced load (B5, B9) --------------------------------------------------------------------
# wrk cannot pace by itself: each thread has a schedule of slots at BENCH_RATE / threads
# per second (LuaJIT's ffi reads CLOCK_MONOTONIC); a connection ready to send claims the
# next slot and waits for it in delay(). A slot more than one interval in the past was due
# while every connection was busy (the server did not take it): it is skipped and counted,
# never sent late in a burst. Open loop with a bound (the connections). Optional inputs:
# BENCH_SECONDS ends the schedule after that long (wrk's -d then leaves time for the
# answers still due), BENCH_RATE_FILE is re-read every second for a corrected rate, and
# BENCH_PROGRESS is a directory where each thread keeps "<slots sent> <answers> <2xx>
# <its first slot, ms of CLOCK_MONOTONIC>" up to date. A script adds its own init()
# (calling paced_init()) and next_request(). The JSON line of done() (marker PACEDJSON)
# carries the counts.
PACED = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local now_ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, now_ts)  -- CLOCK_MONOTONIC
  return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

local thread_count, interval, next_slot, first_slot, seconds, stop_at, rate_file, reread
local progress
skipped, sent, answered, ok, statuses = 0, 0, 0, 0, {}

function paced_init()
  thread_count = tonumber(os.getenv("BENCH_THREADS"))
  interval = 1000 * thread_count / tonumber(os.getenv("BENCH_RATE"))
  seconds = tonumber(os.getenv("BENCH_SECONDS") or "")
  rate_file, reread = os.getenv("BENCH_RATE_FILE"), 0
  local dir = os.getenv("BENCH_PROGRESS")
  progress = dir and (dir .. "/progress-" .. thread_no .. ".txt")
end

local function read_rate()
  local f = io.open(rate_file)
  if not f then return end
  local rate = tonumber(f:read("*l") or "")
  f:close()
  if rate and rate > 0 then interval = 1000 * thread_count / rate end
end

local function report()
  if not progress then return end
  local f = io.open(progress .. ".tmp", "w")
  f:write(sent, " ", answered, " ", ok, " ", string.format("%.3f", first_slot), "\n")
  f:close()
  os.rename(progress .. ".tmp", progress)  -- the reader never sees half a line
end

function delay()
  local now = now_ms()
  if next_slot == nil then
    next_slot = now + (thread_no - 1) * interval / thread_count
    first_slot = next_slot
    stop_at = seconds and next_slot + 1000 * seconds
  end
  if rate_file and now >= reread then
    read_rate()
    reread = now + 1000
  end
  while next_slot < now - interval and not (stop_at and next_slot >= stop_at) do
    skipped = skipped + 1
    next_slot = next_slot + interval
  end
  if stop_at and next_slot >= stop_at then return 86400000 end  -- the schedule is over
  local wait = next_slot - now
  next_slot = next_slot + interval
  sent = sent + 1  -- every request follows one delay() (wrk also calls request() once
  report()         -- before the run, to check it: not counted)
  return wait > 0 and math.floor(wait + 0.5) or 0
end

function request()
  return next_request()
end

function response(status, hdrs, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  answered = answered + 1
  if status >= 200 and status < 300 then ok = ok + 1 end
  report()
end

function done(summary, latency, requests)
  local skips, sends, parts, all = 0, 0, {}, {}
  for _, t in ipairs(threads) do
    skips = skips + t:get("skipped")
    sends = sends + t:get("sent")
    for k, n in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + n end
  end
  for k, n in pairs(all) do parts[#parts + 1] = string.format('"%s":%d', k, n) end
  local e = summary.errors
  io.write(string.format('PACEDJSON {"duration_us":%d,"skipped":%d,"sent":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"statuses":{%s}}\n',
    summary.duration, skips, sends, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ",")))
end
"""

# B5: one view per request, a random video of BENCH_VIDEOS and a new viewer each time.
PACED_VIEWS = r"""
local videos, headers

function init(args)
  math.randomseed(os.time() + thread_no * 7919)
  videos = {}
  for line in io.lines(os.getenv("BENCH_VIDEOS")) do
    if #line > 0 then videos[#videos + 1] = line end
  end
  headers = {["Content-Type"] = "application/json", ["X-API-Key"] = os.getenv("BENCH_API_KEY")}
  paced_init()
end

local function uuid4()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", r(0, 65535), r(0, 65535),
    r(0, 65535), r(0, 4095), 32768 + r(0, 16383), r(0, 65535), r(0, 65535), r(0, 65535))
end

function next_request()
  local body = '{"viewer_id":"' .. uuid4() ..
    '","watch_seconds":3.0,"traffic_source":"for_you","device":"ios"}'
  return wrk.format("POST", "/v1/videos/" .. videos[math.random(#videos)] .. "/views",
    headers, body)
end
"""

# B9: POST BENCH_PATH with the bodies of BENCH_BODIES (one a line), read as they are sent,
# in order (one thread: the file's order). At the end of the file it starts over (the
# caller writes enough lines that it does not).
PACED_BODIES = r"""
local bodies, path, headers

function init(args)
  bodies = assert(io.open(os.getenv("BENCH_BODIES")))
  path = os.getenv("BENCH_PATH")
  headers = {["Content-Type"] = "application/json", ["X-API-Key"] = os.getenv("BENCH_API_KEY")}
  paced_init()
end

function next_request()
  local body = bodies:read("*l")
  if body == nil then
    bodies:seek("set")
    body = bodies:read("*l")
  end
  return wrk.format("POST", path, headers, body)
end
"""

PACED_SCRIPTS = {"views": PACED_VIEWS, "bodies": PACED_BODIES}


@dataclass
class PacedResult:
    """One paced wrk run: what its done() reported."""

    seconds: float  # wrk's own duration of the run
    sent: int  # slots taken (requests sent)
    skipped: int  # slots due while every connection was busy
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0  # connect, read and write errors
    timeouts: int = 0
    latency_ms: tuple[float, float] = (float("nan"), float("nan"))  # p50, p99

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def not_ok(self) -> dict[int, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if not 200 <= s < 300}


def start_paced(
    base: str,
    script: str,
    *,
    threads: int,
    connections: int,
    rate: float,
    seconds: float,
    env: dict[str, str],
    api_key: str = "",
    timeout: float = 10.0,
) -> subprocess.Popen:
    """wrk with PACED and one of PACED_SCRIPTS, offering `rate` requests/s (at most
    `connections` in flight) for `seconds` (wrk's -d); `env` are the script's BENCH_*
    inputs. Read the outcome with `finish_paced()` (which removes the Lua file's dir)."""
    binary = ensure_wrk()
    lua = Path(tempfile.mkdtemp(prefix="bench-paced-")) / "paced.lua"
    lua.write_text(PACED + PACED_SCRIPTS[script])
    variables = {"BENCH_THREADS": str(threads), "BENCH_RATE": f"{rate:g}",
                 "BENCH_API_KEY": api_key, **env}  # fmt: skip
    return subprocess.Popen(
        [binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
         f"--timeout={timeout:g}s", "-s", str(lua), base],
        env={**os.environ, **variables}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def finish_paced(proc: subprocess.Popen, timeout: float) -> PacedResult:
    """Wait (at most `timeout` s) for a wrk of `start_paced()`; its PACEDJSON line."""
    stdout, stderr = proc.communicate(timeout=timeout)
    shutil.rmtree(Path(proc.args[-2]).parent, ignore_errors=True)
    lines = [x for x in stdout.splitlines() if x.startswith("PACEDJSON ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {stderr[-800:]}")
    doc = orjson.loads(lines[-1].removeprefix("PACEDJSON "))
    return PacedResult(
        seconds=doc["duration_us"] / 1e6, sent=int(doc["sent"]), skipped=int(doc["skipped"]),
        statuses={int(k): int(v) for k, v in doc["statuses"].items()},
        socket_errors=int(doc["socket_errors"]), timeouts=int(doc["timeouts"]),
        latency_ms=(doc["p50_us"] / 1000, doc["p99_us"] / 1000),
    )  # fmt: skip
