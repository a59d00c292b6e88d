"""How well does SentimentProjection read comments, and find audiences turning negative?

Comment accuracy: every comment the projection scored (English, or no letters) against
the sentiment the generator wrote it with (GroundTruth.comment_sentiment), beside
- `majority_so_far`: the most frequent true class among the comments before it
  (progressive: a label is known only after its comment);
- `polar_words`: a hand list of common polar words and emoji, counted (positive minus
  negative), the rule a data scientist writes first; it knows no negation, intensity or
  "but".
Comments in another language are counted, not scored: their share is reported.

Turning negative: an alert is a true positive when its video has a SentimentTurn that
started before the alert and at most `TURN_GRACE` earlier; precision over alerts, recall
over turns (reported figures), beside the rule "`RULE_NEGATIVES` VADER-negative comments
on a video within the projection's recent window".
"""

import re
from collections import Counter, deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from adapters.evaluation.core import REPORTED, Figure, Prediction, Run, Target, precision_recall
from adapters.sentiment import VaderScorer
from projections.alerting import Alert
from projections.sentiment import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    Key,
    SentimentParams,
    SentimentProjection,
    SentimentView,
)

MODEL = "sentiment"
TURN_GRACE = timedelta(hours=12)
RULE_NEGATIVES = 5
_SCORER = VaderScorer()  # models load on first use, once per process

_POSITIVE_WORDS = ("love", "loved", "great", "amazing", "best", "awesome", "good", "nice",
                   "beautiful", "funny", "perfect", "cute", "wow", "cool", "lol")  # fmt: skip
_NEGATIVE_WORDS = ("hate", "worst", "bad", "terrible", "awful", "boring", "trash", "stupid",
                   "ugly", "fake", "cringe", "waste", "annoying", "garbage")  # fmt: skip
POLAR_WORDS = {POSITIVE: frozenset(_POSITIVE_WORDS), NEGATIVE: frozenset(_NEGATIVE_WORDS)}
POLAR_EMOJI = {POSITIVE: ("😂", "❤", "😍", "🔥", "👏", "🥰"), NEGATIVE: ("👎", "😡", "🤮", "🙄")}
_WORD = re.compile(r"[a-z']+")


def polar_words(text: str) -> str:
    """The simple rule: (positive words and emoji) minus (negative ones), by sign."""
    lower = text.lower()
    words = _WORD.findall(lower)
    score = 0
    for label, sign in ((POSITIVE, 1), (NEGATIVE, -1)):
        score += sign * sum(w in POLAR_WORDS[label] for w in words)
        score += sign * sum(lower.count(e) for e in POLAR_EMOJI[label])
    return POSITIVE if score > 0 else NEGATIVE if score < 0 else NEUTRAL


class CollectingSentimentView(SentimentView):
    """What the projection says, kept in memory in the order it says it."""

    def __init__(self) -> None:
        # (comment id, video id, language, label, compound, at)
        self.comments: list[tuple[str, str, str, str | None, float | None, datetime]] = []
        self.alerts: list[Alert] = []

    def comment(
        self, comment_id: str, video_id: str, language: str, label: str | None,
        compound: float | None, at: datetime,
    ) -> None:  # fmt: skip
        self.comments.append((comment_id, video_id, language, label, compound, at))

    def count(
        self, keys: tuple[Key, ...], bucket: datetime, label: str | None,
        compound: float | None, at: datetime,
    ) -> None:  # fmt: skip
        pass

    def video_status(self, *args: Any) -> None:
        pass

    def deleted(self, *args: Any) -> None:
        pass

    def expire(self, before: datetime) -> None:
        pass

    def raise_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


def run_projection(
    events: Sequence[tuple[int, Any]], params: SentimentParams | None = None
) -> tuple[CollectingSentimentView, dict[str, str]]:
    """The projection over the events in memory; also each comment's text by id."""
    projection, view = SentimentProjection(_SCORER, params), CollectingSentimentView()
    texts: dict[str, str] = {}
    for position, event in events:
        text = getattr(event, "text", None)
        if text is not None and getattr(event, "comment_id", None) is not None:
            texts[str(event.comment_id)] = text
        projection.process(event, position, view)
    return view, texts


