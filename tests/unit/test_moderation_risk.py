"""ModerationRiskProjection: predictions on open cases, progressive validation at the
decision, exact checkpoints, and a pattern it can learn."""

import math
import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic

from domain.creator import Creator
from domain.engagement import Engagement
from domain.moderation import ModerationCase
from domain.video import Video
from projections.moderation_risk import (
    BASELINE,
    MODEL,
    ModerationRiskProjection,
    ModerationRiskView,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MODERATOR = UUID(int=1)


class RecordingView(ModerationRiskView):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def risk(self, case_id, video_id, at, probability, features):
        self.calls.append(("risk", case_id, video_id, at, probability, dict(features)))

    def decided(self, case_id, at, outcome):
        self.calls.append(("decided", case_id, at, outcome))

    def metric(self, model, name, samples, value):
        self.calls.append(("metric", model, name, value(), samples))

    def of(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]

    def metrics(self) -> dict[tuple[str, str], tuple[float, int]]:
        return {(c[1], c[2]): (c[3], c[4]) for c in self.of("metric")}


class World:
    """Builds domain events through the aggregates, with ids from a seeded generator."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.events: list = []

    def uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def creator(self, at: datetime) -> Creator:
        c = Creator.register(
            creator_id=self.uuid(), handle="c" + self.uuid().hex[:6], display_name="C",
            region="US", occurred_at=at,
        )  # fmt: skip
        self.events += c.collect_events()
        return c

    def video(self, creator: Creator, at: datetime, caption: str = "a clip") -> Video:
        v = Video.publish(
            video_id=self.uuid(), creator=creator, caption=caption, hashtags=["fun"],
            sound_id=None, duration_seconds=30, occurred_at=at,
        )  # fmt: skip
        self.events += v.collect_events()
        return v

    def case(self, video: Video, at: datetime) -> ModerationCase:
        return ModerationCase.open_for(video, occurred_at=at)

    def report(self, case: ModerationCase, reason: str, at: datetime) -> None:
        case.report(reporter_id=self.uuid(), reason=reason, occurred_at=at)

    def decide(self, case: ModerationCase, outcome: str, at: datetime) -> None:
        case.decide(moderator_id=MODERATOR, outcome=outcome, policy="p", note="", occurred_at=at)

    def flush(self, case: ModerationCase) -> None:
        self.events += case.collect_events()

    def views(self, video: Video, n: int, at: datetime) -> None:
        for _ in range(n):
            e = Engagement.start(viewer_id=self.uuid(), video=video, occurred_at=at)
            e.view(video, watch_seconds=5, completed=False, traffic_source="for_you",
                   device="ios", occurred_at=at)  # fmt: skip
            self.events += [x for x in e.collect_events() if isinstance(x, Engagement.Viewed)]


def run(
    projection: ModerationRiskProjection, events: list, view: ModerationRiskView, start: int = 0
) -> None:
    """Process events[start:], filtered by topic as the runner's store query does."""
    topics = set(projection.topics)
    for position, event in enumerate(events[start:], start=start + 1):
        if get_topic(type(event)) in topics:
            projection.process(event, position, view)


def test_every_change_of_an_open_case_writes_a_prediction_with_its_features():
    w = World()
    creator = w.creator(T0)
    video = w.video(creator, T0)
    w.views(video, 9, T0 + timedelta(minutes=1))
    case = w.case(video, T0 + timedelta(minutes=10))
    w.report(case, "spam", T0 + timedelta(minutes=10))
    w.report(case, "spam", T0 + timedelta(minutes=20))
    w.report(case, "hate", T0 + timedelta(minutes=90))
    flagged_at = T0 + timedelta(minutes=95)
    case.auto_flag(model="vision", score=0.7, reasons=["hate"], occurred_at=flagged_at)
    w.flush(case)
    view = RecordingView()

    run(ModerationRiskProjection(), w.events, view)

    risks = view.of("risk")
    assert len(risks) == 5  # opened, three reports, one flag
    assert {r[1] for r in risks} == {case.id} and {r[2] for r in risks} == {video.id}
    assert all(r[4] == pytest.approx(0.5) for r in risks)  # an untrained model: no opinion
    last = risks[-1][5]
    assert last["log_reports"] == pytest.approx(math.log1p(3))
    assert last["log_recent_reports"] == pytest.approx(math.log1p(1))  # one in the last hour
    assert last["top_reason_share"] == pytest.approx(2 / 3)
    assert last["distinct_reasons"] == 2
    assert last["max_flag_score"] == 0.7
    assert last["log_reach"] == pytest.approx(math.log1p(9))
    assert last["log_hours_open"] == pytest.approx(math.log1p(85 / 60))
    # Agreement: the top reason's reports and the others apart; the flag names "hate",
    # which is not what most reporters said.
    assert last["log_top_reason_reports"] == pytest.approx(math.log1p(2))
    assert last["log_other_reason_reports"] == pytest.approx(math.log1p(1))
    assert last["agreement"] == pytest.approx(2 / 3 * math.log1p(3))
    assert last["flag_names_top_reason"] == 0.0
    assert last["flag_score_vision"] == 0.7  # each flagging model's own feature
    assert "flag_score_vision" not in risks[-2][5]  # not before its flag
    assert "text" not in last  # only numbers go to the read model
    assert not view.of("metric") and not view.of("decided")


def test_a_decision_scores_the_earlier_prediction_then_the_model_learns():
    w = World()
    creator = w.creator(T0)
    first, second = w.video(creator, T0), w.video(creator, T0)
    cases = []
    for video in (first, second):
        case = w.case(video, T0 + timedelta(hours=1))
        for _ in range(5):
            w.report(case, "violence", T0 + timedelta(hours=1))
        cases.append(case)
    w.decide(cases[0], "remove", T0 + timedelta(hours=3))
    for case in cases:
        w.flush(case)
    w.report(cases[1], "violence", T0 + timedelta(hours=4))  # after the model learned
    w.flush(cases[1])
    view = RecordingView()
    projection = ModerationRiskProjection()

    run(projection, w.events, view)

    before = [r[4] for r in view.of("risk") if r[1] == cases[0].id][-1]
    metrics = view.metrics()
    assert metrics[(MODEL, "log_loss")] == (pytest.approx(-math.log(before)), 1)
    assert metrics[(BASELINE, "log_loss")] == (pytest.approx(-math.log(0.5)), 1)
    assert set(metrics) == {(m, n) for m in (MODEL, BASELINE) for n in ("roc_auc", "log_loss")}
    assert view.of("decided") == [("decided", cases[0].id, T0 + timedelta(hours=3), "remove")]
    # The second case's prediction after the decision is higher: the model learned "remove"
    # (and the creator now has a prior harmful decision).
    after = [r for r in view.of("risk") if r[1] == cases[1].id][-1]
    assert after[4] > before
    assert after[5]["log_creator_prior_harmful"] == pytest.approx(math.log1p(1))


def test_a_decided_case_is_not_predicted_until_a_report_reopens_it():
    w = World()
    creator = w.creator(T0)
    case = w.case(w.video(creator, T0), T0)
    w.report(case, "spam", T0)
    w.decide(case, "keep", T0 + timedelta(hours=1))
    w.flush(case)
    creator.issue_strike(case_id=case.id, reason="x", occurred_at=T0 + timedelta(hours=1))
    w.events += creator.collect_events()
    w.report(case, "nudity", T0 + timedelta(hours=2))  # reopens
    w.decide(case, "restrict", T0 + timedelta(hours=3))
    w.flush(case)
    view = RecordingView()

    run(ModerationRiskProjection(), w.events, view)

    kinds = [c[0] for c in view.calls if c[0] != "metric"]
    assert kinds == ["risk", "risk", "decided", "risk", "decided"]
    assert view.of("risk")[-1][5]["creator_strikes"] == 1
    assert view.metrics()[(MODEL, "roc_auc")][1] == 2  # each opening is labelled once


def synthetic(n_cases: int, seed: int = 3) -> tuple[list, dict[UUID, bool]]:
    """Harmful cases: many reports agreeing on a serious reason and a high flag score;
    benign ones: a few mixed reports, a low score. Noisy, so neither is certain."""
    w, rng = World(seed), random.Random(seed)
    creators = [w.creator(T0) for _ in range(10)]
    truth: dict[UUID, bool] = {}
    t = T0
    for _ in range(n_cases):
        t += timedelta(minutes=rng.uniform(5, 30))
        harmful = rng.random() < 0.4
        video = w.video(rng.choice(creators), t, caption=rng.choice(["dance", "cooking", "news"]))
        w.views(video, rng.randint(0, 5), t)
        case = w.case(video, t)
        for _ in range(rng.randint(6, 20) if harmful else rng.randint(1, 8)):
            t += timedelta(seconds=rng.uniform(10, 300))
            on_topic = rng.random() < (0.85 if harmful else 0.3)
            other = rng.choice(["spam", "other", "copyright"])
            w.report(case, "violence" if on_topic else other, t)
        score = rng.uniform(0.5, 0.99) if harmful else rng.uniform(0.05, 0.7)
        case.auto_flag(model="vision", score=score, reasons=["violence"], occurred_at=t)
        outcome = rng.choice(["remove", "restrict"]) if harmful else "keep"
        if rng.random() < 0.05:  # moderators err sometimes
            outcome = "keep" if harmful else "restrict"
        w.decide(case, outcome, t + timedelta(minutes=rng.uniform(30, 120)))
        w.flush(case)
        truth[case.id] = harmful
    # Decisions come after later cases' events: keep the log in event-time order.
    w.events.sort(key=lambda e: e.occurred_at)
    return w.events, truth


def test_a_learnable_pattern_beats_the_base_rate():
    events, _ = synthetic(300)
    view = RecordingView()

    run(ModerationRiskProjection(), events, view)

    metrics = view.metrics()
    auc, samples = metrics[(MODEL, "roc_auc")]
    assert samples == 300
    assert auc > 0.8
    assert metrics[(MODEL, "log_loss")][0] < metrics[(BASELINE, "log_loss")][0]
    assert metrics[(BASELINE, "roc_auc")][0] < 0.65  # the trivial model ranks nothing


def test_a_restart_from_a_checkpoint_gives_the_same_calls_as_one_go():
    events, _ = synthetic(80, seed=5)
    one_go = RecordingView()
    run(ModerationRiskProjection(), events, one_go)

    half = len(events) // 2
    halves = RecordingView()
    first = ModerationRiskProjection()
    run(first, events[:half], halves)
    second = ModerationRiskProjection()  # a fresh process resuming from the checkpoint
    second.load_state(first.dump_state())
    run(second, events, halves, start=half)

    assert len(one_go.calls) > 100
    assert halves.calls == one_go.calls
    assert first.dump_state() != ModerationRiskProjection().dump_state()


def test_an_empty_checkpoint_starts_afresh():
    projection = ModerationRiskProjection()
    run(projection, synthetic(5)[0], RecordingView())
    projection.load_state(None)
    assert projection.state.score.labels == 0 and not projection.state.cases


def test_a_flag_naming_the_reason_reporters_agree_on_counts_and_models_score_apart():
    w = World()
    video = w.video(w.creator(T0), T0)
    case = w.case(video, T0)
    for minute in range(3):
        w.report(case, "spam", T0 + timedelta(minutes=minute))
    case.auto_flag(model="text", score=0.2, reasons=["hate"], occurred_at=T0 + timedelta(minutes=5))
    case.auto_flag(
        model="vision", score=0.9, reasons=["spam"], occurred_at=T0 + timedelta(minutes=6)
    )
    case.auto_flag(
        model="vision", score=0.4, reasons=["spam"], occurred_at=T0 + timedelta(minutes=7)
    )
    w.flush(case)
    view = RecordingView()

    run(ModerationRiskProjection(), w.events, view)

    last = view.of("risk")[-1][5]
    assert last["flag_names_top_reason"] == 1.0
    assert last["log_other_reason_reports"] == 0.0
    assert (last["flag_score_text"], last["flag_score_vision"]) == (0.2, 0.9)  # highest each
    assert list(last).index("flag_score_text") < list(last).index("flag_score_vision")


def test_a_version_1_checkpoint_without_per_model_scores_still_loads_and_runs():
    events, _ = synthetic(20, seed=7)
    projection = ModerationRiskProjection()
    run(projection, events[: len(events) // 2], RecordingView())
    for case in projection.state.cases.values():
        del case.__dict__["model_scores"]  # as a case pickled by version 1 was
    restored = ModerationRiskProjection()
    restored.load_state(projection.dump_state())

    view = RecordingView()
    run(restored, events, view, start=len(events) // 2)

    assert view.of("risk") and all(
        c.model_scores is not None for c in restored.state.cases.values()
    )
