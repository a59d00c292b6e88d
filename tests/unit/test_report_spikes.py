"""The report-spike rule's defaults, and how its scorer counts hits against report waves."""

from datetime import timedelta
from uuid import uuid4

from adapters.evaluation.report_spikes import (
    GRACE,
    first_report,
    hits,
    reports_in_a_day,
    spike_alerts,
)
from adapters.workload.model import GroundTruth, ReportWave
from projections.alert_rules import AlertThresholds

from .test_alert_rules import T0, Story, minutes


def positioned(events: list) -> list[tuple[int, object]]:
    return list(enumerate(events, start=1))


def test_a_wave_on_a_video_nobody_watched_raises_one_spike_alert():
    # Mass reporting of a video with no views (brigading): the defaults alert once.
    s = Story().reports(minutes(*range(0, 45, 3)))  # 15 reports in 45 minutes
    alerts = spike_alerts(positioned(s.events))
    assert [(a.subject_id, a.details["views"]) for a in alerts] == [(str(s.video.id), 0)]
    assert alerts[0].raised_at == T0 + timedelta(
        minutes=3 * (AlertThresholds().report_spike_reports - 1)
    )


def test_sporadic_reports_on_a_popular_video_raise_nothing():
    s = Story().views(200, T0).reports(minutes(*range(0, 600, 50)))  # 12 reports, 1 an hour
    assert spike_alerts(positioned(s.events)) == []
    # The day rule (the simple baseline) does see them: 12 within a day.
    assert len(reports_in_a_day(positioned(s.events))) == 1


def wave(video, start) -> ReportWave:
    return ReportWave(
        video, uuid4(), uuid4(), start, start + timedelta(hours=1), 20, "spam", "keep",
        start + timedelta(hours=3),
    )  # fmt: skip


def test_a_hit_is_an_alert_on_the_waves_video_until_its_end_plus_the_grace():
    video, other = uuid4(), uuid4()
    truth = GroundTruth((), (wave(video, T0),))
    end = T0 + timedelta(hours=1)
    assert hits([(video, T0 + timedelta(minutes=30))], truth)["precision"] == 1.0
    assert hits([(video, end + GRACE)], truth)["recall"] == 1.0
    late = hits([(video, end + GRACE + timedelta(seconds=1))], truth)
    assert (late["precision"], late["recall"]) == (0.0, 0.0)
    mixed = hits([(video, T0), (video, T0 + timedelta(minutes=5)), (other, T0)], truth)
    assert (round(mixed["precision"], 3), mixed["recall"]) == (0.667, 1.0)


def test_the_trivial_baseline_alerts_on_each_videos_first_report_only():
    s = Story().reports(minutes(0, 10, 20))
    assert first_report(positioned(s.events)) == [(s.video.id, T0)]
