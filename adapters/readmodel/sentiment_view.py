"""SQL implementation of SentimentView: comment scores, bucket tallies and video states,
accumulated per batch and written with one statement per table at flush (bulk.upsert).

Bucket tallies are added to the stored ones (a batch is applied once: the runner commits
the rows with the projection's position); comment rows are inserted once; a video's
state is its last in the batch. Buckets older than the projection's retention are
deleted after the upserts. Alerts go through SqlAlertSink (insert once per alert id)."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.alerts_view import SqlAlertSink
from adapters.readmodel.bulk import ADD, MAX, SET, upsert
from adapters.readmodel.sentiment_tables import (
    rm_comment_sentiment,
    rm_sentiment_buckets,
    rm_sentiment_videos,
)
from projections.sentiment import NEGATIVE, NEUTRAL, POSITIVE, Key, SentimentView

CHANGED = "sentiment"
COMMENT_COLUMNS = ("comment_id", "video_id", "language", "label", "compound", "commented_at")
TALLIES = ("comments", "scored", "positive", "negative", "neutral", "compound_sum")
BUCKET_COLUMNS = ("kind", "key", "bucket_start", *TALLIES, "last_at")
VIDEO_COLUMNS = ("video_id", "status", "recent_comments", "recent_mean", "baseline", "turns",
                 "turned_at", "updated_at")  # fmt: skip
_LABEL_INDEX = {POSITIVE: 2, NEGATIVE: 3, NEUTRAL: 4}


class SqlSentimentView(SqlAlertSink, SentimentView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()
        self._reset()

    def _reset(self) -> None:
        self.comments: dict[UUID, tuple[Any, ...]] = {}
        self.buckets: dict[tuple[str, str, datetime], list[Any]] = {}
        self.videos: dict[UUID, tuple[Any, ...]] = {}
        self.gone: set[UUID] = set()  # deleted comments whose rows go
        self.expire_before: datetime | None = None

    def comment(
        self, comment_id: str, video_id: str, language: str, label: str | None,
        compound: float | None, at: datetime,
    ) -> None:  # fmt: skip
        cid = UUID(comment_id)
        self.comments[cid] = (cid, UUID(video_id), language, label, compound, at.astimezone(UTC))

    def count(
        self, keys: tuple[Key, ...], bucket: datetime, label: str | None,
        compound: float | None, at: datetime,
    ) -> None:  # fmt: skip
        self._tally(keys, bucket.astimezone(UTC), label, compound, 1, at.astimezone(UTC))

    def deleted(
        self, comment_id: str, keys: tuple[Key, ...], bucket: datetime | None,
        label: str | None, compound: float | None, at: datetime,
    ) -> None:  # fmt: skip
        cid = UUID(comment_id)
        if self.comments.pop(cid, None) is None:  # not inserted in this batch: delete it
            self.gone.add(cid)
        if bucket is not None:  # negative tallies; the bucket's start leaves last_at as is
            bucket = bucket.astimezone(UTC)
            self._tally(keys, bucket, label, compound, -1, bucket)

    def _tally(
        self, keys: tuple[Key, ...], bucket: datetime, label: str | None,
        compound: float | None, sign: int, at: datetime,
    ) -> None:  # fmt: skip
        """Add (sign 1) or take out (-1) one comment in `bucket` for each key: added to
        the stored tallies at flush."""
        for kind, key in keys:
            row = self.buckets.get((kind, key, bucket))
            if row is None:
                row = self.buckets[(kind, key, bucket)] = [0, 0, 0, 0, 0, 0.0, at]
            row[0] += sign
            if label is not None and compound is not None:
                row[1] += sign
                row[_LABEL_INDEX[label]] += sign
                row[5] += sign * compound
            row[6] = max(row[6], at)

    def video_status(
        self, video_id: str, status: str, recent_comments: int, recent_mean: float,
        baseline: float, turns: int, turned_at: datetime | None, at: datetime,
    ) -> None:  # fmt: skip
        vid = UUID(video_id)
        self.videos[vid] = (
            vid, status, recent_comments, recent_mean, baseline, turns,
            turned_at.astimezone(UTC) if turned_at else None, at.astimezone(UTC),
        )  # fmt: skip

    def expire(self, before: datetime) -> None:
        self.expire_before = before.astimezone(UTC)

    def flush(self) -> set[str]:
        conn = self.conn
        if self.gone:
            t = rm_comment_sentiment
            conn.execute(t.delete().where(t.c.comment_id.in_(sorted(self.gone))))
        if self.comments:
            upsert(conn, rm_comment_sentiment, COMMENT_COLUMNS, list(self.comments.values()),
                   key=COMMENT_COLUMNS[:1])  # fmt: skip
        if self.buckets:
            rows = [(*k, *v) for k, v in self.buckets.items()]
            update = {c: ADD for c in TALLIES} | {"last_at": MAX}
            upsert(conn, rm_sentiment_buckets, BUCKET_COLUMNS, rows, key=BUCKET_COLUMNS[:3],
                   update=update)  # fmt: skip
        if self.videos:
            upsert(conn, rm_sentiment_videos, VIDEO_COLUMNS, list(self.videos.values()),
                   key=VIDEO_COLUMNS[:1], update={c: SET for c in VIDEO_COLUMNS[1:]})  # fmt: skip
        if self.expire_before is not None:
            t = rm_sentiment_buckets
            conn.execute(t.delete().where(t.c.bucket_start < self.expire_before))
        if self.comments or self.buckets or self.videos or self.gone:
            self.changed.add(CHANGED)
        changed = self.changed
        self.changed = set()
        self._reset()
        return changed
