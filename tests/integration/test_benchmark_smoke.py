"""The benchmarks still run: tiny inputs, one round, every figure positive.

They time nothing that the suite asserts on (benchmarks are scripts, not timed tests);
they only keep `python -m benchmarks.kafka_relay` and `python -m benchmarks run` (issues 7
and 14, `make bench`) from rotting as the code under them moves. The last tests check the
arithmetic the rows rest on (B9's lag, wrk's summary) on made-up inputs.
"""

import math
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
    """B1 (bulk ingest vs raw COPY), B4 and B4b (rebuilds of the core read models and of
    every projection vs scan) on the session's PostgreSQL server: every figure positive,
    the rows in the printed table."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("REELPULSE_TEST_DATABASE_URL", pg_server.admin_url)
    import benchmarks.__main__ as bench

    rows = bench.main(["run", "--rows", "B1,B4,b4b", "--scale", "tiny", "--repeat", "1",
                       "--no-docs"])  # fmt: skip

    assert [r.id for r in rows] == ["B1", "B4", "B4b"]
    assert all(r.rounds and r.figure > 0 for r in rows)
    assert all(r.ratio is not None and r.ratio > 0 for r in rows if r.baseline_rounds)
    report = capsys.readouterr().out
    assert "B1" in report and "B4b" in report and "targets met" in report


@pytest.mark.postgres
@pytest.mark.kafka
def test_issue18_kafka_scaling_row_runs_on_a_tiny_workload(
    pg_server, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B12 (keyed projections from Kafka, 2 worker processes vs 1) on the session's
    PostgreSQL server and broker: both runs reach the store's head, every event of the
    projections' topics applied once, the CPU split reported."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("REELPULSE_TEST_DATABASE_URL", pg_server.admin_url)
    monkeypatch.setenv("REELPULSE_TEST_KAFKA_BOOTSTRAP", kafka_bootstrap)
    import benchmarks.__main__ as bench

    (row,) = bench.main(["run", "--rows", "B12", "--scale", "tiny", "--repeat", "1",
                         "--no-docs"])  # fmt: skip

    assert row.id == "B12" and row.figure > 0 and row.baseline and row.ratio
    one, two = row.notes[:2]
    assert one.startswith("1 worker(s):") and two.startswith("2 worker(s):")
    assert "cores busy in the window" in one and "cores busy in the window" in two
    assert not any("lost or applied twice" in n for n in row.notes), row.notes


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_issue7_server_rows_run_on_a_tiny_workload(
    pg_server, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """B2, B3, B5-B11 (with real `reelpulse serve` and baseline servers, wrk on both sides:
    minutes, so only with `-m slow`). Every row produces its figures; none is judged."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("starts several servers (minutes): run with -m slow, or `make bench-smoke`")
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("REELPULSE_TEST_DATABASE_URL", pg_server.admin_url)
    import benchmarks.__main__ as bench

    rows = bench.main(["run", "--rows", "B2,B3,B4b,B5,B6,B7,B8,B9,B10,B11", "--scale", "tiny",
                       "--repeat", "1", "--no-docs"])  # fmt: skip

    assert [r.id for r in rows] == ["B2", "B3", "B4b", "B5", "B6", "B7", "B8", "B8", "B8",
                                    "B9", "B9", "B10", "B10", "B10", "B11"]  # fmt: skip
    lag, best = [r for r in rows if r.id == "B9"]
    others = [r for r in rows if r.id != "B9"]
    assert all(r.rounds and r.figure > 0 for r in others)
    assert all(r.baseline and r.ratio for r in others if r.baseline_rounds)
    # B9: a lag p99 (0 when the projections kept up); B4b's rate as the baseline of the
    # highest rate that held, which may be none (then it says so).
    assert lag.rounds and lag.figure >= 0 and any("run 1:" in n for n in lag.notes)
    assert best.baseline and (best.rounds or any("no rate held" in n for n in best.notes))
    # B11: both runs were checked against the store.
    (b11,) = [r for r in rows if r.id == "B11"]
    assert sum("(c)" in n for n in b11.notes) == 2


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


def test_b9_lag_is_the_time_since_the_head_first_passed_the_projections() -> None:
    """lag(t) = t - (first sample time whose head exceeded the projections' min position
    at t); 0 when they are at the head."""
    import sys

    sys.path.insert(0, str(REPO))
    from benchmarks.e2e import Sampler

    sampler = Sampler("postgresql://unused", [])
    # (time, head, min position): the head moves at 1.0 and 2.0, projections follow late.
    sampler.samples = [(0.0, 10, 10), (1.0, 20, 10), (1.5, 20, 15), (2.0, 30, 15),
                       (2.5, 30, 30), (3.0, 30, 30)]  # fmt: skip

    assert sampler.lags(0.0, 3.0) == [0.0, 0.0, 0.5, 1.0, 0.0, 0.0]
    assert sampler.lags(1.2, 2.2) == [0.5, 1.0]
    assert sampler.caught_up_after(2.0) == 0.5
    assert sampler.caught_up_after(3.0) is None


def test_wrk_summary_flags_answers_that_are_not_2xx() -> None:
    """A run with 503s (or GraphQL errors) serves fewer requests than it completed and
    names what went wrong, so that its row cannot count as met."""
    import sys

    sys.path.insert(0, str(REPO))
    from benchmarks.wrk import parse

    # As COMMON's done() writes it: numbers with six decimals, status keys as strings.
    line = ('{"requests":12.000000,"duration_us":2000000.000000,"flagged":1.000000,'
            '"statuses":{"200":10.000000,"503":2.000000},'
            '"errors":{"timeout":3.000000,"status":2.000000,"read":0.000000},'
            '"latency_us":{"p50":1500.000000,"p99":9000.000000}}')  # fmt: skip
    got = parse(line)

    assert got.ok == 9 and math.isclose(got.rate, 4.5)
    assert got.not_ok == {503: 2} and got.p(99) == 9.0
    assert got.problems() == ("2 answers 503, 1 GraphQL answers with errors, "
                              "3 socket timeout errors")  # fmt: skip


def test_write_profile_times_every_phase_of_the_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    # benchmarks/write_profile.py's first part on a tiny workload: each phase it names
    # was timed (its wrappers are on the methods the decisions call), and the methods
    # are restored afterwards.
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import write_profile
    from benchmarks.env import workload
    from commands.engagement import EngagementApplication

    catalog, work = workload(600, 10)
    signals = work.signals[:2_500]
    untimed, events = write_profile.decisions(catalog, signals, None)
    spent: dict[str, int] = {}
    timed, timed_events = write_profile.decisions(catalog, signals, spent)

    assert events == timed_events > 0
    assert untimed > 0 and timed > 0
    for label in ("rules", "encoding", "prepass", "streams to read first"):
        assert any(label in k and v > 0 for k, v in spent.items()), (label, spent)
    assert EngagementApplication._encode.__qualname__ == "EngagementApplication._encode"
