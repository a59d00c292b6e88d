"""Every model of the evaluation harness passes the leakage check on a stored workload, and
the same model given one feature that reads the future fails it, naming that feature.

The workload is driven through the applications into an in-memory store and read back
(harness.workload_run), so the events are what a store holds, in log order.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from adapters.evaluation import harness
from adapters.evaluation.core import Prediction, Run
from adapters.evaluation.leakage import check, leaking_features
from adapters.workload import WorkloadConfig

SMALL = WorkloadConfig(
    seed=5, days=1, creators=40, viewers=800, views_per_day=4000, bot_bursts=3, report_waves=6
)


@pytest.fixture(scope="module")
def run() -> Run:
    return harness.workload_run(SMALL)


def test_every_model_is_registered_under_the_name_its_figures_carry(run: Run) -> None:
    expected = {
        "virality", "moderation_risk", "recommendations", "bot_detector", "report_spike",
        "emerging_trends", "sentiment", "comment_moderation",
    }  # fmt: skip
    assert expected <= set(harness.MODELS)
    for name in harness.MODELS:
        assert {f.model for f in harness.score_run(run, [name])} <= {name}


@pytest.mark.parametrize("name", sorted(harness.MODELS))
def test_no_model_output_depends_on_later_events(run: Run, name: str) -> None:
    def predict(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
        return harness.predictions(name, events)

    outputs = predict(run.events)
    assert outputs, f"{name} made no prediction on the workload: the check would mean nothing"
    leaks = check(predict, run.events)
    assert not leaks, "\n".join(leak.line() for leak in leaks[:10])


@pytest.mark.parametrize("name", sorted(harness.MODELS))
def test_a_feature_reading_the_future_is_caught(run: Run, name: str) -> None:
    """The model's own outputs plus `later_events`: how many events come after the output
    in the stream it was given (what a feature computed from the finished log would see)."""

    def leaky(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
        times = sorted(t for _, e in events if (t := getattr(e, "occurred_at", None)))
        out = []
        for p in harness.predictions(name, events):
            later = len(times) - _count_through(times, p.at)
            out.append(replace(p, features={**p.features, "later_events": float(later)}))
        return out

    leaks = check(leaky, run.events)
    assert leaks
    assert f"{leaks[0].model}.later_events" in leaking_features(leaks)
    assert {leak.feature for leak in leaks} == {"later_events"}


def _count_through(times: list[Any], at: Any) -> int:
    from bisect import bisect_right

    return bisect_right(times, at)
