"""CommentModerationProjection: an online text classifier that flags toxic comments.

On every new comment (Engagement.Commented) the model predicts, from the comment's text
and one cheap piece of context (how many of the author's comments moderators removed
before), the probability that a moderator would remove it -- BEFORE it learns anything
about that comment. When the probability reaches the threshold, and only once the model
has learned from enough decisions of both kinds, it raises an Alert whose action
"flag_comment" the alert-action worker carries out through the command side
(CommentCase.AutoFlagged) exactly once: the alert id is derived from the comment id.

It learns from moderators' decisions on comment cases (CommentCase.Decided, label:
remove), from the features it predicted with, never recomputed at decision time. The
prediction made before the decision is scored first (progressive validation) beside
the running base rate, as every online model here.

The queue of comment cases (rm_comment_cases) is written from the same events, with the
comment's text and author joined from Engagement.Commented: the case itself holds no
copy of the text (domain/comment_moderation.py).

Text features are a bag of words, word pairs and each word's letter 4-grams of a
normalised text: lower case, leetspeak digits and symbols inside words read as letters,
letters stretched three times or more read once, spaced-out letters joined, a star
inside a word dropped, any link (a URL, "dot com", "[.]") one token `zlink`. Evaders'
spellings then meet the same tokens as plain ones, or most of the same letter 4-grams;
what is left the model learns from moderators' decisions.

Learning only from decisions would teach it that most comments are removed: moderators
see reported comments, mostly toxic. So a comment nobody reported within a day (and that
it did not flag) is learned as "keep" at a low weight (some toxic comments are never
reported): the model learns what the ordinary comments it predicts on look like.
Parameters were chosen on the tuning seed (42) of the evaluation harness only.

State (the model, pending comments, counters) is pickled with the position, so a
restart or rebuild reproduces the same predictions and alerts.
"""

import itertools
import pickle
import re
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from river import compose, feature_extraction, linear_model, naive_bayes, optim

from domain.comment_moderation import CommentCase, CommentOutcome
from domain.engagement import Engagement
from domain.erasure import Erasure
from projections.alerting import Alert, AlertSink
from projections.base import Projection
from projections.progressive import ProgressiveScore

MODEL = "comment_moderation"
BASELINE = "comment_moderation_base_rate"
RULE = "comment_toxicity"
LEARNERS = ("logistic", "naive_bayes")
CASE_EVENTS = (CommentCase.Opened, CommentCase.Reported, CommentCase.AutoFlagged,
               CommentCase.Decided)  # fmt: skip


@dataclass(frozen=True)
class CommentModerationParams:
    """Replay parameters: change one, rebuild the projection."""

    learner: str = "logistic"  # logistic | naive_bayes
    threshold: float = 0.85  # flag at or above this probability of removal
    min_decisions: int = 20  # flag only after learning this many decisions...
    min_each: int = 5  # ...with at least this many of each outcome
    retention: timedelta = timedelta(days=7)  # how long a reported comment awaits a decision
    # A comment nobody reported (and the model did not flag) within `implicit_after` is
    # learned as "keep" with this weight (0: never): see _age_out.
    implicit_after: timedelta = timedelta(hours=24)
    implicit_weight: float = 0.3
    alpha: float = 1.0  # naive Bayes smoothing
    learning_rate: float = 0.5  # logistic regression
    intercept_lr: float = 0.01
    char_ngrams: int = 4  # letter n-grams of each word as features too (0: none)

    def __post_init__(self) -> None:
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {', '.join(LEARNERS)}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if self.min_decisions < 0 or self.min_each < 0 or self.implicit_weight < 0:
            raise ValueError("min_decisions, min_each and implicit_weight must not be negative")


