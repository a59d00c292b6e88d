"""SQL implementation of ViralityView: absolute values, so re-applying a batch is harmless."""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_model_metrics, rm_virality
from adapters.readmodel.upsert import insert_for
from projections.virality import ViralityView


class SqlViralityView(ViralityView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()

    def prediction(
        self, video_id: UUID, at: datetime, probability: float, features: dict[str, float]
    ) -> None:
        stmt = insert_for(self.conn, rm_virality).values(
            video_id=video_id, predicted_at=at.astimezone(UTC), probability=probability,
            features=features,
        )  # fmt: skip
        stmt = stmt.on_conflict_do_update(
            index_elements=["video_id"],
            set_={
                "predicted_at": stmt.excluded.predicted_at,
                "probability": stmt.excluded.probability,
                "features": stmt.excluded.features,
            },
        )
        self.conn.execute(stmt)
        self.changed.add(f"features:{video_id}")

    def label(self, video_id: UUID, at: datetime, viral: bool, views_24h: int) -> None:
        self.conn.execute(
            rm_virality.update()
            .where(rm_virality.c.video_id == video_id)
            .values(labelled_at=at.astimezone(UTC), viral=viral, views_24h=views_24h)
        )
        self.changed.add(f"features:{video_id}")

    def metric(self, model: str, name: str, value: float, samples: int) -> None:
        stmt = insert_for(self.conn, rm_model_metrics).values(
            model=model, metric=name, value=value, samples=samples
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["model", "metric"],
            set_={"value": stmt.excluded.value, "samples": stmt.excluded.samples},
        )
        self.conn.execute(stmt)
        self.changed.add("model_metrics")

    def flush(self) -> set[str]:
        changed, self.changed = self.changed, set()
        return changed
