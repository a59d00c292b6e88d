"""`reelpulse evaluate`: every model beside its trivial baseline and its simple rule, over
held-out seeds (adapters/evaluation/harness.py holds the method)."""

import os
import time
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)


def evaluate_cmd(
    seeds: Annotated[
        int, typer.Option(min=1, max=20, help="Held-out seeds to report on (101, 102, ...)")
    ] = 3,
    first_seed: Annotated[int, typer.Option(help="The first held-out seed")] = 101,
    days: Annotated[int, typer.Option(min=1, max=30, help="Simulated days per seed")] = 7,
    bot_bursts: Annotated[int, typer.Option(min=0, help="Injected bot bursts per seed")] = 30,
    report_waves: Annotated[int, typer.Option(min=0, help="Injected report waves per seed")] = 80,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", metavar="NAME", help="Only this model (repeatable)"),
    ] = None,
    tune: Annotated[
        bool, typer.Option(help="Also show the tuning seed's figures (not judged)")
    ] = True,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Also write the report as JSON to this file")
    ] = None,
) -> None:
    """Measure every model on seeded workloads, each beside its trivial baseline and the
    simple rule a data scientist would try first.

    Each seed's workload (with its ground truth: bot campaigns, report waves, trends,
    comment sentiment...) is driven through the applications into an in-memory store and
    read back; each model runs over the stored events predict-then-learn, and is scored
    only on labels known later in event time. Parameters were tuned on seed 42 alone; the
    verdict of a figure is over the held-out seeds: its mean minus its spread must clear
    its target and both baselines' means. Nothing is written to your stores; the same
    options give the same report.
    """
    from adapters.evaluation import harness

    names = list(model or harness.MODELS)
    unknown = sorted(set(names) - set(harness.MODELS))
    if unknown:
        known = ", ".join(harness.MODELS) or "none"
        console.print(f"[red]unknown model {', '.join(unknown)}; known: {known}[/red]")
        raise typer.Exit(2)
    config = replace(
        harness.EVALUATION_CONFIG, days=days, bot_bursts=bot_bursts, report_waves=report_waves
    )
    held_out = harness.held_out_seeds(seeds, first_seed)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console,
    ) as progress:  # fmt: skip

        def on_run(seed: int) -> Any:
            task = progress.add_task(f"seed {seed}: driving the workload", total=None)

            def advance(n: int) -> None:
                progress.update(task, advance=n)

            return advance

        report = harness.evaluate(config, held_out, tune=tune, models=names, on_run=on_run)
    wide = Console(width=150)
    wide.print(table(report))
    for line in baselines(report):
        wide.print(line, highlight=False)
    met = [s for s in report["summaries"] if s["met"] is not None]
    passed = sum(1 for s in met if s["met"])
    if json_out:
        tmp = f"{json_out}.tmp"
        with open(tmp, "w") as f:
            f.write(harness.to_json(report))
        os.replace(tmp, json_out)  # never a half-written report
    console.print(
        f"{passed}/{len(met)} targets met on seeds {', '.join(map(str, held_out))} "
        f"({days} days each) in {time.perf_counter() - started:.0f}s"
    )


def _mean(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None:
        return "-"
    return f"{entry['mean']:.3f}"


def table(report: dict[str, Any]) -> Table:
    seeds = ", ".join(str(s) for s in report["held_out_seeds"])
    t = Table(title=f"models beside their baselines, held-out seeds {seeds}")
    for column in ("model", "measure", "target", "model mean ± spread", "trivial", "simple rule",
                   "tuning seed", "verdict"):  # fmt: skip
        t.add_column(column)
    tuning = {(f["model"], f["measure"]): f["value"] for f in report["tuning"]}
    for s in report["summaries"]:
        value = "-" if s["mean"] is None else f"{s['mean']:.3f} ± {s['spread']:.3f}"
        verdict = {True: "[green]met[/green]", False: f"[red]not met[/red]: {s['why']}",
                   None: "reported"}[s["met"]]  # fmt: skip
        tuned = tuning.get((s["model"], s["measure"]))
        t.add_row(
            s["model"], s["measure"], s["target"], value, _mean(s["trivial"]), _mean(s["rule"]),
            "-" if tuned is None else f"{tuned:.3f}", verdict,
        )  # fmt: skip
    return t


def baselines(report: dict[str, Any]) -> list[str]:
    """One line per model naming its trivial baseline and its simple rule."""
    seen: dict[str, tuple[str, str]] = {}
    for s in report["summaries"]:
        names = seen.setdefault(s["model"], (s["trivial_name"], s["rule_name"]))
        if not all(names):
            seen[s["model"]] = (names[0] or s["trivial_name"], names[1] or s["rule_name"])
    return [f"{m}: trivial = {t or '-'}; simple rule = {r or '-'}" for m, (t, r) in seen.items()]
