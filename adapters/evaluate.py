"""`reelpulse evaluate`: every online model on one seeded workload, against its baseline.

One generated workload (with ground truth) is driven through the applications into an
in-memory store, every registered projection is caught up, and the report gathers:
the progressive-validation metrics the models tracked themselves (rm_model_metrics,
each beside its trivial baseline), the bot detector's precision/recall against the
injected bot bursts, the report-spike rule against the injected report waves, and the
emerging-trend detector against a 2x-running-mean rule. Everything is deterministic:
the same configuration gives the same report, byte for byte.
"""

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.bootstrap import Container
from adapters.readmodel.tables import rm_alerts, rm_model_metrics
from adapters.readmodel.times import as_utc
from adapters.workload import GroundTruth, WorkloadConfig
from adapters.workload.evaluation import bot_detection_report, count_minute_views, load_events
from adapters.workload.trend_evaluation import evaluate_events, store_events

# Enough bursts and decided cases for the figures to mean something; 3 days so that
# many 24-hour virality labels arrive.
EVALUATION_CONFIG = WorkloadConfig(seed=42, days=3, bot_bursts=30, report_waves=80)
SPIKE_GRACE = timedelta(hours=2)  # a report-spike alert counts up to 2 h after the wave


@dataclass(frozen=True)
class Score:
    name: str
    alerts: int
    true_positives: int
    targets: int
    detected: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.alerts if self.alerts else 0.0

    @property
    def recall(self) -> float:
        return self.detected / self.targets if self.targets else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "precision": round(self.precision, 4),
                "recall": round(self.recall, 4)}  # fmt: skip


def _alerts(conn: sa.Connection, rule: str) -> list[tuple[UUID, Any]]:
    rows = conn.execute(
        sa.select(rm_alerts.c.subject_id, rm_alerts.c.raised_at)
        .where(rm_alerts.c.rule == rule)
        .order_by(rm_alerts.c.position, rm_alerts.c.alert_id)
    )
    return [(UUID(r.subject_id), as_utc(r.raised_at)) for r in rows]


def report_spike_scores(alerts: list[tuple[UUID, Any]], truth: GroundTruth) -> list[Score]:
    """The rule, and the trivial rule "alert on a video's first report" (every reported
    video), against the report waves: a hit is an alert on a wave's video from its start
    to its end + SPIKE_GRACE."""
    waves = {w.video_id: w for w in truth.report_waves}

    def hit(video: UUID, at: Any) -> bool:
        w = waves.get(video)
        return w is not None and w.start <= at <= w.end + SPIKE_GRACE

    hits = [hit(v, at) for v, at in alerts]
    detected = {v for (v, _), ok in zip(alerts, hits, strict=True) if ok}
    return [Score("report_spike", len(alerts), sum(hits), len(waves), len(detected))]


def metrics(conn: sa.Connection) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in conn.execute(sa.select(rm_model_metrics).order_by("model", "metric")):
        out.setdefault(r.model, {})[r.metric] = {"value": round(float(r.value), 4),
                                                 "samples": int(r.samples)}  # fmt: skip
    return out


def build_report(
    container: Container, config: WorkloadConfig, truth: GroundTruth
) -> dict[str, Any]:
    """The report of a store the workload was driven into, projections caught up."""
    with container.read_engine.connect() as conn:
        model_metrics = metrics(conn)
        bot_alerts = _alerts(conn, "bot_burst")
        spike_alerts = _alerts(conn, "report_spike")
        by_rule = Counter(
            r.rule for r in conn.execute(sa.select(rm_alerts.c.rule))
        )  # fmt: skip
    events = load_events(container)
    bots = bot_detection_report(bot_alerts, truth, count_minute_views(e for _, e in events))
    bursts = [(b.start, b.end) for b in truth.bot_bursts]
    trends = evaluate_events(store_events(container), bursts=bursts)
    return {
        "workload": {
            "seed": config.seed,
            "days": config.days,
            "bot_bursts": len(truth.bot_bursts),
            "report_waves": len(truth.report_waves),
            "events": container.head_position,
        },
        "model_metrics": model_metrics,
        "bot_detector": {
            "model": _detection(bots.model),
            "baselines": [_detection(b) for b in bots.baselines],
            "minutes_scored": bots.minutes_scored,
        },
        "report_spike": [s.to_json() for s in report_spike_scores(spike_alerts, truth)],
        "emerging_trends": {name: _stream(r) for name, r in trends.items()},
        "alerts_by_rule": dict(sorted(by_rule.items())),
    }


def _detection(d: Any) -> dict[str, Any]:
    return {"name": d.name, "alerts": d.alerts, "true_positives": d.true_positives,
            "bursts": d.bursts, "detected": d.detected, "precision": round(d.precision, 4),
            "recall": round(d.recall, 4)}  # fmt: skip


def _stream(r: Any) -> dict[str, Any]:
    return {"detections": r.detections, "confirmed": r.confirmed,
            "precision": round(r.precision, 4), "trend_entries": r.entries,
            "caught": r.caught, "early": r.early,
            "median_lead_minutes": r.median_lead_minutes}  # fmt: skip


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(model, measure, model's figure, baseline's figure) for a readable table."""
    m = report["model_metrics"]
    out: list[tuple[str, str, str, str]] = []
    pairs = (("virality", "virality_base_rate"), ("moderation_risk", "moderation_risk_base_rate"),
             ("recommendations", "recommendations_baseline"))  # fmt: skip
    for model, base in pairs:
        for metric, v in sorted(m.get(model, {}).items()):
            b = m.get(base, {}).get(metric)
            out.append((model, f"{metric} (n={v['samples']})", f"{v['value']:.4f}",
                        f"{b['value']:.4f}" if b else "-"))  # fmt: skip
    bot = report["bot_detector"]
    rand = next((b for b in bot["baselines"] if b["name"].startswith("random")), None)
    for measure in ("precision", "recall"):
        out.append(("bot_detector", f"{measure} ({bot['model']['bursts']} bursts)",
                    f"{bot['model'][measure]:.3f}",
                    f"{rand[measure]:.3f} (random)" if rand else "-"))  # fmt: skip
    spike = report["report_spike"][0]
    for measure in ("precision", "recall"):
        out.append(("alert_rules", f"report_spike {measure} ({spike['targets']} waves)",
                    f"{spike[measure]:.3f}", "-"))  # fmt: skip
    trends = report["emerging_trends"]
    model, base = trends["emerging_trends"], trends["baseline_2x_mean"]
    out.append(
        (
            "emerging_trends",
            "precision (confirmed / detections)",
            f"{model['precision']:.3f} ({model['confirmed']}/{model['detections']})",
            f"{base['precision']:.3f} ({base['confirmed']}/{base['detections']}) 2x mean",
        )
    )
    out.append(("emerging_trends", "trend entries caught",
                f"{model['caught']}/{model['trend_entries']}",
                f"{base['caught']}/{base['trend_entries']}"))  # fmt: skip
    return out
