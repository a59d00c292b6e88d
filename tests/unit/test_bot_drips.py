"""BotDetectorProjection's cohort stage: bots that imitate people, spread over hours.

Given regular viewers (seen for hours) and a trickle of real newcomers on a few videos,
when tens of new accounts watch one video once or twice each over hours, with ordinary
watch times, devices and sources (no minute stands out), then the detector raises one
alert for it, from the cohort stage; and the same traffic without them raises none.
"""

import pickle
import random
from datetime import datetime, timedelta
from uuid import UUID

from projections.alerting import Alert
from projections.bot_cohorts import CohortScore
from projections.bot_detector import BotDetectorProjection
from unit.test_bot_detector import PARAMS, T0, RecordingView, publish, run, uid, view

HOURS = 12
DRIP_START = T0 + timedelta(hours=7)


class CohortRecordingView(RecordingView):
    def cohort(self, video_id, slot_end, score: CohortScore) -> None:
        self.calls.append(("cohort", video_id, slot_end, score))

    def cohorts(self, video_id: UUID) -> list[tuple[datetime, CohortScore]]:
        """(slot end, score) of every slot the video was a candidate in."""
        return [(c[2], c[3]) for c in self.calls if c[0] == "cohort" and c[1] == video_id]


def human_view(rng: random.Random, video, at, viewer: UUID) -> list:
    """A view as people make them: any watch time, device and source, a like now and then."""
    return view(
        video, at, viewer, watch=round(rng.uniform(0.5, 40.0), 2), like=rng.random() < 0.05,
        source=rng.choice(("for_you", "for_you", "for_you", "search", "profile", "share")),
        device=rng.choice(("ios", "android", "android", "web")),
    )  # fmt: skip


def organic(videos: list, seed: int) -> list:
    """12 hours: 60 regulars watching about three videos a minute, and a newcomer every
    ten minutes or so (new accounts whose first views are, of course, narrow)."""
    rng = random.Random(seed)
    regulars = [uid() for _ in range(60)]
    events: list = []
    for minute in range(HOURS * 60):
        at = T0 + timedelta(minutes=minute)
        for _ in range(rng.choice((2, 3, 3, 4))):
            video = rng.choice(videos)
            moment = at + timedelta(seconds=rng.uniform(0, 59))
            events += human_view(rng, video, moment, rng.choice(regulars))
        if rng.random() < 0.1:
            newcomer = uid()
            for k in range(rng.choice((1, 1, 2))):
                moment = at + timedelta(minutes=5 * k, seconds=rng.uniform(0, 59))
                events += human_view(rng, rng.choice(videos), moment, newcomer)
    return events


def drip(video, start, hours: float, accounts: int, seed: int) -> list:
    """New accounts, each watching the target once or twice within the campaign."""
    rng, events = random.Random(seed), []
    for _ in range(accounts):
        bot = uid()
        for _ in range(rng.choice((1, 1, 2))):
            at = start + timedelta(seconds=rng.uniform(0, hours * 3600))
            events += human_view(rng, video, at, bot)
    return events


def scenario(seed: int, *, accounts: int = 40, hours: float = 3.0) -> tuple:
    published = [publish(T0) for _ in range(8)]
    videos = [v for v, _ in published]
    target = videos[-1]
    events = organic(videos, seed)
    if accounts:
        events += drip(target, DRIP_START, hours, accounts, seed)
    events.sort(key=lambda e: e.occurred_at)
    return target, [e for _, p in published for e in p] + events


def alerts_of(events: list) -> tuple[list[Alert], CohortRecordingView]:
    recording = CohortRecordingView()
    run(BotDetectorProjection(PARAMS), events, recording)
    return recording.alerts(), recording


def test_a_drip_of_new_accounts_raises_one_cohort_alert_within_the_campaign():
    target, events = scenario(seed=1)
    alerts, recording = alerts_of(events)

    [alert] = alerts
    assert (alert.subject_id, alert.details["stage"], alert.action) == (
        str(target.id), "cohort", "auto_flag",
    )  # fmt: skip
    assert DRIP_START < alert.raised_at <= DRIP_START + timedelta(hours=3)
    assert alert.details["z_flagged"] >= PARAMS.cohort_z or alert.details["z_repeated"] >= (
        PARAMS.cohort_z
    )
    # No single minute of the drip was loud enough for the minute stage.
    assert max(c[3] for c in recording.scores(target.id)) < PARAMS.threshold


def test_the_same_traffic_without_the_drip_raises_no_alert():
    target, events = scenario(seed=1, accounts=0)
    alerts, recording = alerts_of(events)

    assert alerts == []
    # The target was a candidate now and then (newcomers are new and narrow too), and
    # its score stayed far below the threshold.
    scores = [c.z for _, c in recording.cohorts(target.id)]
    assert max(scores, default=0.0) < PARAMS.cohort_z


def test_a_campaign_of_many_hours_is_one_alert_not_one_per_slot():
    target, events = scenario(seed=2, accounts=90, hours=5.0)
    alerts, recording = alerts_of(events)

    [alert] = alerts
    anomalous = [end for end, c in recording.cohorts(target.id) if c.z >= PARAMS.cohort_z]
    assert len(anomalous) > 6  # the evidence lasted hours; the alert was raised once,
    assert alert.window == min(anomalous).strftime("%Y-%m-%dT%H:%MZ")  # keyed by its start
    assert max(anomalous) - min(anomalous) > timedelta(hours=2)


def test_a_restart_from_the_checkpoint_scores_the_drip_exactly_like_one_run():
    _, events = scenario(seed=3)
    straight = CohortRecordingView()
    run(BotDetectorProjection(PARAMS), events, straight)

    resumed = CohortRecordingView()
    first = BotDetectorProjection(PARAMS)
    half = len(events) * 2 // 3  # inside the drip: accounts, windows and totals in flight
    assert events[half].occurred_at > DRIP_START
    run(first, events[:half], resumed)
    second = BotDetectorProjection(PARAMS)
    second.load_state(first.dump_state())
    run(second, events[half:], resumed, start=half + 1)

    assert resumed.calls == straight.calls
    assert [a.details["stage"] for a in straight.alerts()] == ["cohort"]


def test_an_object_with_only_an_event_time_closes_slots_and_is_otherwise_ignored():
    from adapters.evaluation.leakage import Tick

    target, events = scenario(seed=1)
    cut = DRIP_START + timedelta(hours=2, minutes=30)
    before = [e for e in events if e.occurred_at < cut]
    alerts, _ = alerts_of([*before, Tick(cut)])
    [alert] = alerts
    assert alert.subject_id == str(target.id) and alert.raised_at <= cut


def test_a_checkpoint_from_before_the_cohort_stage_is_dropped_not_loaded_half():
    _, events = scenario(seed=3)
    first = BotDetectorProjection(PARAMS)
    run(first, events[:500], CohortRecordingView())
    old = first.state
    del old.cohort  # the state's shape before this stage existed

    second = BotDetectorProjection(PARAMS)
    second.load_state(pickle.dumps(old))
    assert second.state.watermark is None and second.state.videos == {}
    run(second, events[500:], CohortRecordingView(), start=501)  # and it runs
