"""Replay for backtesting and export (issue 6, acceptance 3).

Given a SQLite store filled with a seeded workload (report waves and bot bursts, so that
alerts fire) and live read models built by two projections, `reelpulse replay` and
`reelpulse export` (invoked through their typer app) must: give byte-identical reports
for the same window, give explainable A/B differences for two report-spike thresholds,
give the same report from an export file as from the store, reject bad input with one
line and exit code 2, leave nothing behind when interrupted, and never touch the live
store or read models.
"""

import gzip
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from adapters.bootstrap import bootstrap
from adapters.cli_replay import app
from adapters.readmodel.tables import metadata, projection_tracking
from adapters.replay.export import write_export
from adapters.replay.run import Config, run_replay
from adapters.replay.selection import Selection
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from domain.moderation import ModerationCase

WORKLOAD = WorkloadConfig(
    seed=5, days=1, creators=25, viewers=400, views_per_day=2500, bot_bursts=2,
    report_waves=6, batch_window_seconds=600,
)  # fmt: skip
LIVE_PROJECTIONS = ("stats", "alert_rules")
runner = CliRunner()


@dataclass(frozen=True)
class Live:
    url: str
    read_url: str
    store_file: Path
    events: list[Any]  # every stored event, decoded, in log order

    def snapshot(self) -> dict[str, Any]:
        """Head, tracking rows and row counts of every read-model table."""
        engine = sa.create_engine(self.read_url)
        try:
            with engine.connect() as conn:
                counts = {
                    t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                    for t in metadata.sorted_tables
                }
                tracking = sorted(tuple(r) for r in conn.execute(sa.select(projection_tracking)))
        finally:
            engine.dispose()
        head = sa.create_engine(f"sqlite:///{self.store_file}")
        try:
            with head.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM stored_events")).scalar_one()
        finally:
            head.dispose()
        return {"counts": counts, "tracking": tracking, "stored": stored}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp("live")
    c = bootstrap(Settings(database_url=f"sqlite:///{directory}/store.db"))
    try:
        drive_application(c, generate(WORKLOAD).commands)
        for name in LIVE_PROJECTIONS:
            c.projections.runner(name).run_until_idle()
        head = c.head_position
        events = [
            c.content.mapper.to_domain_event(n)
            for n in c.store.recorder.select_notifications(start=1, limit=head + 1)
        ]
    finally:
        c.close()
    yield Live(
        url=f"sqlite:///{directory}/store.db",
        read_url=f"sqlite:///{directory}/store-read.db",
        store_file=directory / "store.db",
        events=events,
    )


def replay(*args: str) -> Any:
    result = runner.invoke(app, ["replay", "--no-table", *args])
    assert result.exit_code == 0, result.output
    return result


