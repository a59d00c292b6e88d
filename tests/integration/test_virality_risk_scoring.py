"""Virality and moderation risk on a small stored workload: no output reads a later event
(the leakage check), and the scorers give each measure beside both baselines."""

import pytest

from adapters.evaluation import harness, moderation_risk, virality
from adapters.evaluation.core import Run
from adapters.evaluation.leakage import check
from adapters.workload import WorkloadConfig

SMALL = WorkloadConfig(
    seed=5, days=2, creators=40, viewers=800, views_per_day=3000, bot_bursts=2, report_waves=8
)


@pytest.fixture(scope="module")
def run() -> Run:
    return harness.workload_run(SMALL)


@pytest.mark.parametrize("scorer", [virality, moderation_risk], ids=["virality", "risk"])
def test_no_prediction_depends_on_later_events(run: Run, scorer) -> None:
    assert scorer.predict(run.events), "no prediction: the check would mean nothing"
    leaks = check(scorer.predict, run.events)
    assert not leaks, "\n".join(leak.line() for leak in leaks[:10])


def test_moderation_risk_figures_come_with_both_baselines(run: Run) -> None:
    figures = {f.measure: f for f in moderation_risk.score(run)}
    assert set(figures) == {"roc_auc", "log_loss"}
    for f in figures.values():
        assert f.samples > 0 and f.trivial is not None and f.rule is not None
        assert f.rule_name.startswith("max_auto_flag_score")


def test_a_store_replay_without_truth_still_scores(run: Run) -> None:
    """Both models' labels are in the events (24-hour viewers, decisions): no truth needed."""
    replayed = Run(run.events, None, None)
    assert [f.key for f in moderation_risk.score(replayed)] == [
        "moderation_risk.roc_auc", "moderation_risk.log_loss",
    ]  # fmt: skip
    assert virality.score(replayed) == virality.score(run)
