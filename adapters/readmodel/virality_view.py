"""SQL implementation of ViralityView: absolute values, so re-applying a batch is harmless.

A batch's writes are buffered and sent at flush, a statement per kind: when the watermark
passes many videos' deadlines at once (a catch-up, a quiet hour) a batch predicts and
labels hundreds of videos, each label also updating four metrics (evaluated once, at
flush: see MetricBuffer)."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import SET, upsert
from adapters.readmodel.model_metrics import MetricBuffer
from adapters.readmodel.tables import rm_virality
from projections.virality import ViralityView

PREDICTION = ("video_id", "predicted_at", "probability", "features")


class SqlViralityView(ViralityView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.predictions: dict[UUID, tuple[Any, ...]] = {}
        self.labels: dict[UUID, dict[str, object]] = {}
        self.metrics = MetricBuffer()

    def prediction(
        self, video_id: UUID, at: datetime, probability: float, features: dict[str, float]
    ) -> None:
        self.predictions[video_id] = (video_id, at.astimezone(UTC), probability, features)

    def label(self, video_id: UUID, at: datetime, viral: bool, views_24h: int) -> None:
        self.labels[video_id] = {
            "k": video_id, "at": at.astimezone(UTC), "viral": viral, "views": views_24h,
        }  # fmt: skip

    def metric(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None:
        self.metrics.add(model, name, samples, value)

    def flush(self) -> set[str]:
        changed: set[str] = set()
        # Predictions before labels: a video may be predicted and labelled in one batch.
        upsert(self.conn, rm_virality, PREDICTION, list(self.predictions.values()),
               key=("video_id",), update={c: SET for c in PREDICTION[1:]})  # fmt: skip
        if self.labels:  # rare (one per video, a day after it): the row exists by then
            self.conn.execute(
                rm_virality.update()
                .where(rm_virality.c.video_id == sa.bindparam("k"))
                .values(
                    labelled_at=sa.bindparam("at"),
                    viral=sa.bindparam("viral"),
                    views_24h=sa.bindparam("views"),
                ),
                list(self.labels.values()),
            )
        if self.metrics.flush(self.conn):
            changed.add("model_metrics")
        changed.update(f"features:{v}" for v in (*self.predictions, *self.labels))
        self.predictions, self.labels = {}, {}
        return changed
