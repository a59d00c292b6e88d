"""`reelpulse replay` and `reelpulse evaluate` score a window's events through one code path
(issue 17, acceptance 3).

A seeded workload is loaded into a SQLite store as the demo loads one (through the
applications). `replay` over the store's whole window must report, for every figure it can
compute without the generator's truth, exactly the figure `evaluate` computes for that
workload; a narrower window (--since) must report what the harness gives for the events
that window replays.
"""

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from adapters.bootstrap import bootstrap
from adapters.cli_replay import app, open_store_read_only
from adapters.evaluation import harness
from adapters.evaluation.core import Run
from adapters.readmodel.recount import stored_events
from adapters.replay.report import normalized
from adapters.replay.selection import Selection, parse_time, store_batches
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from commands.content import ContentApplication

WORKLOAD = WorkloadConfig(
    seed=7, days=3, creators=80, viewers=1200, views_per_day=5000, bot_bursts=3, report_waves=8
)
runner = CliRunner()


def _by_key(figures: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{f['model']}.{f['measure']}": f for f in figures}


def _replay(url: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["replay", "--store", url, "--no-table", "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def test_replay_reports_the_figures_evaluate_computes_for_the_same_events(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    container = bootstrap(Settings(database_url=url, alert_actions_enabled=False))
    try:
        drive_application(container, generate(WORKLOAD).commands)
        stored = list(stored_events(container.store, container.content.mapper))
    finally:
        container.close()

    evaluated = harness.workload_run(WORKLOAD)  # what `evaluate` scores for this seed
    assert [p for p, _ in evaluated.events] == [p for p, _ in stored]  # the same log
    with_truth = _by_key([harness.figure_json(f) for f in harness.score_run(evaluated)])

    replayed = _by_key(_replay(url, tmp_path)["model_figures"])
    assert {"virality.roc_auc", "moderation_risk.roc_auc", "recommendations.hit_at_10"} <= set(
        replayed
    )
    for key, figure in replayed.items():
        assert figure == normalized(with_truth[key]), key
    # The figures left out need the generator's truth, which a store does not hold.
    assert set(with_truth) - set(replayed)

    # A window: the harness on the events that window replays (with its context events:
    # the creations the selected events need), as the selection gives them.
    since = "2026-03-03T00:00:00+00:00"
    window = _replay(url, tmp_path, "--since", since)
    assert 0 < window["input"]["events"] < len(stored)
    shared = open_store_read_only(url)
    try:
        selection = Selection(since=parse_time(since, "--since"))
        _, batches = store_batches(shared, selection, batch_size=1000)
        mapper = ContentApplication(shared).mapper
        events = [
            (n.id, mapper.to_domain_event(n)) for _, records in batches for n, _, _ in records
        ]
    finally:
        shared.close()
    expected = [harness.figure_json(f) for f in harness.score_run(Run(events))]
    assert expected, "the window must hold figures for the comparison to mean anything"
    assert window["model_figures"] == json.loads(json.dumps(normalized(expected)))
