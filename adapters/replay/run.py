"""Run a replay: selected events -> one or two sandboxes (A/B) -> the report.

With a B configuration, B's sandbox runs only the projections whose parameters differ
from A's; the others would produce exactly A's output (a projection depends only on its
parameters and the events), so B's report reads those from A's sandbox.
"""

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Mapper

from adapters.replay import params as P
from adapters.replay.labels import Decisions
from adapters.replay.report import FORMAT, VERSION, alert_differences, differences, summarize
from adapters.replay.sandbox import Sandbox, check_sections, replay_specs
from adapters.replay.selection import Batch, Selection

OnBatch = Callable[[int, int], None]  # (last position scanned, events applied so far)


@dataclass(frozen=True)
class Config:
    label: str  # "a" or "b"
    overrides: P.Overrides


def run_replay(
    batches: Iterator[Batch],
    *,
    mapper: Mapper[Any],
    selection: Selection,
    names: Sequence[str],
    configs: Sequence[Config],
    on_batch: OnBatch | None = None,
    score: bool = True,
) -> dict[str, Any]:
    """Apply the batches to a sandbox per configuration and return the report. With
    `score`, the replayed events also go through the evaluation harness's scorers (the
    code path of `reelpulse evaluate`, default parameters): "model_figures"."""
    for config in configs:
        check_sections(config.overrides, names)
    built = {c.label: P.build(c.overrides) for c in configs}
    first = configs[0]
    decisions, by_type = Decisions(), Counter[str]()
    events, contexts, positions, times = 0, 0, [None, None], [None, None]
    scored: list[tuple[int, Any]] = []
    with ExitStack() as stack:
        sandboxes: dict[str, Sandbox] = {}
        runs_in: dict[str, dict[str, Sandbox]] = {}  # label -> projection -> its sandbox
        for c in configs:
            own = [
                n for n in names
                if c is first or _section(built[c.label], n) != _section(built[first.label], n)
            ]  # fmt: skip
            if own:
                sandboxes[c.label] = stack.enter_context(
                    Sandbox(replay_specs(own, built[c.label]), label=c.label)
                )
            runs_in[c.label] = {
                n: sandboxes[c.label] if n in own else sandboxes[first.label] for n in names
            }
        for scanned, records in batches:
            applied = []
            for n, _, context in records:
                event = mapper.to_domain_event(n)  # upcasts old versions, as live
                applied.append((n.id, n.topic, event))
                decisions.observe(event)
                if context:
                    contexts += 1
                    continue
                by_type[n.topic.split(":", 1)[1]] += 1
                positions[0] = positions[0] or n.id
                positions[1] = n.id
                events += 1
                when = getattr(event, "occurred_at", None)
                if when is not None:
                    times[0] = when if times[0] is None or when < times[0] else times[0]
                    times[1] = when if times[1] is None or when > times[1] else times[1]
            for sandbox in sandboxes.values():
                sandbox.apply(applied)
            if score:
                scored += [(position, event) for position, _, event in applied]
            if on_batch is not None:
                on_batch(scanned, events)
        results = {
            c.label: summarize(
                {n: sb.read_engine for n, sb in runs_in[c.label].items()},
                built[c.label]["trending"],
                decisions,
            )
            for c in configs
        }
    report: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "input": {
            "selection": selection.describe(),
            "events": events,
            "context_events": contexts,
            "positions": positions,
            "event_time": [t.isoformat() if t else None for t in times],
            "by_type": dict(sorted(by_type.items())),
        },
        "projections": list(names),
        "configs": {c.label: {"overrides": P.describe(c.overrides)} for c in configs},
        "decisions": {
            "decided_videos": len(decisions.decided),
            "harmful_videos": len(decisions.harmful),
        },
        "results": results,
    }
    if score:
        report["model_figures"] = model_figures(scored)
    if len(configs) == 2:
        a, b = (results[c.label] for c in configs)
        report["differences"] = {
            "paths": differences(a, b),
            "alerts": alert_differences(a, b),
        }
    return report


def model_figures(events: Sequence[tuple[int, Any]]) -> list[dict[str, Any]]:
    """The evaluation harness's figures for these events (no ground truth: the figures
    whose labels need the generator's truth are left out by their scorers)."""
    from adapters.evaluation.core import Run
    from adapters.evaluation.harness import figure_json, score_run

    return [figure_json(f) for f in score_run(Run(events))]


def _section(built: Mapping[str, Any], name: str) -> Any:
    return built.get(name)
