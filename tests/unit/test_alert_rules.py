"""AlertRulesProjection: report spikes and strike thresholds over event-time windows."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.creator import Creator
from domain.engagement import Engagement
from domain.moderation import ModerationCase
from domain.video import Video
from projections.alert_rules import AlertRulesProjection, AlertRulesView, AlertThresholds
from projections.alerting import Alert

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TH = AlertThresholds(
    report_spike_reports=5,
    report_spike_window=timedelta(hours=1),
    report_spike_min_views=20,
    report_spike_critical_reports=8,
    strike_threshold=2,
)


class RecordingView(AlertRulesView):
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def raise_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


class Story:
    """A creator with one video, and helpers that return that video's events."""

    def __init__(self, at: datetime = T0) -> None:
        self.creator = Creator.register(
            creator_id=uuid4(), handle="c" + uuid4().hex[:6], display_name="C", region="US",
            occurred_at=at,
        )  # fmt: skip
        self.video = Video.publish(
            video_id=uuid4(), creator=self.creator, caption="x", hashtags=[], sound_id=None,
            duration_seconds=30, occurred_at=at,
        )  # fmt: skip
        self.case: ModerationCase | None = None
        self.events: list = list(self.creator.collect_events()) + list(self.video.collect_events())

    def views(self, n: int, at: datetime) -> "Story":
        for _ in range(n):
            e = Engagement.start(viewer_id=uuid4(), video=self.video, occurred_at=at)
            e.view(
                self.video, watch_seconds=5, completed=False, traffic_source="for_you",
                device="ios", occurred_at=at,
            )  # fmt: skip
            self.events += list(e.collect_events())
        return self

    def reports(self, times: list[datetime], reason: str = "spam") -> "Story":
        for t in times:
            if self.case is None:
                self.case = ModerationCase.open_for(self.video, occurred_at=t)
            self.case.report(reporter_id=uuid4(), reason=reason, occurred_at=t)
            self.events += list(self.case.collect_events())
        return self

    def strike(self, case_id: UUID, at: datetime, withdraw: bool = False) -> "Story":
        if withdraw:
            self.creator.withdraw_strike(case_id=case_id, occurred_at=at)
        else:
            self.creator.issue_strike(case_id=case_id, reason="spam", occurred_at=at)
        self.events += list(self.creator.collect_events())
        return self


def minutes(*ms: float) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in ms]


def run(events: list, thresholds: AlertThresholds = TH) -> list[Alert]:
    view = RecordingView()
    projection = AlertRulesProjection(thresholds)
    for position, e in enumerate(events, start=1):
        projection.process(e, position, view)
    return view.alerts


def test_a_spike_on_a_reached_video_fires_once_and_asks_for_an_escalation():
    s = Story().views(30, T0).reports(minutes(10, 20, 30, 40, 50, 55, 58))
    alerts = run(s.events)
    assert len(alerts) == 1  # the 6th and 7th report are the same spike
    a = alerts[0]
    assert (a.rule, a.subject_type, a.subject_id) == ("report_spike", "video", str(s.video.id))
    assert a.raised_at == T0 + timedelta(minutes=50)  # the 5th report, event time
    assert a.window == (T0 + timedelta(minutes=10)).isoformat()
    assert a.action == "escalate" and a.severity == "warning"
    assert a.details["case_id"] == str(ModerationCase.create_id(s.video.id))
    assert a.details["priority"] == "high"
    assert (a.details["reports"], a.details["views"]) == (5, 30)
    assert a.position == s.events.index(s.events[-3]) + 1  # the event that crossed it


def test_no_alert_below_the_report_threshold():
    s = Story().views(30, T0).reports(minutes(10, 20, 30, 40))
    assert run(s.events) == []


def test_an_unreached_video_does_not_alert_until_it_is_reached():
    s = Story().views(19, T0).reports(minutes(10, 20, 30, 40, 45))
    assert run(s.events) == []  # 5 reports but only 19 views
    s.views(1, T0 + timedelta(minutes=46)).reports(minutes(47))
    alerts = run(s.events)
    assert len(alerts) == 1
    assert (alerts[0].details["reports"], alerts[0].details["views"]) == (6, 20)


def test_the_window_slides_in_event_time():
    # 5 reports, but never 5 within one hour of event time: the oldest slide out.
    spread = minutes(0, 20, 40, 61, 82, 103, 124)
    assert run(Story().views(30, T0).reports(spread).events) == []
    # The same count within an hour fires.
    assert len(run(Story().views(30, T0).reports(minutes(0, 10, 20, 30, 59)).events)) == 1


