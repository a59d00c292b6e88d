"""SQL implementation of RecommendationsView: the latest row per key, written at flush.

A batch touches the same videos and viewers many times; only the last value of each row
is kept in memory and written with one bulk upsert per table, so the cost per event is a
dict assignment. Every row is absolute, so re-applying a batch after a crash is harmless.
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import (
    rm_model_metrics,
    rm_reco_bandit,
    rm_reco_items,
    rm_reco_seen,
    rm_reco_viewers,
)
from adapters.readmodel.upsert import insert_for, insert_ignore
from projections.recommendations import RecommendationsView


class SqlRecommendationsView(RecommendationsView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.items: dict[UUID, dict[str, Any]] = {}
        self.viewers: dict[UUID, dict[str, Any]] = {}
        self.seen_pairs: list[dict[str, UUID]] = []
        self.bandits: dict[str, dict[str, Any]] = {}
        self.metrics: dict[tuple[str, str], dict[str, Any]] = {}
        self.forgotten: set[UUID] = set()

    def item(
        self,
        video_id: UUID,
        creator_id: UUID,
        published_at: datetime,
        bias: float,
        factors: list[float],
        popularity: float,
        at: datetime,
    ) -> None:
        self.items[video_id] = {
            "video_id": video_id, "creator_id": creator_id, "published_at": published_at,
            "bias": bias, "factors": factors, "popularity": popularity, "updated_at": at,
        }  # fmt: skip

    def viewer(self, viewer_id: UUID, bias: float, factors: list[float], at: datetime) -> None:
        self.viewers[viewer_id] = {
            "viewer_id": viewer_id, "bias": bias, "factors": factors, "updated_at": at,
        }  # fmt: skip

    def seen(self, viewer_id: UUID, video_id: UUID) -> None:
        self.seen_pairs.append({"viewer_id": viewer_id, "video_id": video_id})

    def bandit(
        self, name: str, state: bytes, arms: dict[str, dict[str, float]], at: datetime
    ) -> None:
        self.bandits[name] = {"name": name, "state": state, "arms": arms, "updated_at": at}

    def metric(self, model: str, name: str, value: float, samples: int) -> None:
        self.metrics[(model, name)] = {
            "model": model, "metric": name, "value": value, "samples": samples,
        }  # fmt: skip

    def forget_viewer(self, viewer_id: UUID) -> None:
        self.viewers.pop(viewer_id, None)
        self.seen_pairs = [p for p in self.seen_pairs if p["viewer_id"] != viewer_id]
        self.forgotten.add(viewer_id)

    def flush(self) -> set[str]:
        changed: set[str] = set()
        if self.forgotten:  # before the inserts: a later event of the id starts afresh
            for table in (rm_reco_viewers, rm_reco_seen):
                self.conn.execute(table.delete().where(table.c.viewer_id.in_(self.forgotten)))
            changed.add("recommendations")
            self.forgotten = set()
        if self.items:
            self._upsert(rm_reco_items, ["video_id"], self.items.values())
            changed.add("recommendations")
        if self.viewers:
            self._upsert(rm_reco_viewers, ["viewer_id"], self.viewers.values())
            changed.add("recommendations")
        insert_ignore(self.conn, rm_reco_seen, self.seen_pairs)
        if self.bandits:
            self._upsert(rm_reco_bandit, ["name"], self.bandits.values())
        if self.metrics:
            self._upsert(rm_model_metrics, ["model", "metric"], self.metrics.values())
            changed.add("model_metrics")
        self.items, self.viewers, self.seen_pairs, self.bandits, self.metrics = {}, {}, [], {}, {}
        return changed

    def _upsert(self, table: sa.Table, keys: list[str], rows: Any) -> None:
        rows = [_utc(r) for r in rows]
        stmt = insert_for(self.conn, table)
        columns = [c for c in rows[0] if c not in keys]
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={c: stmt.excluded[c] for c in columns}
        )
        self.conn.execute(stmt, rows)


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}
