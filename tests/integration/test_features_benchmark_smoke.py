"""The feature-models benchmark still runs (tiny size); it asserts nothing about speed."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_features_benchmark_runs_on_a_tiny_workload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))  # benchmarks/ is a top-level script package
    from benchmarks.features import FEATURES, measure, report

    result = measure(days=1, repeat=1, scale=0.1)
    assert result["events"] > 0
    for variant in ("with models", "without models"):
        [round_] = result["rounds"][variant]
        assert set(round_) == set(FEATURES)  # every feature projection ran in both variants
    table, total = report(result)
    assert table.row_count == len(FEATURES) + 1 and total > 0
