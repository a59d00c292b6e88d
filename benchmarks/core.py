"""What every benchmark row shares: interleaved rounds, medians, ratios, the report."""

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
console = Console(stderr=True)


def tests_on_path() -> None:
    """The benchmark reuses the test support code (PostgreSQL server, `reelpulse serve`)."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


@dataclass
class Row:
    """One line of the issue's table: a figure, its baseline, the ratio and the target."""

    id: str
    measure: str
    unit: str
    target: str
    rounds: list[float] = field(default_factory=list)
    baseline_rounds: list[float] = field(default_factory=list)
    ratio: float | None = None  # figure / baseline, or as the target defines it
    met: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def figure(self) -> float:
        return statistics.median(self.rounds) if self.rounds else float("nan")

    @property
    def baseline(self) -> float | None:
        return statistics.median(self.baseline_rounds) if self.baseline_rounds else None


Measurement = Callable[[], float]


def interleave(runs: dict[str, Measurement], repeat: int, label: str) -> dict[str, list[float]]:
    """Run every measurement `repeat` times, alternating them and rotating the order each
    round, so that drift (other load, caches warming) hits all of them alike."""
    names = list(runs)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeat):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            value = runs[name]()
            out[name].append(value)
            console.print(f"  {label} round {r + 1}/{repeat}: {name:<22} {value:>12,.1f}")
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Stopwatch:
    def __enter__(self) -> "Stopwatch":
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started


def machine_facts(server_version: str) -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("eventsourcing", "sqlalchemy", "psycopg", "fastapi", "strawberry-graphql")
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory:.1f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}, {versions}, PostgreSQL {server_version}; "
        f"load average at the end {load}"
    )


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "--"
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f} {unit}"


def render(rows: list[Row]) -> tuple[Table, str]:
    """The rich table for the terminal and the same as Markdown for the docs."""
    table = Table(title="ReelPulse benchmarks (medians of interleaved rounds)")
    headers = ["id", "measure", "figure", "baseline", "ratio", "target", "met"]
    for h in headers:
        table.add_column(h, justify="right" if h in ("figure", "baseline", "ratio") else "left")
    lines = ["| " + " | ".join(headers) + " |", "|---|---|---:|---:|---:|---|---|"]
    for row in rows:
        met = {True: "yes", False: "NO", None: "--"}[row.met]
        ratio = "--" if row.ratio is None else f"{row.ratio:.2f}"
        cells = [
            row.id,
            row.measure,
            _fmt(row.figure if row.rounds else None, row.unit),
            _fmt(row.baseline, row.unit),
            ratio,
            row.target,
            met,
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {row.id}: {n}" for row in rows for n in row.notes]
    if notes:
        lines += ["", *notes]
    return table, "\n".join(lines)


BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"


def write_docs(path: Path, markdown: str, command: str, facts: str, seconds: float) -> None:
    """Replace the generated results section of docs/benchmarks.md (or append it)."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = (
        f"{BEGIN}\n### Latest run ({stamp}, {seconds / 60:.1f} min)\n\n"
        f"```\n$ {command}\n```\n\nMachine: {facts}\n\n{markdown}\n{END}"
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
