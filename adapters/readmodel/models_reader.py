"""SQL implementation of ModelsReader."""

from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import (
    rm_creator_features,
    rm_model_metrics,
    rm_video_features,
    rm_virality,
)
from adapters.readmodel.times import as_utc
from queries.models import FeatureVector, ModelMetric, ModelsReader, ViralityPrediction


class SqlModelsReader(ModelsReader):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def video_features(self, video_id: UUID) -> FeatureVector | None:
        return self._features(rm_video_features, rm_video_features.c.video_id, video_id)

    def creator_features(self, creator_id: UUID) -> FeatureVector | None:
        return self._features(rm_creator_features, rm_creator_features.c.creator_id, creator_id)

    def _features(self, table: sa.Table, key: sa.Column, value: UUID) -> FeatureVector | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(key == value)).first()
        return (
            None
            if row is None
            else FeatureVector(value, as_utc(row.computed_at), dict(row.features))
        )

    def virality(self, video_id: UUID) -> ViralityPrediction | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(rm_virality).where(rm_virality.c.video_id == video_id)
            ).first()
        if row is None:
            return None
        return ViralityPrediction(
            video_id=row.video_id,
            predicted_at=as_utc(row.predicted_at),
            probability=row.probability,
            features=dict(row.features),
            labelled_at=as_utc(row.labelled_at) if row.labelled_at else None,
            viral=row.viral,
            views_24h=row.views_24h,
        )

    def metrics(self) -> list[ModelMetric]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(rm_model_metrics).order_by(
                    rm_model_metrics.c.model, rm_model_metrics.c.metric
                )
            )
            return [ModelMetric(r.model, r.metric, r.value, r.samples) for r in rows]