class CommentModerationView(AlertSink):
    @abstractmethod
    def comment_case(self, case_id: UUID, row: "CommentCaseRow") -> None:
        """The case's row as it is now (absolute values: the last call per case wins)."""

    @abstractmethod
    def metric(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None:
        """As ModerationRiskView.metric: `value()` is valid until the next call."""


@dataclass(frozen=True)
class CommentCaseRow:
    """A comment case as the moderators' queue shows it."""

    comment_id: UUID
    video_id: UUID
    author_id: UUID | None  # None: the comment is older than the projection's memory
    text: str | None
    probability: float | None  # the model's prediction when the comment was written
    status: str  # open | decided
    reports: int
    reasons: dict[str, int]  # report reason -> reports
    flags: int
    flag_score: float | None
    outcome: str | None  # keep | remove, once decided
    opened_at: datetime
    decided_at: datetime | None
    updated_at: datetime


@dataclass
class _Case:
    comment_id: UUID
    video_id: UUID
    author_id: UUID | None
    text: str | None
    probability: float | None
    opened_at: datetime
    reports: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    flags: int = 0
    flag_score: float | None = None

    def row(self, at: datetime, outcome: str | None = None) -> CommentCaseRow:
        return CommentCaseRow(
            self.comment_id, self.video_id, self.author_id, self.text, self.probability,
            "decided" if outcome else "open", self.reports, dict(self.reasons), self.flags,
            self.flag_score, outcome, self.opened_at, at if outcome else None, at,
        )  # fmt: skip


@dataclass
class _Comment:
    video_id: UUID
    author_id: UUID
    text: str
    at: datetime
    x: dict[str, Any]
    probability: float  # predicted when it was written
    armed: bool  # whether the model could flag then (past its warm-up)


@dataclass
class CommentModerationState:
    model: Any
    score: ProgressiveScore = field(default_factory=ProgressiveScore)
    comments: "OrderedDict[UUID, _Comment]" = field(default_factory=OrderedDict)  # no case
    cased: "OrderedDict[UUID, _Comment]" = field(default_factory=OrderedDict)  # with a case
    cases: dict[UUID, _Case] = field(default_factory=dict)  # open ones
    removed_by_author: dict[UUID, int] = field(default_factory=dict)
    decisions: int = 0
    removals: int = 0


# -- text normalisation -------------------------------------------------------------------
_LINK = re.compile(
    r"https?://\S+|www\.\S+"
    r"|\b[\w-]+\s*(?:\[\.\]|\(\.\)|\.| dot )\s*(?:com|net|org|xyz|ly|io)\b(?:/\S*)?",
    re.IGNORECASE,
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "$": "s", "@": "a",
                       "7": "t"})  # fmt: skip
_CHUNK = re.compile(r"\S+")
_STAR = re.compile(r"(?<=[a-z])\*(?=[a-z])")
_STRETCH = re.compile(r"([a-z])\1{2,}")
_SPACED = re.compile(r"\b(?:[a-z] ){2,}[a-z]\b")
_TOKEN = re.compile(r"[a-z][a-z']*")
_LETTER = re.compile(r"[a-z]")


def normalise(text: str) -> str:
    """What the model reads of a comment (see the module docstring)."""
    t = _LINK.sub(" zlink ", text.lower())
    t = _CHUNK.sub(_unleet, t)
    t = _STAR.sub("", t)
    t = _SPACED.sub(lambda m: m.group().replace(" ", ""), t)
    return _STRETCH.sub(r"\1", t)


def _unleet(chunk: re.Match[str]) -> str:
    """Digits and symbols read as letters in a chunk that has letters ("l0$er"), not in
    numbers or prices ("10", "$500")."""
    word = chunk.group()
    return word.translate(_LEET) if _LETTER.search(word) else word


def tokens(text: str) -> list[str]:
    """Words of the normalised text, then each pair of neighbours ("you loser")."""
    words = _TOKEN.findall(normalise(text))
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def tokens_and_grams(text: str, n: int) -> list[str]:
    """tokens(), plus each word's letter n-grams ("#los", "#ose", "#ser"): a spelling the
    normalisation misses ("id*ot", "ann*ying") still shares most of them."""
    out = tokens(text)
    grams = [f"#{w[i : i + n]}" for w in out if " " not in w for i in range(len(w) - n + 1)]
    return out + grams