def predict(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
    view, _ = run_projection(events)
    out = [
        Prediction(MODEL, f"comment:{cid}", at, float("nan") if compound is None else compound)
        for cid, _video, _language, _label, compound, at in view.comments
    ]
    out += [
        Prediction(
            f"{MODEL}.turning_negative",
            f"video:{a.subject_id}",
            a.raised_at,
            a.score,
            {k: float(v) for k, v in a.details.items() if isinstance(v, int | float)},
        )
        for a in view.alerts
    ]
    return out


def score(run: Run, params: SentimentParams | None = None) -> list[Figure]:
    if run.truth is None:
        return []  # every figure here needs the generator's truth
    view, texts = run_projection(run.events, params)
    return _accuracy(view, texts, run) + _turns(view, run, params or SentimentParams())


def _accuracy(view: CollectingSentimentView, texts: dict[str, str], run: Run) -> list[Figure]:
    """Audience comments (those the generator wrote with a language: organic comments and
    pile-ons) are the judged figure; comments of other phases with a known sentiment
    (the comment moderation phase's insults, spam and hard negatives) are reported."""
    assert run.truth is not None
    truth, languages = run.truth.comment_sentiment, run.truth.comment_language
    tallies = {group: _Tally() for group in ("audience", "other")}
    for cid, _video, _language, label, _compound, _at in view.comments:
        comment_id = UUID(cid)
        true = truth.get(comment_id)
        if true is None:
            continue  # a comment the generator did not write with a known sentiment
        tally = tallies["audience" if comment_id in languages else "other"]
        tally.add(true, label, texts.get(cid, ""))
    audience, other = tallies["audience"], tallies["other"]
    figures = []
    if audience.scored:
        figures += [
            audience.figure("comment accuracy", Target(minimum=0.8)),
            Figure(MODEL, "comments scored (share)", audience.scored / audience.labelled,
                   None, None, audience.labelled, REPORTED),
        ]  # fmt: skip
    if other.scored:
        figures.append(other.figure("comment accuracy, other phases' comments", REPORTED))
    return figures


class _Tally:
    """Right answers of the model and both baselines on the scored comments, in order."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.right = {"model": 0, "majority": 0, "rule": 0}
        self.scored = self.labelled = 0

    def add(self, true: str, label: str | None, text: str) -> None:
        self.labelled += 1
        if label is not None:
            self.scored += 1
            majority = self.seen.most_common(1)[0][0] if self.seen else NEUTRAL
            self.right["model"] += label == true
            self.right["majority"] += majority == true
            self.right["rule"] += polar_words(text) == true
        self.seen[true] += 1  # known from now on (progressive)

    def figure(self, measure: str, target: Target) -> Figure:
        share = {k: v / self.scored for k, v in self.right.items()}
        return Figure(MODEL, measure, share["model"], share["majority"], share["rule"],
                      self.scored, target, "majority_so_far", "polar_words")  # fmt: skip


def _turns(view: CollectingSentimentView, run: Run, params: SentimentParams) -> list[Figure]:
    assert run.truth is not None
    turns = {t.video_id: t.start for t in run.truth.sentiment_turns}
    model = _match(((UUID(a.subject_id), a.raised_at) for a in view.alerts), turns)
    rule = _match(_rule_alerts(view, params), turns)
    rule_name = f"{RULE_NEGATIVES}_negatives_in_{params.recent_hours:g}h"
    figures = []
    for measure, index in (("turn alert precision", 0), ("turn alert recall", 1)):
        figures.append(
            Figure(MODEL, measure, model[index], None, rule[index],
                   len(view.alerts) if index == 0 else len(turns), REPORTED, "", rule_name)
        )  # fmt: skip
    figures.append(Figure(MODEL, "turn alert F1", _f1(*model), None, _f1(*rule), len(turns),
                          REPORTED, "", rule_name))  # fmt: skip
    return figures


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _match(alerts: Any, turns: dict[UUID, datetime]) -> tuple[float, float]:
    count, hits, found = 0, 0, set()
    for video, at in alerts:
        count += 1
        start = turns.get(video)
        if start is not None and start <= at <= start + TURN_GRACE:
            hits += 1
            found.add(video)
    return precision_recall(hits, count, len(found), len(turns))


def _rule_alerts(
    view: CollectingSentimentView, params: SentimentParams
) -> list[tuple[UUID, datetime]]:
    """The rule: a video's RULE_NEGATIVES-th negative comment within the recent window
    (once per video)."""
    recent: dict[str, deque[datetime]] = {}
    fired: list[tuple[UUID, datetime]] = []
    done: set[str] = set()
    window = timedelta(hours=params.recent_hours)
    for _cid, video, _language, label, _compound, at in view.comments:
        if label != NEGATIVE or video in done:
            continue
        times = recent.setdefault(video, deque())
        times.append(at)
        while times[0] < at - window:
            times.popleft()
        if len(times) >= RULE_NEGATIVES:
            done.add(video)
            fired.append((UUID(video), at))
    return fired