def test_the_same_window_replays_to_byte_identical_reports(live: Live, tmp_path: Path) -> None:
    before = live.snapshot()
    head = len(live.events)
    window = ["--store", live.url, "--from-position", "200", "--to-position", str(head * 2 // 3)]
    replay(*window, "-o", str(tmp_path / "r1.json"), "--chart", str(tmp_path / "c.svg"))
    replay(*window, "-o", str(tmp_path / "r2.json"))

    first = (tmp_path / "r1.json").read_bytes()
    assert first == (tmp_path / "r2.json").read_bytes()
    report = json.loads(first)
    assert report["input"]["positions"][0] >= 200
    assert report["input"]["positions"][1] <= head * 2 // 3
    assert len(report["projections"]) >= 10  # every registered projection ran
    a = report["results"]["a"]
    assert a["stats"]["views"] > 0 and a["models"] and a["alerts"]["total"] > 0
    assert (tmp_path / "c.svg").read_text().startswith("<svg")
    assert live.snapshot() == before  # the live store and read models are untouched


def _spike_subjects(events: list[Any], threshold: int) -> set[str]:
    """Videos with at least `threshold` reports within one hour of event time (direct)."""
    case_video, times = {}, {}
    for e in events:
        if isinstance(e, ModerationCase.Opened):
            case_video[e.originator_id] = e.video_id
        elif isinstance(e, ModerationCase.Reported):
            times.setdefault(case_video[e.originator_id], []).append(e.occurred_at)
    out = set()
    for video, ts in times.items():
        ts.sort()
        lo = 0
        for hi, t in enumerate(ts):
            while ts[lo] <= t - timedelta(hours=1):
                lo += 1
            if hi - lo + 1 >= threshold:
                out.add(f"video:{video}")
    return out


def test_ab_thresholds_give_different_explainable_alert_counts(live: Live, tmp_path: Path) -> None:
    before = live.snapshot()
    common = ["--store", live.url, "--projections", "alert_rules"]
    both = ["alert_rules.report_spike_min_views=0"]  # reach alone must not decide
    replay(
        *common,
        *(x for s in both for x in ("--set", s, "--set-b", s)),
        "--set", "alert_rules.report_spike_reports=30",
        "--set-b", "alert_rules.report_spike_reports=10",
        "-o", str(tmp_path / "ab.json"),
    )  # fmt: skip
    report = json.loads((tmp_path / "ab.json").read_text())
    a, b = (report["results"][x]["alerts"]["by_rule"]["report_spike"] for x in ("a", "b"))

    assert set(a["subjects"]) < set(b["subjects"])  # the lower threshold: a strict superset
    assert set(a["subjects"]) == _spike_subjects(live.events, 30)
    assert set(b["subjects"]) == _spike_subjects(live.events, 10)
    assert report["differences"]["alerts"]["only_in_a"] == 0
    assert report["differences"]["alerts"]["only_in_b"] == len(b["subjects"]) - len(a["subjects"])
    # Strike alerts do not depend on the report threshold: the same in both.
    assert report["results"]["a"]["alerts"]["by_rule"].get("strike_threshold") == (
        report["results"]["b"]["alerts"]["by_rule"].get("strike_threshold")
    )
    assert live.snapshot() == before


def test_replay_of_an_export_equals_replay_of_the_store(live: Live, tmp_path: Path) -> None:
    export = tmp_path / "events.jsonl.gz"
    result = runner.invoke(app, ["export", str(export), "--store", live.url])
    assert result.exit_code == 0, result.output
    assert "exported" in result.output
    lines = gzip.decompress(export.read_bytes()).splitlines()
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    assert (header["format"], header["version"]) == ("reelpulse-events", 1)
    assert trailer == {"end": True, "events": len(live.events), "last_position": len(live.events)}
    assert not list(tmp_path.glob("*.partial"))

    selection = [
        "--projections", "stats,moderation,trending,alert_rules",
        "--since", "2026-03-02T06:00:00+00:00", "--until", "2026-03-02T20:00:00+00:00",
        "--sample-videos", "0.5",
    ]  # fmt: skip
    replay("--store", live.url, *selection, "-o", str(tmp_path / "store.json"))
    replay("--input", str(export), *selection, "-o", str(tmp_path / "file.json"))
    from_store = (tmp_path / "store.json").read_bytes()
    assert from_store == (tmp_path / "file.json").read_bytes()
    report = json.loads(from_store)
    assert 0 < report["input"]["events"] < len(live.events)  # the window and sample applied


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "alert_rules.nope=1"], "unknown parameter alert_rules.nope"),
        (["--set-b", "alert_rules.report_spike_reports=x"], "bad value for alert_rules"),
        (["--set", "bot_detector.threshold=0.5", "--projections", "stats"], "not in --projections"),
        (["--types", "Video.Exploded"], "unknown event type 'Video.Exploded'"),
        (["--since", "2026-03-02T06:00:00"], "--since needs a timezone"),
        (["--from-position", "10", "--to-position", "5"], "--to-position is before"),
        (["--projections", "stats,nope"], "unknown projection 'nope'"),
        (["--sample-videos", "1.5"], "--sample-videos must be a share"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(live: Live, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["replay", "--store", live.url, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output


def test_bad_sources_are_one_line_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["replay", "--store", f"sqlite:///{tmp_path}/none.db"])
    assert missing.exit_code == 2 and "no event store at" in missing.output
    assert not (tmp_path / "none.db").exists()  # not created by looking
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(b'{"format": "reelpulse-events", "version": 1, '
                                        b'"positions": [1, 9]}\n'))  # fmt: skip
    result = runner.invoke(app, ["replay", "--input", str(truncated)])
    assert result.exit_code == 2 and "is truncated" in result.output, result.output
    future = tmp_path / "v2.jsonl.gz"
    future.write_bytes(gzip.compress(b'{"format": "reelpulse-events", "version": 2}\n'))
    result = runner.invoke(app, ["replay", "--input", str(future)])
    assert result.exit_code == 2 and "version 2 export" in result.output, result.output


def test_an_interrupted_export_or_replay_leaves_nothing(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.cli_replay import open_store_read_only
    from adapters.replay.selection import store_batches
    from commands.content import ContentApplication

    store = open_store_read_only(live.url)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    def interrupted() -> Iterator[Any]:
        _span, batches = store_batches(store, Selection(), batch_size=500)
        yield next(batches)
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            write_export(
                tmp_path / "x.jsonl.gz", interrupted(), selection=Selection(), span=(1, 2),
                source=live.url,
            )  # fmt: skip
        with pytest.raises(KeyboardInterrupt):
            run_replay(
                interrupted(), mapper=ContentApplication(store).mapper, selection=Selection(),
                names=["stats", "alert_rules"], configs=[Config("a", {}), Config("b", {
                    "alert_rules": {"report_spike_reports": 3}})],
            )  # fmt: skip
    finally:
        store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no export, no .partial
    assert list((tmp_path / "tmp").iterdir()) == []  # both sandboxes removed


def test_export_reports_selected_and_context_events_apart(live: Live, tmp_path: Path) -> None:
    """Issue 16: `export --types ...` counted the context events it adds (the creations
    the selected ones need) as if selected. They are reported apart, as replay does."""
    export = tmp_path / "likes.jsonl.gz"
    result = runner.invoke(
        app, ["export", str(export), "--store", live.url, "--types", "Engagement.Liked"]
    )
    assert result.exit_code == 0, result.output
    lines = gzip.decompress(export.read_bytes()).splitlines()[1:-1]
    topics = [json.loads(line)["topic"] for line in lines]
    selected = sum(1 for t in topics if t.endswith("Engagement.Liked"))
    context = len(topics) - selected
    assert selected and context, (selected, context)
    words = " ".join(result.output.split())
    assert f"{len(topics):,} events: {selected:,} selected + {context:,} context" in words, words
