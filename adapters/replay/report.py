"""The replay report: a JSON document (byte-identical for the same inputs) and its renderings.

Determinism: the report holds no wall-clock time and no path; every list is ordered
(by key, then id), JSON keys are sorted, floats are rounded to 6 decimals, and the
sandbox's tables are read with ORDER BY. Only the events, the selection, the projections
and the parameters decide what is in it.
"""

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from adapters.projections.registry import OWNED_ROWS
from adapters.projections.reset import Owned
from adapters.readmodel.stats_reader import SqlStatsReader
from adapters.readmodel.tables import rm_alerts, rm_cases, rm_emerging_trends, rm_model_metrics
from adapters.readmodel.times import as_utc
from adapters.readmodel.trending_reader import SqlTrendingReader
from adapters.replay.labels import Decisions
from adapters.replay.params import TrendingWindows

FORMAT = "reelpulse-replay-report"
VERSION = 1
TOP_CASES = 5
LISTED_DIFFERENCES = 20  # alerts listed per side in "differences" (all are counted)


def summarize(
    engine_of: Mapping[str, sa.Engine], windows: TrendingWindows, decisions: Decisions
) -> dict[str, Any]:
    """What one configuration produced: each part read from the sandbox of the projection
    that owns it (`engine_of`: projection name -> sandbox engine)."""
    out: dict[str, Any] = {"rows": {}, "models": {}}
    alerts: list[Any] = []
    for name, engine in engine_of.items():
        with engine.connect() as conn:
            for owned in OWNED_ROWS.get(name, ()):
                out["rows"][f"{name}.{owned.table.name}"] = _count(conn, owned)
                if owned.table is rm_model_metrics:
                    out["models"].update(_metrics(conn, owned))
                if owned.table is rm_alerts and owned.where is not None:
                    alerts += conn.execute(_alert_rows().where(owned.where(rm_alerts))).all()
            if name == "stats":
                summary = vars(SqlStatsReader(engine).summary())
                summary.pop("open_cases")  # from rm_cases: the moderation section has it
                out["stats"] = summary
            elif name == "trending":
                out["trending"] = _trending(engine, windows)
            elif name == "moderation":
                out["moderation"] = _queue(conn)
            elif name == "emerging_trends":
                t = rm_emerging_trends.c
                rows = conn.execute(
                    sa.select(t.kind, t.key).where(t.status == "emerging").order_by(t.kind, t.key)
                )
                out["emerging_now"] = [f"{r.kind}:{r.key}" for r in rows]
    out["rows"] = dict(sorted(out["rows"].items()))
    out["models"] = dict(sorted(out["models"].items()))
    alerts.sort(key=lambda r: (r.position, r.rule, r.subject_id, str(r.alert_id)))
    out["alerts"] = _alerts(alerts, decisions)
    return out


def _count(conn: sa.Connection, owned: Owned) -> int:
    stmt = sa.select(sa.func.count()).select_from(owned.table)
    if owned.where is not None:
        stmt = stmt.where(owned.where(owned.table))
    return int(conn.execute(stmt).scalar_one())


def _metrics(conn: sa.Connection, owned: Owned) -> dict[str, Any]:
    m = rm_model_metrics
    stmt = sa.select(m).order_by(m.c.model, m.c.metric)
    if owned.where is not None:
        stmt = stmt.where(owned.where(m))
    return {
        f"{r.model}.{r.metric}": {"value": r.value, "samples": int(r.samples)}
        for r in conn.execute(stmt)
    }


def _trending(engine: sa.Engine, windows: TrendingWindows) -> dict[str, Any]:
    reader = SqlTrendingReader(engine)
    return {
        f"{kind}_{w}m": [
            {"key": i.key, "score": i.score, "views": i.views}
            for i in reader.trending(kind, w, windows.top)
        ]
        for kind in ("video", "hashtag", "sound")
        for w in windows.windows
    }


def _alert_rows() -> sa.Select[Any]:
    a = rm_alerts.c
    return sa.select(
        a.alert_id, a.rule, a.subject_type, a.subject_id, a.severity, a.raised_at, a.position
    )


def _queue(conn: sa.Connection) -> dict[str, Any]:
    c = rm_cases.c
    by_status = {
        status: count
        for status, count in conn.execute(
            sa.select(c.status, sa.func.count()).group_by(c.status).order_by(c.status)
        )
    }
    top = conn.execute(
        sa.select(c.case_id, c.video_id, c.priority_score, c.reports, c.priority)
        .where(c.status == "open")
        .order_by(c.priority_score.desc(), c.case_id)
        .limit(TOP_CASES)
    )
    return {
        "cases_by_status": by_status,
        "top_open": [
            {"case_id": str(r.case_id), "video_id": str(r.video_id), "reports": r.reports,
             "priority": r.priority, "priority_score": r.priority_score}
            for r in top
        ],
    }  # fmt: skip


def _alerts(rows: Sequence[Any], decisions: Decisions) -> dict[str, Any]:
    by_rule: dict[str, dict[str, Any]] = {}
    for rule in sorted({r.rule for r in rows}):
        mine = [r for r in rows if r.rule == rule]
        entry: dict[str, Any] = {
            "alerts": len(mine),
            "by_severity": dict(sorted(Counter(r.severity for r in mine).items())),
        }
        if all(r.subject_type == "video" for r in mine):
            entry["vs_decisions"] = decisions.score({r.subject_id for r in mine})
        entry["subjects"] = sorted({f"{r.subject_type}:{r.subject_id}" for r in mine})
        by_rule[rule] = entry
    return {
        "total": len(rows),
        "by_rule": by_rule,
        "per_hour": dict(
            sorted(Counter(as_utc(r.raised_at).strftime("%Y-%m-%dT%H") for r in rows).items())
        ),
        "list": [
            f"{r.rule} {r.subject_type}:{r.subject_id} @{as_utc(r.raised_at).isoformat()}"
            for r in rows
        ],
    }


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths whose values differ between two results (lists compared whole)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += differences(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [path]


def alert_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Subjects (per rule) alerted by one configuration and not the other. Subjects, not
    alert ids: a lower threshold fires earlier, so the same spike has another window."""

    def subjects(result: Mapping[str, Any]) -> set[str]:
        return {
            f"{rule} {subject}"
            for rule, entry in result["alerts"]["by_rule"].items()
            for subject in entry["subjects"]
        }

    only_a, only_b = sorted(subjects(a) - subjects(b)), sorted(subjects(b) - subjects(a))
    return {
        "only_in_a": len(only_a),
        "only_in_b": len(only_b),
        "only_in_a_first": only_a[:LISTED_DIFFERENCES],
        "only_in_b_first": only_b[:LISTED_DIFFERENCES],
    }


def normalized(value: Any) -> Any:
    """Floats rounded to 6 decimals (and never -0.0 or NaN), recursively."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, 6) + 0.0
    if isinstance(value, dict):
        return {str(k): normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    return value


def dumps(report: Mapping[str, Any]) -> bytes:
    text = json.dumps(normalized(report), sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode()
