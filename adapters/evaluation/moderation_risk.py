"""Moderation risk: the projection's progressive figures beside the base rate and the
simple rule a trust-and-safety analyst tries first.

The ModerationRiskProjection runs in memory over the run's events; it predicts after
every change of an open case, and the prediction scored at a moderator's decision is the
latest one before it (as the projection scores itself). The base rate and the rule are
computed at that prediction's time from decisions known before it
(adapters/evaluation/binary.py). The rule is the case's highest auto-flag score so far,
picked on the tuning seed over the number of reports (ROC AUC 0.867 against 0.860),
distinct reporters and flags, binned per tenth of the score for its log loss.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.evaluation.binary import Scored, figures
from adapters.evaluation.core import Figure, Prediction, Run, Target
from projections.moderation_risk import (
    HARMFUL,
    MODEL,
    ModerationRiskParams,
    ModerationRiskProjection,
    ModerationRiskView,
)

RULE = "max_flag_score"
RULE_NAME = "max_auto_flag_score"
EDGES = tuple(i / 10 for i in range(1, 10))  # deciles of the score
TARGET = Target()  # beat both baselines
LOG_LOSS_TARGET = Target(lower_is_better=True)


class CollectingView(ModerationRiskView):
    """Every prediction, and each decision paired with the latest prediction before it."""

    def __init__(self) -> None:
        self.predictions: list[tuple[UUID, datetime, float, dict[str, float]]] = []
        self.latest: dict[UUID, tuple[datetime, float, dict[str, float]]] = {}
        self.decisions: list[tuple[datetime, float, dict[str, float], datetime, bool]] = []

    def risk(
        self,
        case_id: UUID,
        video_id: UUID,
        at: datetime,
        probability: float,
        features: dict[str, float],
    ) -> None:
        self.predictions.append((case_id, at, probability, dict(features)))
        self.latest[case_id] = (at, probability, dict(features))

    def decided(self, case_id: UUID, at: datetime, outcome: str) -> None:
        before = self.latest.pop(case_id, None)
        if before is not None and before[0] < at:
            self.decisions.append((before[0], before[1], before[2], at, outcome in HARMFUL))

    def metric(self, model: str, name: str, samples: int, value: Any) -> None:
        pass  # the scorer computes its own, exact figures


def run_projection(
    events: Sequence[tuple[int, Any]], params: ModerationRiskParams | None = None
) -> CollectingView:
    projection, view = ModerationRiskProjection(params), CollectingView()
    for position, event in events:
        projection.process(event, position, view)
    return view


def predict(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
    """Every case's predictions, the last one per instant: a case opens with its first
    report or flag in one command (two events at one time, two predictions), and the
    read model, like the queue, keeps the later."""
    latest = {(case, at): (p, x) for case, at, p, x in run_projection(events).predictions}
    return [Prediction(MODEL, str(case), at, p, x) for (case, at), (p, x) in latest.items()]


def score(run: Run) -> list[Figure]:
    """Needs no ground truth: the labels are the moderators' decisions in the events."""
    view = run_projection(run.events)
    scored = [Scored(at, decided, p, x[RULE], harmful) for at, p, x, decided, harmful in
              view.decisions]  # fmt: skip
    return figures(
        MODEL, scored, EDGES, rule_name=RULE_NAME, auc_target=TARGET,
        log_loss_target=LOG_LOSS_TARGET,
    )  # fmt: skip
