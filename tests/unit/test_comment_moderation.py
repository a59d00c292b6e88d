"""CommentModerationProjection: predict on each new comment before learning, learn from
moderators' decisions, flag once per comment, the queue rows, exact checkpoints."""

import pickle
import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

from eventsourcing.utils import get_topic
from support.readmodels import structure

from adapters.evaluation.leakage import Tick
from domain.comment_moderation import CommentCase
from domain.creator import Creator
from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import Alert
from projections.comment_moderation import (
    BASELINE,
    MODEL,
    CommentCaseRow,
    CommentModerationParams,
    CommentModerationProjection,
    CommentModerationView,
    normalise,
    tokens,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PARAMS = CommentModerationParams(min_decisions=6, min_each=3, threshold=0.7)
TOXIC = ("you are a pathetic loser", "nobody likes you loser", "delete your account loser",
         "you stupid clown", "ur a worthless loser")  # fmt: skip
BENIGN = ("great dance love it", "what song is this", "so good love the moves",
          "the lighting is nice", "love this trend")  # fmt: skip


class RecordingView(CommentModerationView):
    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.rows: dict[UUID, CommentCaseRow] = {}
        self.metrics: dict[tuple[str, str], tuple[float, int]] = {}

    def raise_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def comment_case(self, case_id: UUID, row: CommentCaseRow) -> None:
        self.rows[case_id] = row

    def metric(self, model, name, samples, value) -> None:
        self.metrics[(model, name)] = (value(), samples)


class World:
    """Builds domain events through the aggregates, one minute apart, seeded ids."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.events: list = []
        self.minute = 0
        creator = Creator.register(
            creator_id=self.uuid(), handle="ann", display_name="Ann", region="SE", occurred_at=T0
        )
        self.video = Video.publish(
            video_id=self.uuid(), creator=creator, caption="clip", hashtags=[], sound_id=None,
            duration_seconds=10, occurred_at=T0,
        )  # fmt: skip

    def uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def at(self, minutes: float = 1) -> datetime:
        self.minute += minutes
        return T0 + timedelta(minutes=self.minute)

    def comment(self, text: str, author: UUID | None = None, *, minutes: float = 1) -> UUID:
        e = Engagement.start(viewer_id=author or self.uuid(), video=self.video, occurred_at=T0)
        comment_id = self.uuid()
        e.comment(self.video, comment_id=comment_id, text=text, occurred_at=self.at(minutes))
        self.events += [x for x in e.collect_events() if isinstance(x, Engagement.Commented)]
        return comment_id

    def report(self, comment_id: UUID, reason: str = "harassment") -> CommentCase:
        case = CommentCase.open_for(comment_id, self.video, occurred_at=self.at())
        case.report(reporter_id=self.uuid(), reason=reason, occurred_at=self.at())
        self.events += case.collect_events()
        return case

    def decide(self, case: CommentCase, outcome: str) -> None:
        case.decide(moderator_id=UUID(int=1), outcome=outcome, note="", occurred_at=self.at())
        self.events += case.collect_events()

    def decided(self, text: str, outcome: str, author: UUID | None = None) -> UUID:
        comment_id = self.comment(text, author)
        self.decide(self.report(comment_id), outcome)
        return comment_id

    def trained(self, n: int = 3) -> "World":
        for toxic, benign in zip(TOXIC[:n], BENIGN[:n], strict=True):
            self.decided(toxic, "remove")
            self.decided(benign, "keep")
        return self


def run(projection: CommentModerationProjection, events: list, view, start: int = 0) -> None:
    """Process events[start:], filtered by topic as the runner's store query does."""
    topics = set(projection.topics)
    for position, event in enumerate(events[start:], start=start + 1):
        if get_topic(type(event)) in topics:
            projection.process(event, position, view)


def test_obfuscated_spellings_read_as_the_plain_words():
    assert normalise("ur a l0$er 🤡") == "ur a loser 🤡"
    assert tokens("L O S E R") == tokens("looooser") == tokens("loser") == ["loser"]
    assert tokens("stup1d id10t") == ["stupid", "idiot", "stupid idiot"]
    assert "zlink" in tokens("free coins at gr4bfree dot com")
    assert "zlink" in tokens("see https://x.example/abc") and "zlink" in tokens("bit.ly/3fa")
    assert tokens("earn $500 a day") == ["earn", "a", "day", "earn a", "a day"]  # no letters


def test_nothing_is_flagged_before_the_model_learned_from_enough_decisions():
    w = World()
    for text in TOXIC:
        w.comment(text)
    w.decided(TOXIC[0], "remove")
    w.comment(TOXIC[1])
    view = RecordingView()

    run(CommentModerationProjection(PARAMS), w.events, view)

    assert view.alerts == []
    assert view.metrics[(MODEL, "log_loss")][1] == 1  # it predicted all the same, and scored
    assert not projection_armed(w.events)


def projection_armed(events: list) -> bool:
    projection = CommentModerationProjection(PARAMS)
    run(projection, events, RecordingView())
    return projection.active


def test_a_trained_model_flags_a_new_toxic_comment_once_with_its_action():
    w = World().trained()
    toxic = w.comment("you are a worthless loser")
    benign = w.comment("love the moves")
    view = RecordingView()
    projection = CommentModerationProjection(PARAMS)

    run(projection, w.events, view)

    [alert] = view.alerts
    assert (alert.action, alert.subject_type, alert.subject_id) == (
        "flag_comment", "comment", str(toxic))  # fmt: skip
    assert alert.id == Alert(**{**alert.__dict__, "score": 0.0, "position": 0}).id  # by subject
    assert alert.details["video_id"] == str(w.video.id)
    assert alert.details["case_id"] == str(CommentCase.create_id(toxic))
    assert alert.details["flag_score"] == alert.score >= PARAMS.threshold
    assert alert.raised_at == w.events[-2].occurred_at  # the comment's own event time
    assert projection.state.comments[benign].probability < PARAMS.threshold

    again = RecordingView()  # a replay raises the same alert (same id), nothing new
    run(CommentModerationProjection(PARAMS), w.events, again)
    assert [a.id for a in again.alerts] == [alert.id]


def test_a_decision_scores_the_prediction_made_before_it_then_the_model_learns():
    w = World().trained()
    comment_id = w.comment("nobody likes you, pathetic clown")
    projection, view = CommentModerationProjection(PARAMS), RecordingView()
    run(projection, w.events, view)
    before = projection.state.comments[comment_id].probability
    assert view.metrics[(MODEL, "log_loss")][1] == 6  # the training decisions
    start = len(w.events)
    w.decide(w.report(comment_id), "keep")  # a moderator disagrees

    run(projection, w.events, view, start)

    assert projection.state.decisions == 7 and projection.state.removals == 3
    assert view.metrics[(MODEL, "log_loss")][1] == 7  # the earlier prediction, scored
    assert (BASELINE, "roc_auc") in view.metrics
    x = projection.features(UUID(int=5), "nobody likes you, pathetic clown")
    assert projection.predict(x) < before  # it learned the keep
    row = view.rows[CommentCase.create_id(comment_id)]
    assert (row.status, row.outcome, row.reports, row.reasons) == (
        "decided", "keep", 1, {"harassment": 1})  # fmt: skip
    assert (row.text, row.probability) == ("nobody likes you, pathetic clown", before)


def test_an_author_whose_comments_were_removed_counts_as_context():
    w = World()
    troll = w.uuid()
    w.decided(TOXIC[0], "remove", author=troll)
    projection, view = CommentModerationProjection(PARAMS), RecordingView()
    run(projection, w.events, view)

    assert projection.features(troll, "hi")["author_removed"] == 1.0
    assert projection.features(w.uuid(), "hi")["author_removed"] == 0.0
    assert "zauthorremoved" in projection.features(troll, "hi")["text"]


def test_comments_nobody_reported_for_a_day_are_learned_as_keep_unless_flagged():
    w = World().trained()
    quiet = w.comment("what a lovely sunset video")
    flagged = w.comment("you pathetic worthless loser")
    projection, view = CommentModerationProjection(PARAMS), RecordingView()
    run(projection, w.events, view)
    assert [a.subject_id for a in view.alerts] == [str(flagged)]
    x = projection.state.comments[quiet].x
    p_quiet = projection.predict(x)
    start = len(w.events)
    w.comment("later", minutes=25 * 60)  # a day on: both age out

    run(projection, w.events, view, start)

    assert quiet not in projection.state.comments and flagged not in projection.state.comments
    assert projection.predict(x) < p_quiet  # learned as keep
    # The flagged one was not learned: a run without it at all ends with the same model.
    without = [e for e in w.events if getattr(e, "comment_id", None) != flagged]
    reference = CommentModerationProjection(PARAMS)
    run(reference, without, RecordingView())
    probe = projection.features(UUID(int=9), "you pathetic worthless loser")
    assert projection.predict(probe) == reference.predict(probe)


def test_a_checkpoint_continues_exactly_like_one_run():
    w = World(seed=3).trained(5)
    for text in (*TOXIC, *BENIGN):
        w.comment(text)
    w.decided("you absolute clown", "remove")
    w.comment("you are a clown and a loser")
    half = len(w.events) // 2

    one, one_view = CommentModerationProjection(PARAMS), RecordingView()
    run(one, w.events, one_view)
    first, first_view = CommentModerationProjection(PARAMS), RecordingView()
    run(first, w.events[:half], first_view)
    restored = CommentModerationProjection(PARAMS)
    restored.load_state(pickle.loads(pickle.dumps(first.dump_state())))
    run(restored, w.events, first_view, half)

    assert one_view.alerts and [a.id for a in first_view.alerts] == [a.id for a in one_view.alerts]
    assert [a.score for a in first_view.alerts] == [a.score for a in one_view.alerts]
    assert first_view.rows == one_view.rows
    assert structure(pickle.loads(restored.dump_state())) == structure(
        pickle.loads(one.dump_state())
    )


def test_objects_it_does_not_know_change_nothing():
    w = World().trained()
    projection, view = CommentModerationProjection(PARAMS), RecordingView()
    run(projection, w.events, view)
    before = projection.dump_state()

    projection.process(Tick(T0 + timedelta(days=3)), 10_000, view)
    projection.process(object(), 10_001, view)

    assert projection.dump_state() == before
