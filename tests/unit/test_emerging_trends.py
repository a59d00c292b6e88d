"""EmergingTrendsProjection: keys taking off, measured as shares of views, in event time.

Streams come from adapters/workload/trend_evaluation.synthetic_stream: a dozen hashtags
(each on a few videos) with Zipf shares of a diurnal platform rate (4:1 peak to trough),
optionally with one tag's share multiplied from a known time on, or a new tag launched
that takes off or fizzles.
"""

from datetime import timedelta
from uuid import UUID

import pytest

from adapters.evaluation.leakage import Tick
from adapters.workload.trend_evaluation import (
    START,
    TAGS,
    Launch,
    RecordingTrendsView,
    Step,
    run,
    synthetic_stream,
)
from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import alert_id
from projections.emerging_trends import EMERGING, STEADY, EmergingTrendsProjection, TrendParams

STEP = Step(TAGS[5], START + timedelta(days=1, hours=4), 5.0)  # quiet hour, mid-ranked tag


@pytest.fixture(scope="module")
def step_stream() -> list:
    return synthetic_stream(seed=11, days=2.5, step=STEP)  # a day and a half after it


@pytest.fixture(scope="module")
def stationary_stream() -> list:
    return synthetic_stream(seed=12, days=2.0)


def trends(view: RecordingTrendsView, tag: str) -> list[tuple]:
    return [c for c in view.calls if c[0] == "trend" and c[2] == tag]


def test_a_step_up_in_one_tags_share_is_detected_once_within_two_hours(step_stream):
    view = run(EmergingTrendsProjection(), step_stream)

    assert [a.subject_id for a in view.alerts] == [STEP.key]
    alert = view.alerts[0]
    assert STEP.at < alert.raised_at <= STEP.at + timedelta(hours=2)
    assert alert.rule == "emerging_trend" and alert.source == "emerging_trends"
    assert alert.subject_type == "hashtag" and alert.severity == "info"
    assert alert.score >= TrendParams().lift_factor  # the lift over its baseline
    # The view saw the key turn emerging at that bucket, with velocity over baseline.
    first = next(c for c in trends(view, STEP.key) if c[3] == EMERGING)
    _, _, _, _, velocity, baseline, detections, detected_at, at = first
    assert at == detected_at == alert.raised_at and detections == 1
    assert velocity >= TrendParams().lift_factor * baseline


def test_an_emerging_key_decays_to_steady_when_its_baseline_catches_up(step_stream):
    view = run(EmergingTrendsProjection(), step_stream)
    statuses = [c[3] for c in trends(view, STEP.key)]
    turned = statuses.index(EMERGING)
    assert STEADY in statuses[turned:]  # the new level becomes the baseline: steady again
    assert len(view.alerts) == 1  # and staying at the new level raises nothing more


def test_stationary_diurnal_traffic_raises_no_alert_though_velocities_swing(stationary_stream):
    view = run(EmergingTrendsProjection(), stationary_stream)

    assert view.alerts == []
    top = [c for c in trends(view, TAGS[0]) if c[8] >= START + timedelta(hours=6)]
    velocities = [c[4] for c in top]
    # Absolute velocity swings with the day (a naive threshold would fire every morning);
    # the baseline, a share of the platform's own velocity, swings with it.
    assert max(velocities) > 2.5 * min(velocities)
    assert all(0.5 < c[4] / c[5] < 1.6 for c in top)


def test_a_platform_wide_surge_is_not_a_trend_of_any_key():
    surge = Step("*", START + timedelta(days=1, hours=4), 3.0)
    view = run(EmergingTrendsProjection(), synthetic_stream(seed=13, days=1.5, surge=surge))

    assert view.alerts == []
    top = trends(view, TAGS[0])
    before = next(c[4] for c in top if c[8] == surge.at)
    after = next(c[4] for c in top if c[8] == surge.at + timedelta(hours=1))
    assert after > 2 * before  # every key's own velocity jumped; none of their shares did


