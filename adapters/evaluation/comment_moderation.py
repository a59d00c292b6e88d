"""How well does CommentModerationProjection auto-flag toxic comments?

The projection runs in memory over the run's events (predict on each new comment, then
learn from moderators' decisions as they come), and its flags -- the alerts it raises,
each of which becomes one CommentCase.AutoFlagged through the command side -- are
scored against the generator's truth (`toxic_comments`: what a moderator would remove).

Only comments written while the model was allowed to flag (after its warm-up on the
first decisions) are scored, for the model and both baselines alike:
- precision: toxic flags / flags (target >= 0.8: a flag reaches a moderator's queue
  first, and a queue where more than one flag in five is wrong is not trusted);
- recall: toxic comments flagged / toxic comments (target >= 0.5: half of them
  flagged the moment they are written, before any viewer reports them -- viewers
  report only about half). Not judged against the baselines: the blocklist's recall
  is bought with a precision no moderator queue could use, and flags are cautious on
  purpose, precision first;
- ROC AUC of the prediction on every scored comment (reported).
Trivial baseline: flagging at random at the model's own rate (expected precision = the
share of toxic comments; expected recall = the flag rate). Simple rule: a keyword
blocklist (insults, threats, spam and scam words, links), on the raw text.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from adapters.evaluation.core import Figure, Prediction, Run, Target, roc_auc
from domain.engagement import Engagement
from projections.alerting import Alert
from projections.comment_moderation import (
    MODEL,
    CommentCaseRow,
    CommentModerationParams,
    CommentModerationProjection,
    CommentModerationView,
)

TRIVIAL = "random_at_same_rate"
RULE = "keyword_blocklist"
# What a data scientist writes first: insults, threats, spam and scam words, link markers.
BLOCKLIST = (
    "idiot", "stupid", "dumb", "loser", "moron", "clown", "freak", "pathetic", "worthless",
    "disgusting", "ugly", "trash", "hate", "kill", "die", "hurt", "creep", "fraud", "cringe",
    "scam", "free", "giveaway", "btc", "crypto", "telegram", "dm me", "follow back",
    "click", "link in bio", "promo", "won",
)  # fmt: skip
_BLOCKED = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in BLOCKLIST) + r")\b")
_LINKISH = re.compile(r"https?://|www\.|\.com\b|\.net\b|bit\.ly|\bdot com\b|\[\.\]")


def blocklisted(text: str) -> bool:
    lower = text.lower()
    return bool(_BLOCKED.search(lower) or _LINKISH.search(lower))


class CollectingView(CommentModerationView):
    """Alerts and metrics in memory; the queue rows are not needed here."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def raise_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def comment_case(self, case_id: UUID, row: CommentCaseRow) -> None:
        pass

    def metric(self, model: str, name: str, samples: int, value: Any) -> None:
        pass


@dataclass
class Outputs:
    predictions: list[Prediction] = field(default_factory=list)
    texts: dict[UUID, str] = field(default_factory=dict)  # scored comments
    flagged: set[UUID] = field(default_factory=set)


def run_model(
    events: Sequence[tuple[int, Any]], params: CommentModerationParams | None = None
) -> Outputs:
    """Every prediction the projection made (one per comment), the comments written
    while it could flag (`texts`: the scored ones) and the comments it flagged."""
    projection, view, out = CommentModerationProjection(params), CollectingView(), Outputs()
    for position, event in events:
        projection.process(event, position, view)
        if type(event) is Engagement.Commented:
            comment = projection.state.comments.get(event.comment_id)
            if comment is None:
                continue
            features = {"author_removed": comment.x["author_removed"],
                        "armed": float(comment.armed)}  # fmt: skip
            out.predictions.append(Prediction(MODEL, str(event.comment_id), event.occurred_at,
                                              comment.probability, features))  # fmt: skip
            if comment.armed:
                out.texts[event.comment_id] = event.text
    out.flagged = {UUID(a.subject_id) for a in view.alerts}
    return out


def predict(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
    return run_model(events).predictions


def score(run: Run, params: CommentModerationParams | None = None) -> list[Figure]:
    if run.truth is None:
        return []  # the labels are the generator's truth: nothing to score a replay with
    out = run_model(run.events, params)
    toxic = {c for c in out.texts if c in run.truth.toxic_comments}
    scored, flags = len(out.texts), out.flagged & set(out.texts)
    if not scored or not toxic:
        return []
    hits = len(flags & toxic)
    rule = {c for c, text in out.texts.items() if blocklisted(text)}
    rule_hits = len(rule & toxic)
    base_rate, flag_rate = len(toxic) / scored, len(flags) / scored
    armed = [p for p in out.predictions if p.features["armed"]]
    labels = [UUID(p.subject) in toxic for p in armed]
    rule_scores = [float(UUID(p.subject) in rule) for p in armed]
    names = {"trivial_name": TRIVIAL, "rule_name": RULE}
    return [
        Figure(MODEL, "flag_precision", hits / len(flags) if flags else 0.0, base_rate,
               rule_hits / len(rule) if rule else 0.0, len(flags), Target(minimum=0.8), **names),
        Figure(MODEL, "flag_recall", hits / len(toxic), flag_rate, rule_hits / len(toxic),
               len(toxic), Target(minimum=0.5, beat_baselines=False), **names),
        Figure(MODEL, "roc_auc", roc_auc(labels, [p.score for p in armed]), 0.5,
               roc_auc(labels, rule_scores), scored, **names),
    ]  # fmt: skip
