"""Replay parameter overrides: `--set section.field=value` and TOML files, parsed by each
field's declared type and validated by the params dataclass, with one-line errors."""

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.replay.params import (
    ParamError,
    TrendingWindows,
    build,
    describe,
    load_toml,
    parse_assignments,
    parse_duration,
)
from adapters.replay.sandbox import replay_specs
from projections.alert_rules import AlertThresholds
from projections.moderation_queue import PriorityWeights
from projections.sentiment import SentimentProjection
from projections.virality import ViralityProjection


def test_assignments_are_parsed_by_field_type_and_later_ones_win() -> None:
    overrides = parse_assignments(
        [
            "alert_rules.report_spike_reports=5",
            "alert_rules.report_spike_window=30m",
            "moderation.boost_critical=7.5",
            "trending.windows=15,60",
            "alert_rules.report_spike_reports=6",
        ]
    )
    built = build(overrides)
    assert built["alert_rules"] == AlertThresholds(
        report_spike_reports=6, report_spike_window=timedelta(minutes=30)
    )
    assert built["moderation"] == PriorityWeights(boost_critical=7.5)
    assert built["trending"] == TrendingWindows(windows=(15, 60))
    assert built["bot_detector"].threshold == 0.9  # untouched sections keep their defaults


def test_describe_is_canonical_json() -> None:
    overrides = parse_assignments(["trending.windows=15,60", "alert_rules.report_spike_window=2h"])
    assert describe(overrides) == {
        "alert_rules": {"report_spike_window": 7200.0},
        "trending": {"windows": [15, 60]},
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1.5h", 5400), ("2d", 172800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("alerts.report_spike_reports=5", "unknown parameter section 'alerts'"),
        ("alert_rules.spike=5", "unknown parameter alert_rules.spike (known: "),
        ("alert_rules.report_spike_reports=five", "bad value for alert_rules.report_spike_reports"),
        ("alert_rules.report_spike_reports=2.5", "expected an int"),
        ("alert_rules.report_spike_window=soon", "a duration like 90s"),
        ("moderation.reach=inf", "not a finite number"),
        ("alert_rules.report_spike_reports", "expected section.field=value"),
        ("report_spike_reports=5", "expected section.field=value"),
    ],
)
def test_bad_assignments_fail_with_one_line(assignment: str, message: str) -> None:
    with pytest.raises(ParamError) as e:
        parse_assignments([assignment])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_values_are_validated_by_the_params_class() -> None:
    with pytest.raises(ParamError, match="invalid alert_rules parameters: thresholds must be"):
        build(parse_assignments(["alert_rules.report_spike_reports=0"]))
    with pytest.raises(ParamError, match="invalid trending parameters: windows must be"):
        build(parse_assignments(["trending.windows=0"]))
    with pytest.raises(ParamError, match="invalid emerging_trends parameters: unknown detector"):
        build(parse_assignments(["emerging_trends.detector=magic"]))
    with pytest.raises(ParamError, match="bandit must be one of thompson, ucb, epsilon"):
        build(parse_assignments(["recommendations.bandit=greedy"]))
    with pytest.raises(ParamError, match="invalid virality parameters: unknown input 'views'"):
        build(parse_assignments(["virality.inputs=views"]))
    with pytest.raises(ParamError, match="invalid sentiment parameters: bucket_minutes"):
        build(parse_assignments(["sentiment.bucket_minutes=0"]))


def test_sentiment_and_virality_replay_with_their_parameters() -> None:
    overrides = parse_assignments([
        "virality.inputs=log_views_1h,log_creator_followers", "virality.replay=0",
        "sentiment.drop=0.3", "sentiment.recent_hours=2",
    ])  # fmt: skip
    specs = {
        s.name: s.projection for s in replay_specs(["sentiment", "virality"], build(overrides))
    }

    virality, sentiment = specs["virality"], specs["sentiment"]
    assert isinstance(virality, ViralityProjection) and isinstance(sentiment, SentimentProjection)
    assert virality.params.inputs == ("log_views_1h", "log_creator_followers")
    assert virality.params.replay == 0
    assert (sentiment.params.drop, sentiment.params.recent_hours) == (0.3, 2.0)
    assert sentiment.scorer is not None  # the registry's scorer, kept
    # An optional field takes `none` (virality: learn from every feature).
    assert build(parse_assignments(["virality.inputs=none"]))["virality"].inputs is None


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text(
        '[alert_rules]\nreport_spike_reports = 5\nreport_spike_window = "45m"\n'
        "[trending]\nwindows = [30, 120]\n"
    )
    built = build(load_toml(path))
    assert built["alert_rules"].report_spike_reports == 5
    assert built["alert_rules"].report_spike_window == timedelta(minutes=45)
    assert built["trending"].windows == (30, 120)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[alert_rules\n", "is not valid TOML"),
        ("report_spike_reports = 5\n", "'report_spike_reports' must be a table"),
        ("[alert_rules]\nreport_spike_reports = true\n", "is not an integer"),
        ("[alert_rules]\nreport_spike_reports = 2.5\n", "is not an integer"),
    ],
)
def test_bad_toml_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ParamError, match=message):
        load_toml(path)


def test_missing_toml_file(tmp_path: Path) -> None:
    with pytest.raises(ParamError, match="cannot read"):
        load_toml(tmp_path / "missing.toml")
