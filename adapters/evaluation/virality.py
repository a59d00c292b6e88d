"""Virality: the projection's progressive figures beside the base rate and the first-hour
views rule.

The ViralityProjection runs in memory over the run's events: one hour after each video's
publication it predicts (then, 24 hours after publication, the label arrives and the
model learns). Every prediction is paired with its video's label; the base rate and the
rule are computed at the prediction's time from labels known before it
(adapters/evaluation/binary.py). The rule is the first thing a data scientist tries: the
more views in the first hour, the likelier viral (log views in the first hour, which ranks
exactly as the views do, binned per doubling for its calibrated log loss).

How many predictions a run scores: those made after the model has learned from WARM_UP
labels (the first labels come a day after the first videos) whose label arrives before
the run ends, so a d-day run scores about d - 1.3 days of videos. Three days leave
about 0.7 of a day (~230 predictions, ~23 positives): ROC AUC's sampling spread alone
is ~0.04 there; seven days score ~750 (~80 positives).
"""

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.evaluation.binary import Scored, figures
from adapters.evaluation.core import Figure, Prediction, Run, Target
from projections.virality import MODEL, ViralityParams, ViralityProjection, ViralityView

RULE = "log_views_1h"
RULE_NAME = "first_hour_views"
# log1p(views) bin edges: 0, 1, 2-3, 4-7, 8-15, ... views in the first hour.
EDGES = tuple(math.log1p(2**i - 0.5) for i in range(0, 9))
WARM_UP = 50  # labels the model learned from before its predictions are scored
AUC_TARGET = Target(minimum=0.75)
LOG_LOSS_TARGET = Target(lower_is_better=True)


class CollectingView(ViralityView):
    """Predictions and labels in memory, in the order the projection makes them; with
    each prediction, how many labels the model had learned from (its metrics' samples)."""

    def __init__(self) -> None:
        self.predictions: list[tuple[UUID, datetime, float, dict[str, float]]] = []
        self.learned_before: list[int] = []
        self.labels: dict[UUID, tuple[datetime, bool]] = {}
        self.learned = 0

    def prediction(
        self, video_id: UUID, at: datetime, probability: float, features: dict[str, float]
    ) -> None:
        self.predictions.append((video_id, at, probability, dict(features)))
        self.learned_before.append(self.learned)

    def label(self, video_id: UUID, at: datetime, viral: bool, views_24h: int) -> None:
        self.labels[video_id] = (at, viral)

    def metric(self, model: str, name: str, samples: int, value: Any) -> None:
        self.learned = max(self.learned, samples)  # the scorer computes its own figures


def run_projection(
    events: Sequence[tuple[int, Any]], params: ViralityParams | None = None
) -> CollectingView:
    projection, view = ViralityProjection(params), CollectingView()
    for position, event in events:
        projection.process(event, position, view)
    return view


def predict(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
    return [
        Prediction(MODEL, str(video), at, p, features)
        for video, at, p, features in run_projection(events).predictions
    ]


def scored(view: CollectingView) -> list[Scored]:
    """Predictions paired with their labels. Scored once the model has learned from
    WARM_UP labels: before, it is a cold start (the first labels come a day after the
    first videos), and the base rate and the rule are judged on the same predictions.
    Every label still teaches the baselines."""
    out = []
    for (video, at, p, features), learned in zip(
        view.predictions, view.learned_before, strict=True
    ):
        label = view.labels.get(video)
        if label is not None and label[0] > at:
            warm = learned >= WARM_UP
            out.append(Scored(at, label[0], p, features[RULE], label[1], counted=warm))
    return out


def score(run: Run) -> list[Figure]:
    """Needs no ground truth: the labels are the videos' own 24-hour views."""
    return figures(
        MODEL,
        scored(run_projection(run.events)),
        EDGES,
        rule_name=RULE_NAME,
        auc_target=AUC_TARGET,
        log_loss_target=LOG_LOSS_TARGET,
    )