@pytest.mark.parametrize("split", [0.37, 0.6, 0.9])
def test_a_restart_from_the_checkpoint_gives_exactly_the_calls_of_one_run(step_stream, split):
    straight = run(EmergingTrendsProjection(), step_stream)
    assert straight.alerts  # the stream has something to reproduce

    half = int(len(step_stream) * split)
    resumed = RecordingTrendsView()
    first = EmergingTrendsProjection()
    for position, e in enumerate(step_stream[:half], start=1):
        first.process(e, position, resumed)
    second = EmergingTrendsProjection(TrendParams(lift_factor=99.0))  # replaced by the checkpoint's
    second.load_state(first.dump_state())  # a new process: state only from the checkpoint
    for position, e in enumerate(step_stream[half:], start=half + 1):
        second.process(e, position, resumed)

    assert resumed.calls == straight.calls


def test_alert_ids_are_stable_across_rebuilds_and_name_the_detection_window(step_stream):
    once = run(EmergingTrendsProjection(), step_stream).alerts
    again = run(EmergingTrendsProjection(), step_stream).alerts
    assert [a.id for a in once] == [a.id for a in again]
    a = once[0]
    window_start = a.raised_at - timedelta(minutes=TrendParams().bucket_minutes)
    assert a.window == window_start.isoformat()
    assert a.id == alert_id("emerging_trend", "hashtag", STEP.key, a.window)


# -- small hand-made streams --------------------------------------------------------------
def published(video: int, tags: list[str], sound: str | None, minute: float) -> Video.Published:
    at = START + timedelta(minutes=minute)
    return Video.Published(
        originator_id=UUID(int=video), originator_version=1, timestamp=at, originator_topic="",
        creator_id=UUID(int=1), caption="c", hashtags=tags, sound_id=sound,
        duration_seconds=10.0, occurred_at=at,
    )  # fmt: skip


def viewed(video: int, minute: float) -> Engagement.Viewed:
    at = START + timedelta(minutes=minute)
    return Engagement.Viewed(
        originator_id=UUID(int=10_000 + int(minute * 60)), originator_version=2, timestamp=at,
        video_id=UUID(int=video), viewer_id=UUID(int=2), watch_seconds=5.0, completed=False,
        traffic_source="for_you", device="ios", client_event_id=None, occurred_at=at,
    )  # fmt: skip


def test_buckets_close_on_the_watermark_and_late_views_are_dropped():
    p = EmergingTrendsProjection()
    view = RecordingTrendsView()
    events = [published(1, ["a"], "s1", 0), viewed(1, 1), viewed(1, 2)]
    events += [viewed(1, 11.5)]  # bucket [0, 10) still open: grace is 2 minutes
    events += [viewed(1, 12.5), viewed(1, 5)]  # closes [0, 10); then a view too late for it
    for i, e in enumerate(events, start=1):
        p.process(e, i, view)

    closed = [c for c in view.calls if c[0] == "trend"]
    assert {(c[1], c[2]) for c in closed} == {("hashtag", "a"), ("sound", "s1")}
    assert all(c[8] == START + timedelta(minutes=10) for c in closed)
    assert all(c[4] == 2.0 for c in closed)  # 2 views in the trailing hour
    assert p.state.late_dropped == 1


def test_caption_edits_move_later_views_to_the_new_hashtags():
    p = EmergingTrendsProjection()
    view = RecordingTrendsView()
    edit = Video.CaptionEdited(
        originator_id=UUID(int=1), originator_version=2, timestamp=START, caption="d",
        hashtags=["b"], occurred_at=START + timedelta(minutes=1),
    )  # fmt: skip
    for i, e in enumerate([published(1, ["a"], None, 0), edit, viewed(1, 2), viewed(1, 15)], 1):
        p.process(e, i, view)
    assert [(c[1], c[2]) for c in view.calls] == [("hashtag", "b")]


def test_keys_quiet_for_idle_buckets_are_forgotten_so_closing_stays_bounded():
    params = TrendParams(idle_buckets=3)
    p = EmergingTrendsProjection(params)
    view = RecordingTrendsView()
    events = [published(1, ["old"], None, 0), published(2, ["busy"], None, 0), viewed(1, 1)]
    events += [viewed(2, 10 * b + 1) for b in range(1, 8)]
    for i, e in enumerate(events, start=1):
        p.process(e, i, view)

    assert set(p.state.keys) == {("hashtag", "busy")}
    old = [c for c in view.calls if c[2] == "old"]
    assert len(old) == 1 + 3 + 1  # its bucket, 3 idle buckets, then one last "steady" row
    assert old[-1][3:6] == (STEADY, 0.0, 0.0)


