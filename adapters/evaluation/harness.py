"""`reelpulse evaluate`: every model beside its baselines, over held-out seeds.

One code path scores everything: `score_run` takes a `Run` (events in log order, and the
generator's truth when there is one) and calls each model's scorer. `reelpulse evaluate`
builds runs from generated workloads (driven through the applications into an in-memory
store, then read back from it, so the events are exactly what a store holds);
`reelpulse replay` builds one from a store's window. Parameters were tuned on
TUNING_SEED only: the verdicts come from other seeds (HELD_OUT_FIRST, +1, ...), as
mean and spread, and the tuning seed's figures are shown apart.
"""

import importlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from adapters.evaluation.core import Figure, Prediction, Run, Summary, mean_spread, summarize
from adapters.workload.model import WorkloadConfig

TUNING_SEED = 42
HELD_OUT_FIRST = 101
# A week per seed: virality's labels come 24 h after publication and its scores count
# once it learned from 50 of them, so a d-day run scores about d - 1.3 days of videos
# (3 days: ~230 predictions and 21-28 positives a seed, too few for a stable AUC).
EVALUATION_CONFIG = WorkloadConfig(seed=TUNING_SEED, days=7, bot_bursts=30, report_waves=80)

# The name a model's figures carry -> its scorer module, which has `score(run: Run) ->
# list[Figure]` and `predict(events) -> list[Prediction]` (every output of its model, for
# the leakage check).
MODELS: dict[str, str] = {
    "report_spike": "adapters.evaluation.report_spikes",
    "emerging_trends": "adapters.evaluation.trends",
    "sentiment": "adapters.evaluation.sentiment",
    "comment_moderation": "adapters.evaluation.comment_moderation",
    "virality": "adapters.evaluation.virality",
    "moderation_risk": "adapters.evaluation.moderation_risk",
    "recommendations": "adapters.evaluation.recommendations",
    "bot_detector": "adapters.evaluation.bots",
}


def scorer(name: str) -> Any:
    return importlib.import_module(MODELS[name])


def workload_run(config: WorkloadConfig, progress: Callable[[int], None] | None = None) -> Run:
    """Generate the workload, drive it through the applications into an in-memory store
    and read every stored event back, in log order."""
    from adapters.bootstrap import bootstrap
    from adapters.readmodel.recount import stored_events
    from adapters.settings import Settings
    from adapters.workload import drive_application, generate

    workload = generate(config)
    settings = Settings(database_url="memory://", alert_actions_enabled=False)
    container = bootstrap(settings)
    try:
        drive_application(container, workload.commands, progress=progress)
        events = list(stored_events(container.store, container.content.mapper))
    finally:
        container.close()
    return Run(events, workload.truth, config.seed)


def score_run(run: Run, models: Sequence[str] | None = None) -> list[Figure]:
    figures: list[Figure] = []
    for name in models or list(MODELS):
        figures += scorer(name).score(run)
    return figures


def predictions(name: str, events: Sequence[tuple[int, Any]]) -> list[Prediction]:
    out: list[Prediction] = scorer(name).predict(events)
    return out


def held_out_seeds(count: int, first: int = HELD_OUT_FIRST) -> list[int]:
    seeds = [first + i for i in range(count)]
    return [s for s in seeds if s != TUNING_SEED] or seeds


def evaluate(
    config: WorkloadConfig,
    seeds: Sequence[int],
    *,
    tune: bool = True,
    models: Sequence[str] | None = None,
    on_run: Callable[[int], Callable[[int], None] | None] | None = None,
) -> dict[str, Any]:
    """The report: figures per seed, their summaries and verdicts over `seeds`, and the
    tuning seed's figures (not judged) when `tune`."""
    per_seed: dict[int, list[Figure]] = {}
    for seed in seeds:
        run = workload_run(replace(config, seed=seed), on_run(seed) if on_run else None)
        per_seed[seed] = score_run(run, models)
    tuning: list[Figure] = []
    if tune:
        run = workload_run(
            replace(config, seed=TUNING_SEED), on_run(TUNING_SEED) if on_run else None
        )
        tuning = score_run(run, models)
    summaries = summarize(per_seed)
    return {
        "workload": {"days": config.days, "bot_bursts": config.bot_bursts,
                     "report_waves": config.report_waves, "views_per_day": config.views_per_day},
        "tuning_seed": TUNING_SEED if tune else None,
        "held_out_seeds": list(seeds),
        "summaries": [_summary_json(s) for s in summaries],
        "per_seed": {str(seed): [figure_json(f) for f in figs] for seed, figs in per_seed.items()},
        "tuning": [figure_json(f) for f in tuning],
    }  # fmt: skip


def _clean(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 4)


def figure_json(f: Figure) -> dict[str, Any]:
    return {"model": f.model, "measure": f.measure, "value": _clean(f.value),
            "trivial": _clean(f.trivial), "rule": _clean(f.rule), "samples": f.samples,
            "trivial_name": f.trivial_name, "rule_name": f.rule_name}  # fmt: skip


def _summary_json(s: Summary) -> dict[str, Any]:
    mean, spread = s.mean
    trivial = summarize_values(s.trivial)
    rule = summarize_values(s.rule)
    met, why = s.verdict()
    return {
        "model": s.model, "measure": s.measure, "target": s.target.describe(),
        "mean": _clean(mean), "spread": _clean(spread), "values": [_clean(v) for v in s.values],
        "trivial": trivial, "trivial_name": s.trivial_name, "rule": rule,
        "rule_name": s.rule_name, "samples": list(s.samples), "met": met, "why": why,
    }  # fmt: skip


def summarize_values(values: Sequence[float]) -> dict[str, float | None] | None:
    if not values:
        return None
    mean, spread = mean_spread(values)
    return {"mean": _clean(mean), "spread": _clean(spread)}


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"
