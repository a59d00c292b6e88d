"""SQL implementation of EngagementFeaturesView: the latest snapshot per id, written at flush."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_creator_features, rm_video_features
from adapters.readmodel.upsert import insert_for
from projections.engagement_features import EngagementFeaturesView


class SqlEngagementFeaturesView(EngagementFeaturesView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.videos: dict[UUID, tuple[datetime, dict[str, float]]] = {}
        self.creators: dict[UUID, tuple[datetime, dict[str, float]]] = {}

    def video_features(self, video_id: UUID, at: datetime, features: dict[str, float]) -> None:
        self.videos[video_id] = (at.astimezone(UTC), features)

    def creator_features(self, creator_id: UUID, at: datetime, features: dict[str, float]) -> None:
        self.creators[creator_id] = (at.astimezone(UTC), features)

    def flush(self) -> set[str]:
        self._upsert(rm_video_features, "video_id", self.videos)
        self._upsert(rm_creator_features, "creator_id", self.creators)
        changed = {f"features:{v}" for v in self.videos}
        self.videos, self.creators = {}, {}
        return changed

    def _upsert(self, table: sa.Table, key: str, rows: dict[UUID, Any]) -> None:
        if not rows:
            return
        stmt = insert_for(self.conn, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[key],
            set_={"computed_at": stmt.excluded.computed_at, "features": stmt.excluded.features},
        )
        self.conn.execute(
            stmt, [{key: k, "computed_at": at, "features": f} for k, (at, f) in rows.items()]
        )
