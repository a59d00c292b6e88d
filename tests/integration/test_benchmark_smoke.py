"""The benchmarks still run: tiny inputs, one round, every figure positive.

They time nothing that the suite asserts on (benchmarks are scripts, not timed tests);
they only keep `python -m benchmarks.kafka_relay` and `python -m benchmarks run` (issue 7,
`make bench`) from rotting as the code under them moves.
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.kafka
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


@pytest.mark.postgres
def test_issue7_in_process_rows_run_on_a_tiny_workload(
    pg_server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """B1 (bulk ingest vs raw COPY) and B4 (rebuild vs scan) on the session's PostgreSQL
    server: every figure positive, both rows in the printed table."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("REELPULSE_TEST_DATABASE_URL", pg_server.admin_url)
    import benchmarks.__main__ as bench

    rows = bench.main(["run", "--rows", "B1,B4", "--scale", "tiny", "--repeat", "1",
                       "--no-docs"])  # fmt: skip

    assert [r.id for r in rows] == ["B1", "B4"]
    assert all(r.rounds and r.figure > 0 for r in rows)
    assert all(r.ratio is not None and r.ratio > 0 for r in rows if r.baseline_rounds)
    report = capsys.readouterr().out
    assert "B1" in report and "B4" in report and "targets met" in report


@pytest.mark.postgres
@pytest.mark.slow
def test_issue7_server_rows_run_on_a_tiny_workload(
    pg_server, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """B2, B3, B5, B6, B7 and B8 (with real `reelpulse serve` and baseline servers: minutes,
    so only with `-m slow`)."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("starts several servers (minutes): run with -m slow, or `make bench-smoke`")
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("REELPULSE_TEST_DATABASE_URL", pg_server.admin_url)
    import benchmarks.__main__ as bench

    rows = bench.main(["run", "--rows", "B2,B3,B5,B6,B7,B8", "--scale", "tiny", "--repeat", "1",
                       "--no-docs"])  # fmt: skip

    assert [r.id for r in rows] == ["B2", "B3", "B5", "B6", "B7", "B8", "B8", "B8"]
    assert all(r.rounds and r.figure > 0 for r in rows)
    assert all(r.baseline and r.ratio for r in rows if r.baseline_rounds)


def test_issue7_docs_section_is_replaced_not_appended(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO))
    from benchmarks.core import write_docs

    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## Kafka relay\n\nkept\n")
    write_docs(docs, "| first |", "make bench", "2 CPUs", 60)
    write_docs(docs, "| second |", "make bench", "2 CPUs", 60)

    text = docs.read_text()
    assert "kept" in text and "| second |" in text and "| first |" not in text
    assert text.count("bench:results:begin") == 1


def test_issue7_watchdog_reports_a_stalled_row_as_not_measured() -> None:
    """A row group that runs past its limit is interrupted (even in a blocking wait) and
    reported as not measured, so that `make bench` can never hang on one row."""
    import sys
    import time

    sys.path.insert(0, str(REPO))
    import benchmarks.__main__ as bench

    started = time.perf_counter()
    rows = bench.guarded(["B5"], lambda: time.sleep(30) or [], keep_going=True, limit=0.5)

    assert time.perf_counter() - started < 5
    assert [r.id for r in rows] == ["B5"] and rows[0].met is False
    assert rows[0].notes == ["not measured: timed out after 0.5 s"]