def new_model(params: CommentModerationParams) -> Any:
    tokenizer = partial(tokens_and_grams, n=params.char_ngrams) if params.char_ngrams else tokens
    words = feature_extraction.BagOfWords(on="text", lowercase=False, tokenizer=tokenizer)
    if params.learner == "naive_bayes":
        return compose.Pipeline(words, naive_bayes.MultinomialNB(alpha=params.alpha))
    if params.learner == "logistic":
        learner = linear_model.LogisticRegression(
            optimizer=optim.SGD(params.learning_rate), intercept_lr=params.intercept_lr
        )
        return compose.Pipeline(words, learner)
    raise ValueError(f"unknown learner {params.learner!r}")


class CommentModerationProjection(Projection[CommentModerationView]):
    name = "comment_moderation"
    topics = tuple(
        get_topic(cls) for cls in (Engagement.Commented, *CASE_EVENTS, Erasure.ViewerForgotten)
    )

    def __init__(self, params: CommentModerationParams | None = None) -> None:
        self.params = params or CommentModerationParams()
        self.state = self._fresh()

    def _fresh(self) -> CommentModerationState:
        return CommentModerationState(model=new_model(self.params))

    # -- checkpointing (with the position, in the projection's transaction) ---------------
    def dump_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=5)

    def load_state(self, data: bytes | None) -> None:
        self.state = pickle.loads(data) if data else self._fresh()  # our own checkpoint blob

    @property
    def active(self) -> bool:
        """Whether the model has learned enough to flag (it predicts on every comment)."""
        s, p = self.state, self.params
        keeps = s.decisions - s.removals
        return s.decisions >= p.min_decisions and min(s.removals, keeps) >= p.min_each

    # -- events ---------------------------------------------------------------------------
    def process(self, event: Any, position: int, view: CommentModerationView) -> None:
        match event:
            case Engagement.Commented():
                self._commented(event, position, view)
            case CommentCase.Opened():
                self._opened(event, view)
            case CommentCase.Reported():
                case = self.state.cases.get(event.originator_id)
                if case is not None:
                    case.reports += 1
                    case.reasons[event.reason] = case.reasons.get(event.reason, 0) + 1
                    view.comment_case(event.originator_id, case.row(event.occurred_at))
            case CommentCase.AutoFlagged():
                case = self.state.cases.get(event.originator_id)
                if case is not None:
                    case.flags += 1
                    case.flag_score = max(case.flag_score or 0.0, event.score)
                    view.comment_case(event.originator_id, case.row(event.occurred_at))
            case CommentCase.Decided():
                self._decided(event, view)
            case Erasure.ViewerForgotten():
                self._forget(event.viewer_id)
            case _:
                pass  # not ours (a Tick of the leakage check, an event of another topic)

    def features(self, author_id: UUID, text: str) -> dict[str, Any]:
        """The model's input: the text, with the author's record as a token."""
        removed = self.state.removed_by_author.get(author_id, 0)
        record = " zauthorremoved" if removed else ""
        return {"text": text + record, "author_removed": float(removed)}

    def predict(self, x: dict[str, Any]) -> float:
        return float(self.state.model.predict_proba_one(x).get(True, 0.0))

    def _commented(self, event: Any, position: int, view: CommentModerationView) -> None:
        s, p = self.state, self.params
        self._age_out(event.occurred_at)
        x = self.features(event.viewer_id, event.text)
        probability, armed = self.predict(x), self.active
        s.comments[event.comment_id] = _Comment(
            event.video_id, event.viewer_id, event.text, event.occurred_at, x, probability, armed
        )
        if armed and probability >= p.threshold:
            view.raise_alert(self._alert(event, position, probability, x))

    def _alert(self, event: Any, position: int, probability: float, x: dict[str, Any]) -> Alert:
        reasons = ["toxicity"]
        if "zlink" in normalise(event.text):
            reasons.append("link")
        if x["author_removed"]:
            reasons.append("repeat_author")
        case_id = CommentCase.create_id(event.comment_id)
        return Alert(
            rule=RULE,
            source=MODEL,
            subject_type="comment",
            subject_id=str(event.comment_id),
            window="comment",  # one flag per comment, ever
            severity="critical" if probability >= 0.99 else "warning",
            score=probability,
            summary=f"comment on video {event.video_id} is likely toxic "
            f"(p={probability:.2f}: {', '.join(reasons)})",
            raised_at=event.occurred_at,
            position=position,
            details={
                "video_id": str(event.video_id),
                "case_id": str(case_id),
                "flag_score": probability,
                "flag_reasons": reasons,
            },
            action="flag_comment",
        )

    def _age_out(self, now: datetime) -> None:
        """Comments without a case after `implicit_after` leave memory; with an implicit
        weight they are learned as "keep" first. Moderators label only reported comments,
        a sample that is mostly toxic; learning the unreported ones (cheaply, at a low
        weight, since some toxic comments are never reported) tells the model what the
        ordinary comments it predicts on look like. Flagged comments are not learned:
        their case is (or will be) decided by a moderator. Cases never decided leave
        memory after `retention`."""
        s, p = self.state, self.params
        while s.comments:
            oldest = next(iter(s.comments.values()))
            if oldest.at >= now - p.implicit_after:
                break
            s.comments.popitem(last=False)
            flagged = oldest.armed and oldest.probability >= p.threshold
            if p.implicit_weight > 0 and not flagged:
                self._learn(oldest.x, False, p.implicit_weight)
        while s.cased and next(iter(s.cased.values())).at < now - p.retention:
            s.cased.popitem(last=False)

    def _forget(self, viewer_id: UUID) -> None:
        """Erasure: the viewer's comment texts (and their features) and removal record
        leave the state; open cases keep their counts without the text. The model keeps
        what it learned from them (aggregate weights, not personal data), as the
        recommendation model does. Rows already written lose the text through the
        erasure's read-model purge (adapters/erasure/service.py)."""
        s = self.state
        for pending in (s.comments, s.cased):
            for comment_id in [k for k, c in pending.items() if c.author_id == viewer_id]:
                del pending[comment_id]
        for case in s.cases.values():
            if case.author_id == viewer_id:
                case.text = None
        s.removed_by_author.pop(viewer_id, None)

    def _learn(self, x: dict[str, Any], removed: bool, weight: float = 1.0) -> None:
        if self.params.learner == "logistic":
            self.state.model.learn_one(x, removed, w=weight)
        else:  # naive Bayes counts are not weighted: an implicit label counts whole
            self.state.model.learn_one(x, removed)

    def _opened(self, event: Any, view: CommentModerationView) -> None:
        comment = self.state.comments.pop(event.comment_id, None)
        if comment is not None:
            self.state.cased[event.comment_id] = comment
        case = _Case(
            comment_id=event.comment_id,
            video_id=event.video_id,
            author_id=comment.author_id if comment else None,
            text=comment.text if comment else None,
            probability=comment.probability if comment else None,
            opened_at=event.occurred_at,
        )
        self.state.cases[event.originator_id] = case
        view.comment_case(event.originator_id, case.row(event.occurred_at))

    def _decided(self, event: Any, view: CommentModerationView) -> None:
        s = self.state
        case = s.cases.pop(event.originator_id, None)
        if case is None:
            return  # opened before this projection's history (cannot happen on a rebuild)
        removed = event.outcome == CommentOutcome.REMOVE
        comment = s.cased.pop(case.comment_id, None)  # one label per comment
        if comment is not None:
            s.score.update(removed, comment.probability)  # the earlier prediction, then learn
            s.score.report(view.metric, MODEL, BASELINE)
            self._learn(comment.x, removed)
            s.decisions += 1
            s.removals += int(removed)
            if removed:
                s.removed_by_author[comment.author_id] = (
                    s.removed_by_author.get(comment.author_id, 0) + 1
                )
        view.comment_case(event.originator_id, case.row(event.occurred_at, event.outcome))
