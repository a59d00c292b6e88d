"""Readable renderings of a replay report: rich tables for the terminal, an SVG chart.

Both are derived from the JSON report alone (`report.dumps` is the source of truth), so a
saved report can be rendered again later. The SVG is written by hand (matplotlib is not
a dependency): alerts per event-time hour, one bar per configuration.
"""

from collections.abc import Mapping
from html import escape
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.replay.report import normalized


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
    return str(value)


def _delta(a: Any, b: Any) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and a != b:
        return _fmt(b - a) if b < a else "+" + _fmt(b - a)
    return ""


def _table(title: str, labels: list[str]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("", style="bold")
    for label in labels:
        table.add_column(label.upper(), justify="right")
    if len(labels) == 2:
        table.add_column("Δ", justify="right")
    return table


def _rows(table: Table, rows: list[tuple[str, list[Any]]]) -> None:
    for name, values in rows:
        cells = [_fmt(v) for v in values]
        if len(values) == 2:
            cells.append(_delta(*values))
        table.add_row(name, *cells)


def render(report: Mapping[str, Any], console: Console) -> None:
    report = normalized(report)
    inp, labels = report["input"], list(report["results"])
    results = [report["results"][x] for x in labels]
    first, last = inp["event_time"]
    console.print(
        f"[bold]replay[/bold] of {inp['events']:,} events (positions {inp['positions'][0]}"
        f"-{inp['positions'][1]}, event time {first} to {last}); projections: "
        f"{', '.join(report['projections'])}"
    )
    for label in labels:
        overrides = report["configs"][label]["overrides"]
        shown = "; ".join(f"{s}.{k}={v}" for s, f in overrides.items() for k, v in f.items())
        console.print(f"  config {label.upper()}: {shown or 'defaults'}")

    table = _table("alerts (precision/recall against moderators' final decisions)", labels)
    rules = sorted({rule for r in results for rule in r["alerts"]["by_rule"]})
    rows: list[tuple[str, list[Any]]] = [("total", [r["alerts"]["total"] for r in results])]
    for rule in rules:
        entries = [r["alerts"]["by_rule"].get(rule, {}) for r in results]
        rows.append((rule, [e.get("alerts", 0) for e in entries]))
        if any("vs_decisions" in e for e in entries):
            for key in ("precision", "recall", "true_positives", "false_positives"):
                rows.append((f"  {key}", [e.get("vs_decisions", {}).get(key) for e in entries]))
    _rows(table, rows)
    console.print(table)

    metrics = sorted({m for r in results for m in r["models"]})
    if metrics:
        table = _table("model progressive metrics (value / samples)", labels)
        for m in metrics:
            cells = [r["models"].get(m) for r in results]
            values = [c["value"] if c else None for c in cells]
            table.add_row(
                m,
                *(f"{_fmt(c['value'])} / {c['samples']}" if c else "-" for c in cells),
                *([_delta(*values)] if len(cells) == 2 else []),
            )
        console.print(table)

    table = _table("read models", labels)
    rows = []
    for key in results[0].get("stats", {}):
        rows.append((f"stats.{key}", [r["stats"][key] for r in results]))
    statuses = sorted(
        {s for r in results for s in r.get("moderation", {}).get("cases_by_status", {})}
    )
    for status in statuses:
        counts = [r["moderation"]["cases_by_status"].get(status, 0) for r in results]
        rows.append((f"cases {status}", counts))
    for key in results[0]["rows"]:
        rows.append((key, [r["rows"].get(key) for r in results]))
    _rows(table, rows)
    console.print(table)

    if "trending" in results[0]:
        table = _table("trending (top keys by score)", labels)
        for window in results[0]["trending"]:
            table.add_row(
                window,
                *(", ".join(i["key"][:12] for i in r["trending"][window][:3]) for r in results),
                *([""] if len(results) == 2 else []),
            )
        console.print(table)
    figures = report.get("model_figures")
    if figures:
        table = Table(title="models beside their baselines (as `reelpulse evaluate` scores them)")
        for column in ("model", "measure", "model", "trivial", "simple rule", "samples"):
            table.add_column(column)
        for f in figures:
            table.add_row(
                f["model"], f["measure"], _fmt(f["value"]),
                f"{_fmt(f['trivial'])} {f['trivial_name']}".strip(),
                f"{_fmt(f['rule'])} {f['rule_name']}".strip(), str(f["samples"]),
            )  # fmt: skip
        console.print(table)
    diff = report.get("differences")
    if diff is not None:
        d = diff["alerts"]
        console.print(
            f"differences: {len(diff['paths'])} report values; alerted subjects only in A: "
            f"{d['only_in_a']}, only in B: {d['only_in_b']}"
        )
        for label, key in (("A", "only_in_a_first"), ("B", "only_in_b_first")):
            for item in d[key]:
                console.print(f"  only {label}: {item}")


def svg_chart(report: Mapping[str, Any]) -> str:
    """Alerts per event-time hour, a bar per configuration (A blue, B orange)."""
    results = report["results"]
    labels = list(results)
    hours = sorted({h for r in results.values() for h in r["alerts"]["per_hour"]})
    width, height, left, bottom, top = 760, 300, 40, 60, 30
    peak = max([r["alerts"]["per_hour"].get(h, 0) for r in results.values() for h in hours] or [1])
    slot = (width - left - 10) / max(len(hours), 1)
    bar = max(slot / (len(labels) + 1), 1.0)
    scale = (height - bottom - top) / peak
    colors = {"a": "#1f77b4", "b": "#ff7f0e"}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="18" font-size="13">alerts per hour (event time)</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#333"/>',
        f'<text x="4" y="{top + 4}">{peak}</text>',
    ]
    for i, hour in enumerate(hours):
        x0 = left + i * slot
        for j, label in enumerate(labels):
            n = results[label]["alerts"]["per_hour"].get(hour, 0)
            h = n * scale
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colors.get(label, "#777")}"><title>{escape(label)} '
                f"{escape(hour)}: {n}</title></rect>"
            )
        if len(hours) <= 24 or i % max(len(hours) // 24, 1) == 0:
            parts.append(
                f'<text x="{x0:.1f}" y="{height - bottom + 12}" transform="rotate(45 {x0:.1f} '
                f'{height - bottom + 12})">{escape(hour[5:])}h</text>'
            )
    for j, label in enumerate(labels):
        parts.append(
            f'<rect x="{width - 120 + j * 55}" y="8" width="10" height="10" '
            f'fill="{colors.get(label, "#777")}"/><text x="{width - 106 + j * 55}" y="17">'
            f"{escape(label.upper())}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
