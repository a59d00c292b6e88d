"""The Kafka relay benchmark still runs: a tiny store, one round, every figure positive.

It times nothing that the suite asserts on (benchmarks are scripts, not timed tests);
it only keeps `python -m benchmarks.kafka_relay` from rotting as the code under it moves.
"""

from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]


def test_kafka_relay_benchmark_runs_and_reports_ratios(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(REPO))  # benchmarks/ is a top-level script package
    from benchmarks import kafka_relay

    tiny = ["--events", "500", "--repeat", "1", "--ingest-messages", "200"]
    result = kafka_relay.main([*tiny, "--bootstrap", kafka_bootstrap])

    assert result.events >= 500
    assert {"relay", "raw producer", "raw per batch"} <= set(result.rates)
    assert all(len(rates) == 1 and rates[0] > 0 for rates in result.rates.values())
    assert result.ratio > 0
    assert all(value > 0 for value in result.ratios.values())
    if (REPO / "adapters" / "kafka" / "ingest.py").exists():
        assert "ingest / direct ingest" in result.ratios, result.skipped
    report = capsys.readouterr().out
    assert "| relay / raw producer |" in report