def test_unknown_detector_names_are_rejected():
    with pytest.raises(ValueError):
        TrendParams(detector="nope").new_detector()


# -- new keys: take-offs and fizzles --------------------------------------------------------
TAKEOFF = Launch("brandnew", START + timedelta(hours=14), top=0.12)  # peaks 9 hours later
FIZZLE = Launch("brandnew", START + timedelta(hours=14), top=0.012)  # the same start


@pytest.fixture(scope="module")
def takeoff_stream() -> list:
    return synthetic_stream(seed=21, days=1.5, launch=TAKEOFF)


def test_a_new_tag_taking_off_is_detected_once_before_its_peak(takeoff_stream):
    view = run(EmergingTrendsProjection(), takeoff_stream)

    mine = [a for a in view.alerts if a.subject_id == TAKEOFF.key]
    assert len(mine) == 1
    alert = mine[0]
    assert TAKEOFF.at < alert.raised_at < TAKEOFF.peak - timedelta(hours=1)
    # It had no history: the lift is over the prior share, not over its first bucket.
    assert alert.details["lift"] >= TrendParams().lift_factor


def test_a_new_tag_that_fizzles_out_is_not_flagged():
    stream = synthetic_stream(seed=21, days=1.5, launch=FIZZLE)
    view = run(EmergingTrendsProjection(), stream)

    assert [a for a in view.alerts if a.subject_id == FIZZLE.key] == []
    rows = trends(view, FIZZLE.key)
    assert rows and max(c[4] for c in rows) >= 3  # it was watched, only never much


def test_one_video_taking_off_does_not_make_its_tag_a_trend():
    alone = Launch("onevideo", START + timedelta(hours=14), top=0.12, videos=1)
    view = run(EmergingTrendsProjection(), synthetic_stream(seed=21, days=1.5, launch=alone))

    assert [a for a in view.alerts if a.subject_id == alone.key] == []
    assert max(c[4] for c in trends(view, alone.key)) >= 20  # as big as the take-off's


@pytest.mark.parametrize("split", [0.5, 0.7])
def test_a_restart_in_the_middle_of_a_take_off_gives_the_same_calls(takeoff_stream, split):
    straight = run(EmergingTrendsProjection(), takeoff_stream)
    half = int(len(takeoff_stream) * split)
    resumed = RecordingTrendsView()
    first = EmergingTrendsProjection()
    for position, e in enumerate(takeoff_stream[:half], start=1):
        first.process(e, position, resumed)
    second = EmergingTrendsProjection()
    second.load_state(first.dump_state())
    for position, e in enumerate(takeoff_stream[half:], start=half + 1):
        second.process(e, position, resumed)

    assert resumed.calls == straight.calls and straight.alerts


def test_a_checkpoint_of_another_state_shape_is_dropped_for_a_fresh_state():
    p = EmergingTrendsProjection()
    p.process(published(1, ["a"], None, 0), 1, RecordingTrendsView())
    old = p.dump_state()
    p.state.version = 1  # as a checkpoint written before an upgrade
    p.load_state(p.dump_state())
    assert p.state.videos == {} and p.state.version == 2
    p.load_state(old)
    assert set(p.state.videos) == {1}


def test_a_tick_moves_event_time_on_and_closes_the_buckets_it_passed():
    p = EmergingTrendsProjection()
    view = RecordingTrendsView()
    for i, e in enumerate([published(1, ["a"], None, 0), viewed(1, 1), viewed(1, 2)], 1):
        p.process(e, i, view)
    assert view.calls == []
    p.process(Tick(START + timedelta(minutes=12)), 4, view)  # only an event time
    assert [(c[1], c[2], c[8]) for c in view.calls] == [
        ("hashtag", "a", START + timedelta(minutes=10))
    ]
    p.process(object(), 5, view)  # nothing with no event time
    assert len(view.calls) == 1
