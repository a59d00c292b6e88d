"""SentimentProjection: comments scored as they arrive, tallied per video, creator,
hashtag and sound in event-time buckets, and one alert when a video's audience turns
negative. Events are fed directly; the scorer is a stub that reads a number off the
text (the VADER adapter is tested at the end on its own)."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.evaluation.sentiment import CollectingSentimentView
from adapters.sentiment import VaderScorer
from domain.engagement import Engagement
from domain.video import Video
from projections.sentiment import (
    RULE,
    STEADY,
    TURNING_NEGATIVE,
    CommentScore,
    SentimentParams,
    SentimentProjection,
)

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
VIDEO, CREATOR = UUID(int=10), UUID(int=20)


class StubScorer:
    """ "+0.6 great" scores 0.6; "es: ..." is Spanish (not scored)."""

    def __init__(self) -> None:
        self.prepared = 0

    def prepare(self) -> None:
        self.prepared += 1

    def score(self, text: str) -> CommentScore:
        if text.startswith("es:"):
            return CommentScore("es", None)
        return CommentScore("en", float(text.split()[0]))


class View(CollectingSentimentView):
    def __init__(self) -> None:
        super().__init__()
        self.counts: list[tuple[Any, ...]] = []
        self.states: list[tuple[Any, ...]] = []
        self.expired: list[datetime] = []
        self.deletions: list[tuple[Any, ...]] = []

    def count(self, keys, bucket, label, compound, at):  # type: ignore[no-untyped-def]
        self.counts.append((keys, bucket, label, compound, at))

    def video_status(self, *args: Any) -> None:
        self.states.append(args)

    def expire(self, before: datetime) -> None:
        self.expired.append(before)

    def deleted(self, comment_id, keys, bucket, label, compound, at):  # type: ignore[no-untyped-def]
        self.deletions.append((comment_id, keys, bucket, label, compound))


def published(at: datetime = START, video: UUID = VIDEO) -> Any:
    return Video.Published(
        originator_id=video, originator_version=1, timestamp=at, originator_topic="",
        creator_id=CREATOR, caption="x", hashtags=["cats", "fyp", "cats"], sound_id="snd-1",
        duration_seconds=10.0, occurred_at=at,
    )  # fmt: skip


def commented(text: str, at: datetime, n: int, video: UUID = VIDEO) -> Any:
    return Engagement.Commented(
        originator_id=UUID(int=1000 + n), originator_version=2, timestamp=at,
        video_id=video, viewer_id=UUID(int=1000 + n), comment_id=UUID(int=5000 + n),
        text=text, client_event_id=None, occurred_at=at,
    )  # fmt: skip


def deleted(n: int, at: datetime, video: UUID = VIDEO) -> Any:
    return Engagement.CommentDeleted(
        originator_id=UUID(int=1000 + n), originator_version=3, timestamp=at,
        video_id=video, viewer_id=UUID(int=1000 + n), comment_id=UUID(int=5000 + n),
        occurred_at=at,
    )  # fmt: skip


def feed(projection: SentimentProjection, events: list[Any], view: Any = None) -> Any:
    view = view or View()
    for position, event in enumerate(events, start=1):
        projection.process(event, position, view)
    return view


def story() -> list[Any]:
    """A liked video (8 positive comments over 8 hours), then a pile-on of 12 negatives."""
    events = [published()]
    events += [commented("+0.6 great", START + timedelta(hours=1 + i), i) for i in range(8)]
    turn = START + timedelta(hours=10)
    events += [commented("-0.7 awful", turn + timedelta(minutes=5 * i), 100 + i) for i in range(12)]
    return events


def test_each_comment_is_scored_once_with_vader_thresholds_and_counted_for_every_key():
    at = START + timedelta(minutes=20)
    events = [published(), commented("+0.05 ok", at, 1), commented("-0.04 meh", at, 2),
              commented("-0.05 hm", at, 3), commented("es: me encanta", at, 4)]  # fmt: skip
    view = feed(SentimentProjection(StubScorer()), events)
    assert [(c[3], c[4]) for c in view.comments] == [
        ("positive", 0.05), ("neutral", -0.04), ("negative", -0.05), (None, None)
    ]  # fmt: skip
    assert view.comments[3][2] == "es"  # counted, in its language, not scored
    keys, bucket, *_ = view.counts[0]
    assert keys == (("video", str(VIDEO)), ("creator", str(CREATOR)), ("hashtag", "cats"),
                    ("hashtag", "fyp"), ("sound", "snd-1"))  # fmt: skip
    assert bucket == START.replace(minute=15)  # 15-minute event-time buckets


def test_a_caption_edit_moves_later_comments_to_the_new_hashtags_only():
    edit = Video.CaptionEdited(
        originator_id=VIDEO, originator_version=2, timestamp=START, caption="y",
        hashtags=["dogs"], occurred_at=START + timedelta(minutes=1),
    )  # fmt: skip
    events = [published(), commented("+0.5 a", START, 1), edit, commented("+0.5 b", START, 2)]
    view = feed(SentimentProjection(StubScorer()), events)
    assert view.counts[1][0] == (("video", str(VIDEO)), ("creator", str(CREATOR)),
                                 ("hashtag", "dogs"), ("sound", "snd-1"))  # fmt: skip


def test_a_video_whose_audience_turns_negative_raises_one_auto_flag_alert():
    view = feed(SentimentProjection(StubScorer()), story())
    assert len(view.alerts) == 1
    alert = view.alerts[0]
    assert (alert.rule, alert.source, alert.action) == (RULE, "sentiment", "auto_flag")
    assert (alert.subject_type, alert.subject_id, alert.window) == ("video", str(VIDEO), "1")
    assert alert.details["flag_reasons"] == [RULE] and 0 < alert.details["flag_score"] <= 1
    # In event time, at the 9th negative comment: with the last positive one (20:00),
    # the last 3 hours hold min_recent = 10 comments, averaging (1 - 9) / 10.
    assert alert.raised_at == START + timedelta(hours=10, minutes=40)
    assert alert.details["recent_mean"] == pytest.approx(-0.8)
    assert alert.details["baseline"] == pytest.approx(7 / 11)  # 7 earlier +1s, 4 neutral priors
    assert view.states[-1][1] == TURNING_NEGATIVE and view.states[-1][5] == 1


def test_a_steadily_negative_video_and_a_few_negative_comments_raise_nothing():
    events = [published()]
    # Negative from the start (one an hour), then busier, still negative: no drop against
    # its own baseline (-12 / 16 = -0.75 with the 4 neutral priors, -1 is 0.25 below).
    events += [commented("-0.5 bad", START + timedelta(hours=i), i) for i in range(12)]
    busy = START + timedelta(hours=12)
    events += [commented("-0.5 bad", busy + timedelta(minutes=5 * i), 50 + i) for i in range(20)]
    view = feed(SentimentProjection(StubScorer()), events)
    assert view.alerts == [] and view.states[-1][2] >= 20  # busy, and no turn
    # the same burst on a video without that history is a turn
    fresh = [published(), *events[13:]]
    assert len(feed(SentimentProjection(StubScorer()), fresh).alerts) == 1
    few = [published()] + [
        commented("-0.9 awful", START + timedelta(minutes=i), i) for i in range(9)
    ]  # fmt: skip
    assert feed(SentimentProjection(StubScorer()), few).alerts == []  # under min_recent


def test_the_video_is_rearmed_after_recovering_and_a_second_turn_is_a_second_alert():
    events = story()
    later = START + timedelta(hours=16)
    events += [commented("+0.8 yay", later + timedelta(minutes=10 * i), 200 + i) for i in range(12)]
    again = later + timedelta(hours=6)
    events += [commented("-0.8 no", again + timedelta(minutes=5 * i), 300 + i) for i in range(12)]
    view = feed(SentimentProjection(StubScorer()), events)
    assert [a.window for a in view.alerts] == ["1", "2"]
    assert len({a.id for a in view.alerts}) == 2
    assert any(s[1] == STEADY and s[5] == 1 for s in view.states)  # recovered in between


@pytest.mark.parametrize("cut", [3, 9, 14])
def test_a_restart_from_the_pickled_state_makes_the_same_calls(cut):
    events = story()
    straight = SentimentProjection(StubScorer())
    feed(straight, events[:cut])
    expected = View()
    for position, event in enumerate(events[cut:], start=cut + 1):
        straight.process(event, position, expected)

    first = SentimentProjection(StubScorer())
    feed(first, events[:cut])
    second = SentimentProjection(StubScorer(), SentimentParams(drop=1.9))  # the state's win
    second.load_state(first.dump_state())
    restarted = View()
    for position, event in enumerate(events[cut:], start=cut + 1):
        second.process(event, position, restarted)
    assert expected.comments and expected.states
    assert restarted.comments == expected.comments
    assert restarted.states == expected.states
    assert restarted.alerts == expected.alerts


def test_events_it_does_not_know_only_pass_time():
    class Tick:
        occurred_at = START

    view = feed(SentimentProjection(StubScorer()), [Tick(), published(), Tick()])
    assert view.comments == [] and view.alerts == []


def test_old_buckets_expire_after_the_retention_in_event_time():
    params = SentimentParams(retention_hours=2)
    events = [published(), commented("+0.1 a", START, 1),
              commented("+0.1 b", START + timedelta(hours=3), 2)]  # fmt: skip
    view = feed(SentimentProjection(StubScorer(), params), events)
    assert view.expired[-1] == START + timedelta(hours=1)


def test_vader_scores_english_and_emoji_and_leaves_other_languages_unscored():
    scorer = VaderScorer()
    assert scorer.score("absolutely love this!!!").label == "positive"
    assert scorer.score("not funny at all").label == "negative"  # negation
    assert scorer.score("what camera do you use").label == "neutral"
    heart = scorer.score("❤️❤️")  # with the emoji variation selector
    assert heart.language == "und" and heart.label == "positive"
    spanish = scorer.score("no me gustó nada, qué aburrido")
    assert spanish.language == "es" and spanish.compound is None


def test_the_projection_prepares_its_scorer_when_started_not_when_built():
    scorer = StubScorer()
    projection = SentimentProjection(scorer)
    assert scorer.prepared == 0
    projection.load_state(None)  # what the runner does first when it starts it
    assert scorer.prepared == 1


def test_building_the_projection_specs_loads_no_language_model_until_sentiment_starts():
    # In a fresh process: every process that builds the specs (a core rebuild, a Kafka
    # worker, the CLI) paid 0.55 s of CPU and ~80 MB for models it never used.
    code = """
