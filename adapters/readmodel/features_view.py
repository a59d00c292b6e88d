"""SQL implementation of EngagementFeaturesView: the latest snapshot per id, written at flush.

A batch changes the same videos and creators many times; the view keeps the last call
per id and computes each snapshot once, at flush, then writes each table with one
statement (bulk.upsert)."""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import SET, upsert
from adapters.readmodel.tables import rm_creator_features, rm_video_features
from projections.engagement_features import EngagementFeaturesView, Snapshot

UPDATE = {"computed_at": SET, "features": SET}


class SqlEngagementFeaturesView(EngagementFeaturesView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.videos: dict[UUID, tuple[datetime, Snapshot]] = {}
        self.creators: dict[UUID, tuple[datetime, Snapshot]] = {}

    def video_features(self, video_id: UUID, at: datetime, features: Snapshot) -> None:
        self.videos[video_id] = (at, features)

    def creator_features(self, creator_id: UUID, at: datetime, features: Snapshot) -> None:
        self.creators[creator_id] = (at, features)

    def flush(self) -> set[str]:
        for table, key, rows in (
            (rm_video_features, "video_id", self.videos),
            (rm_creator_features, "creator_id", self.creators),
        ):
            upsert(
                self.conn, table, (key, "computed_at", "features"),
                [(k, at.astimezone(UTC), features()) for k, (at, features) in rows.items()],
                key=(key,), update=UPDATE,
            )  # fmt: skip
        changed = {f"features:{v}" for v in self.videos}
        self.videos, self.creators = {}, {}
        return changed