def test_a_second_spike_after_the_first_ended_is_a_new_alert():
    times = minutes(0, 5, 10, 15, 20) + minutes(200, 205, 210, 215, 220)
    alerts = run(Story().views(30, T0).reports(times).events)
    assert [a.raised_at for a in alerts] == minutes(20, 220)
    assert len({a.id for a in alerts}) == 2


def test_a_large_spike_is_critical():
    s = Story().views(100, T0).reports(minutes(1, 2, 3, 4, 5, 6, 7, 8))
    few_views = Story().views(20, T0).reports(minutes(1, 2, 3, 4, 5))  # 5 of 20 viewers
    assert [a.severity for a in run(s.events, AlertThresholds(
        report_spike_reports=8, report_spike_min_views=20, report_spike_critical_reports=8,
    ))] == ["critical"]  # fmt: skip
    [a] = run(few_views.events)
    assert (a.severity, a.details["priority"]) == ("critical", "critical")
    # Mass reports on a video nobody watched: a spike, but the share of viewers says nothing.
    unwatched = Story().reports(minutes(1, 2, 3, 4, 5)).events
    [a] = run(unwatched, replace(TH, report_spike_min_views=0))
    assert (a.severity, a.details["priority"], a.details["views"]) == ("warning", "high", 0)


def test_strike_threshold_counts_active_strikes_net_of_withdrawals():
    s = Story()
    first, second, third = uuid4(), uuid4(), uuid4()
    s.strike(first, T0).strike(second, T0 + timedelta(days=1))
    s.strike(second, T0 + timedelta(days=2), withdraw=True)  # back to 1
    s.strike(first, T0 + timedelta(days=3), withdraw=True)  # back to 0
    s.strike(third, T0 + timedelta(days=4))  # 1: below the threshold
    s.strike(second, T0 + timedelta(days=5))  # 2 again: this level was alerted already
    alerts = run(s.events)
    assert [(a.rule, a.subject_id, a.window, a.severity) for a in alerts] == [
        ("strike_threshold", str(s.creator.id), "2", "warning")
    ]
    assert alerts[0].raised_at == T0 + timedelta(days=1) and alerts[0].action is None
    s.strike(first, T0 + timedelta(days=6))  # 3: the suspension level
    assert [(a.window, a.severity) for a in run(s.events)] == [
        ("2", "warning"), ("3", "critical"),
    ]  # fmt: skip


def test_withdrawals_keep_a_creator_below_the_threshold():
    s = Story()
    a, b = uuid4(), uuid4()
    s.strike(a, T0).strike(a, T0 + timedelta(hours=1), withdraw=True).strike(
        b, T0 + timedelta(hours=2)
    )
    assert run(s.events) == []


def test_thresholds_are_parameters():
    s = Story().views(30, T0).reports(minutes(10, 20, 30, 40, 50))
    assert len(run(s.events, TH)) == 1
    assert run(s.events, AlertThresholds(report_spike_reports=6, report_spike_min_views=20)) == []
    assert run(s.events, AlertThresholds(report_spike_reports=5, report_spike_min_views=31)) == []
    with pytest.raises(ValueError):
        AlertThresholds(report_spike_window=timedelta(0))


def _many_stories() -> list:
    rng = random.Random(5)
    stories = []
    for i in range(6):
        s = Story(T0 + timedelta(minutes=i)).views(rng.randint(10, 40), T0)
        s.reports(sorted(T0 + timedelta(minutes=rng.uniform(0, 180)) for _ in range(12)))
        s.strike(uuid4(), T0 + timedelta(hours=1)).strike(uuid4(), T0 + timedelta(hours=2))
        stories.append(s)
    # Interleave the stories' events in event time, as the log would.
    events = [e for s in stories for e in s.events]
    return sorted(events, key=lambda e: e.occurred_at if hasattr(e, "occurred_at") else T0)


def test_a_restart_from_the_checkpoint_raises_exactly_what_one_run_raises():
    events = _many_stories()
    whole = run(events)
    assert len(whole) >= 6  # the stream is not trivial: spikes and strikes fired
    view = RecordingView()
    first = AlertRulesProjection(TH)
    half = len(events) // 2
    for position, e in enumerate(events[:half], start=1):
        first.process(e, position, view)
    second = AlertRulesProjection(TH)  # a new process: state only from the checkpoint
    second.load_state(first.dump_state())
    for position, e in enumerate(events[half:], start=half + 1):
        second.process(e, position, view)
    assert view.alerts == whole
    assert [a.id for a in view.alerts] == [a.id for a in whole]
