"""SQL implementation of RecommendationsView: the latest row per key, written at flush.

A batch touches the same videos and viewers many times; the view keeps the last call
per key (the row function's plain arguments) and makes the call once, at flush, then
writes each table with one statement (bulk.upsert). Every row is absolute, so re-applying a batch
after a crash is harmless.

What the columns hold (projections.recommendations, reco_taste): rm_reco_items.factors is
the video's hashtags ({hashtag: 1/k}), bias the rating model's item bias, popularity its
views per hour at updated_at, position its interned index; rm_reco_viewers.factors is
the viewer's views per hashtag ({hashtag: views}) and bias its tagged views;
rm_reco_tags every hashtag's views and interned index, and the row TOTAL all tagged
views; rm_reco_pools the projection's candidate pools, as of the projection's event-time
watermark (updated_at). With them the reader computes the projection's lifts, candidates
and scores as of the watermark (adapters/readmodel/reco_reader.py).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import SET, upsert
from adapters.readmodel.model_metrics import MetricBuffer
from adapters.readmodel.tables import (
    rm_reco_bandit,
    rm_reco_items,
    rm_reco_pools,
    rm_reco_seen,
    rm_reco_tags,
    rm_reco_viewers,
)
from projections.reco_taste import TOTAL
from projections.recommendations import ItemRow, RecommendationsView, SharedRow, ViewerRow

ITEM = ("video_id", "creator_id", "published_at", "bias", "factors", "popularity", "position",
        "updated_at")  # fmt: skip
VIEWER = ("viewer_id", "bias", "factors", "updated_at")
TAG = ("hashtag", "position", "views")
BANDIT = ("name", "state", "arms", "updated_at")


class SqlRecommendationsView(RecommendationsView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.items: dict[UUID, tuple[datetime, int, float]] = {}
        self.viewers: dict[UUID, tuple[datetime, int]] = {}
        self.item_row: Callable[[int, float], ItemRow] | None = None
        self.viewer_row: Callable[[int], ViewerRow] | None = None
        self.tags: dict[str, tuple[int, float]] = {}
        self.shared_row: Callable[[], SharedRow] | None = None
        self.seen_pairs: list[tuple[UUID, UUID]] = []
        self.bandits: dict[str, tuple[datetime, Callable[[], tuple[bytes, Any]]]] = {}
        self.metrics = MetricBuffer()
        self.forgotten: set[UUID] = set()

    def item(
        self, video_id: UUID, at: datetime, row: Callable[[int, float], ItemRow], i: int,
        t: float,
    ) -> None:  # fmt: skip
        self.items[video_id] = (at, i, t)
        self.item_row = row

    def viewer(
        self, viewer_id: UUID, at: datetime, row: Callable[[int], ViewerRow], u: int
    ) -> None:
        self.viewers[viewer_id] = (at, u)
        self.viewer_row = row

    def hashtag(self, name: str, position: int, views: float) -> None:
        self.tags[name] = (position, views)

    def shared(self, at: datetime, row: Callable[[], SharedRow]) -> None:
        self.shared_row = row

    def seen(self, viewer_id: UUID, video_id: UUID) -> None:
        self.seen_pairs.append((viewer_id, video_id))

    def bandit(
        self, name: str, at: datetime, row: Callable[[], tuple[bytes, dict[str, dict[str, float]]]]
    ) -> None:
        self.bandits[name] = (at, row)

    def metric(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None:
        self.metrics.add(model, name, samples, value)

    def forget_viewer(self, viewer_id: UUID) -> None:
        self.viewers.pop(viewer_id, None)
        self.seen_pairs = [p for p in self.seen_pairs if p[0] != viewer_id]
        self.forgotten.add(viewer_id)

    def flush(self) -> set[str]:
        changed: set[str] = set()
        if self.forgotten:  # before the inserts: a later event of the id starts afresh
            for table in (rm_reco_viewers, rm_reco_seen):
                self.conn.execute(table.delete().where(table.c.viewer_id.in_(self.forgotten)))
            changed.add("recommendations")
            self.forgotten = set()
        item_row, viewer_row = self.item_row, self.viewer_row
        items = [(k, *item_row(i, t), at.astimezone(UTC))
                 for k, (at, i, t) in self.items.items()] if item_row else []  # fmt: skip
        viewers = [(k, *viewer_row(u), at.astimezone(UTC))
                   for k, (at, u) in self.viewers.items()] if viewer_row else []  # fmt: skip
        upsert(self.conn, rm_reco_items, ITEM, items, key=ITEM[:1],
               update={c: SET for c in ITEM[1:]})  # fmt: skip
        upsert(self.conn, rm_reco_viewers, VIEWER, viewers, key=VIEWER[:1],
               update={c: SET for c in VIEWER[1:]})  # fmt: skip
        upsert(self.conn, rm_reco_seen, ("viewer_id", "video_id"), self.seen_pairs,
               key=("viewer_id", "video_id"))  # fmt: skip
        shared = self._write_shared()
        bandits = [(name, *row(), at.astimezone(UTC)) for name, (at, row) in self.bandits.items()]
        upsert(self.conn, rm_reco_bandit, BANDIT, bandits, key=BANDIT[:1],
               update={c: SET for c in BANDIT[1:]})  # fmt: skip
        if items or viewers or shared:
            changed.add("recommendations")
        if self.metrics.flush(self.conn):
            changed.add("model_metrics")
        self.items, self.viewers, self.seen_pairs, self.bandits = {}, {}, [], {}
        return changed

    def _write_shared(self) -> bool:
        """The hashtags' views changed in the batch, the total, and every pool (the whole
        set: a hashtag whose videos all went unavailable has none any more)."""
        if self.shared_row is None:
            return False
        shared = self.shared_row()
        tags = [(name, position, views) for name, (position, views) in self.tags.items()]
        tags.append((TOTAL, -1, shared.total))
        upsert(self.conn, rm_reco_tags, TAG, tags, key=TAG[:1],
               update={c: SET for c in TAG[1:]})  # fmt: skip
        now = shared.now.astimezone(UTC)
        self.conn.execute(rm_reco_pools.delete())
        pools = [(name, [str(v) for v in videos], now) for name, videos in shared.pools.items()]
        upsert(self.conn, rm_reco_pools, ("pool", "videos", "updated_at"), pools, key=("pool",))
        self.tags, self.shared_row = {}, None
        return True
