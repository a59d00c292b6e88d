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
    """Per id the event time and the snapshot's arguments: plain values (no closures), so
    the pending entries do not burden the garbage collector."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.videos: dict[UUID, tuple[datetime, int, float]] = {}
        self.creators: dict[UUID, tuple[datetime, int, float]] = {}
        self.video_snapshot: Snapshot | None = None
        self.creator_snapshot: Snapshot | None = None

    def video_features(
        self, video_id: UUID, at: datetime, features: Snapshot, key: int, t: float
    ) -> None:
        self.videos[video_id] = (at, key, t)
        self.video_snapshot = features

    def creator_features(
        self, creator_id: UUID, at: datetime, features: Snapshot, key: int, t: float
    ) -> None:
        self.creators[creator_id] = (at, key, t)
        self.creator_snapshot = features

    def flush(self) -> set[str]:
        for table, column, rows, features in (
            (rm_video_features, "video_id", self.videos, self.video_snapshot),
            (rm_creator_features, "creator_id", self.creators, self.creator_snapshot),
        ):
            if rows and features is not None:
                upsert(
                    self.conn, table, (column, "computed_at", "features"),
                    [(k, at.astimezone(UTC), features(key, t))
                     for k, (at, key, t) in rows.items()],
                    key=(column,), update=UPDATE,
                )  # fmt: skip
        changed = {f"features:{v}" for v in self.videos}
        self.videos, self.creators = {}, {}
        return changed