import threading
import time
import adapters.sentiment as s
from adapters.projections.registry import projection_specs
specs = {spec.projection.name: spec for spec in projection_specs()}
assert threading.active_count() == 1, threading.enumerate()  # no loader thread started
assert not s._models, "built specs loaded the models"
specs["sentiment"].projection.load_state(None)
deadline = time.monotonic() + 60
while not s._models and time.monotonic() < deadline:
    time.sleep(0.05)
assert s._models, "starting the sentiment projection did not load its models"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_deleted_comment_leaves_the_tallies_it_was_counted_in_while_its_bucket_is_kept():
    params = SentimentParams(retention_hours=1)
    at = START + timedelta(minutes=20)
    events = [published(), commented("-0.5 bad", at, 1), commented("es: hola", at, 2),
              deleted(1, at + timedelta(minutes=1)), deleted(1, at + timedelta(minutes=2)),
              deleted(2, at + timedelta(minutes=3)),
              commented("+0.5 ok", at + timedelta(hours=3), 3),  # expires the first buckets
              deleted(3, at + timedelta(hours=3, minutes=1)),
              commented("+0.5 old", at, 4),  # late, into an expired bucket
              deleted(4, at + timedelta(hours=3, minutes=2))]  # fmt: skip
    view = feed(SentimentProjection(StubScorer(), params), events)

    keys, bucket = view.counts[0][0], START.replace(minute=15)
    assert view.deletions == [
        (str(UUID(int=5001)), keys, bucket, "negative", -0.5),  # as counted
        (str(UUID(int=5001)), (), None, None, None),  # again: its row only
        (str(UUID(int=5002)), keys, bucket, None, None),  # counted, never scored
        (str(UUID(int=5003)), keys, START.replace(hour=15, minute=15), "positive", 0.5),
        (str(UUID(int=5004)), (), None, None, None),  # its bucket had expired
    ]


def test_the_comments_remembered_for_deletion_are_those_of_the_kept_buckets_only():
    params = SentimentParams(retention_hours=1)
    events = [published()]
    events += [commented("+0.1 a", START + timedelta(minutes=10 * i), i) for i in range(60)]
    projection = SentimentProjection(StubScorer(), params)
    feed(projection, events)
    # 10 hours of comments, 1 hour (plus the current bucket) kept
    assert 6 <= len(projection.state.counted) <= 8
    assert max(projection.state.counted) == UUID(int=5059).int


def test_a_checkpoint_from_before_deletions_still_loads():
    projection = SentimentProjection(StubScorer())
    feed(projection, story())
    del projection.state.__dict__["counted"]
    restored = SentimentProjection(StubScorer())
    restored.load_state(projection.dump_state())
    view = feed(restored, [deleted(1, START + timedelta(hours=12))])
    assert view.deletions == [(str(UUID(int=5001)), (), None, None, None)]
