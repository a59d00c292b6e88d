"""SQL implementation of ViralityView: absolute values, so re-applying a batch is harmless."""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_virality
from adapters.readmodel.upsert import insert_for, write_metrics
from projections.virality import ViralityView


class SqlViralityView(ViralityView):
    """Buffers a batch's writes and sends them at flush, a statement per kind: when the
    watermark passes many videos' deadlines at once (a catch-up, a quiet hour) a batch
    predicts and labels hundreds of videos, each label also updating four metrics."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()
        self.predictions: dict[UUID, dict[str, object]] = {}
        self.labels: dict[UUID, dict[str, object]] = {}
        self.metrics: dict[tuple[str, str], tuple[float, int]] = {}

    def prediction(
        self, video_id: UUID, at: datetime, probability: float, features: dict[str, float]
    ) -> None:
        self.predictions[video_id] = {
            "video_id": video_id, "predicted_at": at.astimezone(UTC),
            "probability": probability, "features": features,
        }  # fmt: skip

    def label(self, video_id: UUID, at: datetime, viral: bool, views_24h: int) -> None:
        self.labels[video_id] = {
            "k": video_id,
            "at": at.astimezone(UTC),
            "viral": viral,
            "views": views_24h,
        }

    def metric(self, model: str, name: str, value: float, samples: int) -> None:
        self.metrics[(model, name)] = (value, samples)  # the batch's last figures

    def flush(self) -> set[str]:
        if self.predictions:  # before the labels: a video may be predicted and labelled
            stmt = insert_for(self.conn, rm_virality)
            stmt = stmt.on_conflict_do_update(
                index_elements=["video_id"],
                set_={c: stmt.excluded[c] for c in ("predicted_at", "probability", "features")},
            )
            self.conn.execute(stmt, list(self.predictions.values()))
        if self.labels:
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
        if self.metrics:
            write_metrics(self.conn, self.metrics)
            self.changed.add("model_metrics")
        self.changed.update(f"features:{v}" for v in (*self.predictions, *self.labels))
        self.predictions, self.labels, self.metrics = {}, {}, {}
        changed, self.changed = self.changed, set()
        return changed
