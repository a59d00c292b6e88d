"""SQL implementation of TrendingView: bucket deltas are summed in memory per batch and
upserted at flush; the watermark and the video lookup are cached for the transaction.

Stamped (a Kafka worker of the video feed, adapters/kafka/projection_consumer.py): before
each event the worker hands in the watermark the relay stamped on it (`stamp`), the
global one before that event, which `watermark_minute` returns instead of this
transaction's. Several workers then write the same hashtag and sound buckets and the one
watermark row, so the flush first raises the watermark row to the largest stamp or minute
it saw (GREATEST, which locks the row: the workers' flushes take turns), then writes its
buckets sorted by key, then deletes the buckets older than the row's watermark minus the
retention. The last flush of all deletes with the largest watermark, so the tables end
as the single-process runner leaves them, whatever the order of the workers."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import ADD, SET, qualified, raw_execute, select_in, upsert
from adapters.readmodel.tables import rm_trend_buckets, rm_trend_meta, rm_trend_videos
from adapters.readmodel.upsert import insert_for
from projections.trending import RETENTION_MINUTES, Counts, TrendingView, VideoKeys

WATERMARK, LATE_DROPPED = "watermark_minute", "late_dropped"
VIDEO_COLUMNS = ("video_id", "hashtags", "sound_id", "published_at")
COUNTERS = ("views", "likes", "shares", "comments")
BUCKET_COLUMNS = ("kind", "key", "minute", *COUNTERS)
BUCKET_UPDATE = dict.fromkeys(COUNTERS, ADD)
BucketKey = tuple[str, str, int]  # kind, key, minute


class SqlTrendingView(TrendingView):
    """One instance per read-model transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.buckets: dict[BucketKey, list[int]] = {}
        self.late = 0
        self.discard_minute: int | None = None
        self._videos: dict[UUID, VideoKeys | None] = {}
        self._new_videos: dict[UUID, tuple[UUID, list[str], str | None, datetime]] = {}
        self._watermark: int | None = None
        self._watermark_loaded = False
        self._watermark_changed = False
        self.stamped = False  # a Kafka worker hands in the relay's watermarks (stamp)
        self._stamp: int | None = None
        self._highest: int | None = None  # stamped: the largest stamp or minute seen

    def stamp(self, minute: int | None) -> None:
        """The global watermark before the next event (stamped by the relay)."""
        self.stamped = True
        self._stamp = minute
        if minute is not None and (self._highest is None or minute > self._highest):
            self._highest = minute

    # -- video lookup -------------------------------------------------------------------
    def video_published(
        self, video_id: UUID, hashtags: list[str], sound_id: str | None, at: datetime
    ) -> None:
        # Written at flush with the batch's other new videos (one statement).
        self._new_videos[video_id] = (video_id, list(hashtags), sound_id, at.astimezone(UTC))
        self._videos[video_id] = VideoKeys(list(hashtags), sound_id)

    def video_hashtags(self, video_id: UUID, hashtags: list[str]) -> None:
        new = self._new_videos.get(video_id)
        if new is not None:  # published in this batch: not stored yet
            self._new_videos[video_id] = (video_id, list(hashtags), new[2], new[3])
            self._videos[video_id] = VideoKeys(list(hashtags), new[2])
            return
        self.conn.execute(
            rm_trend_videos.update()
            .where(rm_trend_videos.c.video_id == video_id)
            .values(hashtags=hashtags)
        )
        found = self.video_keys(video_id)
        if found is not None:
            self._videos[video_id] = VideoKeys(list(hashtags), found.sound_id)

    def prefetch(self, events: Sequence[Any]) -> None:
        """The hashtags and sound of every video the batch's events name, in one query."""
        wanted = [
            v
            for v in dict.fromkeys(getattr(e, "video_id", None) for e in events)
            if isinstance(v, UUID) and v not in self._videos
        ]
        columns = ("video_id", "hashtags", "sound_id")
        rows = select_in(self.conn, rm_trend_videos, columns, "video_id", wanted)
        found = {v: VideoKeys(list(tags), sound) for v, tags, sound in rows}
        for video_id in wanted:
            self._videos[video_id] = found.get(video_id)

    def video_keys(self, video_id: UUID) -> VideoKeys | None:
        if video_id not in self._videos:
            row = self.conn.execute(
                sa.select(rm_trend_videos.c.hashtags, rm_trend_videos.c.sound_id).where(
                    rm_trend_videos.c.video_id == video_id
                )
            ).first()
            self._videos[video_id] = VideoKeys(list(row.hashtags), row.sound_id) if row else None
        return self._videos[video_id]

    # -- watermark ------------------------------------------------------------------------
    def watermark_minute(self) -> int | None:
        if self.stamped:
            return self._stamp
        if not self._watermark_loaded:
            self._watermark = self._meta(WATERMARK)
            self._watermark_loaded = True
        return self._watermark

    def set_watermark(self, minute: int) -> None:
        if self.stamped:
            if self._highest is None or minute > self._highest:
                self._highest = minute
            return
        self._watermark, self._watermark_loaded, self._watermark_changed = minute, True, True

    # -- buckets --------------------------------------------------------------------------
    def add(self, keys: list[tuple[str, str]], minute: int, counts: Counts) -> None:
        buckets = self.buckets
        views, likes, shares, comments = counts
        for kind, key in keys:
            bucket = buckets.get((kind, key, minute))
            if bucket is None:
                buckets[(kind, key, minute)] = [views, likes, shares, comments]
            else:
                bucket[0] += views
                bucket[1] += likes
                bucket[2] += shares
                bucket[3] += comments

    def late_dropped(self) -> None:
        self.late += 1

    def discard_before(self, minute: int) -> None:
        if self.stamped:
            return  # at flush, from the watermark row (see the module docstring)
        if self.discard_minute is None or minute > self.discard_minute:
            self.discard_minute = minute

    # -- flush ----------------------------------------------------------------------------
    def flush(self) -> set[str]:
        """Write the batch; return {"trending"} when any bucket or the watermark changed."""
        changed = bool(self.buckets) or self._watermark_changed
        if self._new_videos:
            upsert(self.conn, rm_trend_videos, VIDEO_COLUMNS, list(self._new_videos.values()),
                   key=("video_id",))  # fmt: skip
            self._new_videos.clear()
        # Stamped: the shared watermark row first (its lock orders the workers' flushes).
        discard = self._raise_shared_watermark() if self.stamped else self.discard_minute
        self._flush_buckets()
        # After the upsert, so a bucket both touched and outdated in this batch goes too.
        if discard is not None:
            self._discard(discard)
        self.discard_minute = None
        if self._watermark_changed:  # never when stamped (set_watermark keeps it local)
            assert self._watermark is not None
            upsert(self.conn, rm_trend_meta, ("key", "value"), [(WATERMARK, self._watermark)],
                   key=("key",), update={"value": SET})  # fmt: skip
            self._watermark_changed = False
        if self.late:
            upsert(self.conn, rm_trend_meta, ("key", "value"), [(LATE_DROPPED, self.late)],
                   key=("key",), update={"value": ADD})  # fmt: skip
            self.late = 0
        return {"trending"} if changed else set()

    def _raise_shared_watermark(self) -> int | None:
        """Stamped: raise the watermark row to the largest stamp or minute this batch saw
        (GREATEST, which locks the row); return the minute to discard buckets before, or
        None when there is nothing to delete: the flush neither moved (or met) the
        watermark nor adds to a minute already past it (a worker far behind the others).
        The DELETE scans, so it runs only then."""
        if self._highest is None:
            return None
        stmt = insert_for(self.conn, rm_trend_meta).values(key=WATERMARK, value=self._highest)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": sa.case((rm_trend_meta.c.value < stmt.excluded.value,
                                    stmt.excluded.value), else_=rm_trend_meta.c.value)},
        ).returning(rm_trend_meta.c.value)  # fmt: skip
        watermark = int(self.conn.execute(stmt).scalar_one())
        threshold = watermark - RETENTION_MINUTES
        highest, self._highest = self._highest, None
        oldest = min((minute for _, _, minute in self.buckets), default=None)
        if watermark != highest and (oldest is None or oldest >= threshold):
            return None
        return threshold

    def _discard(self, minute: int) -> None:
        """Delete the buckets of minutes before `minute` (a prepared statement on
        PostgreSQL: a batch's flush runs it every time the watermark moves)."""
        if self.conn.dialect.name == "postgresql":
            table = qualified(self.conn, rm_trend_buckets)
            raw_execute(self.conn, f"DELETE FROM {table} WHERE minute < %b::bigint", (minute,))
            return
        self.conn.execute(rm_trend_buckets.delete().where(rm_trend_buckets.c.minute < minute))

    def _flush_buckets(self) -> None:
        # Rows whose net delta is zero (a like and its unlike) are still written, so which
        # buckets exist does not depend on how the events were split into batches.
        if not self.buckets:
            return
        # Sorted: workers sharing hashtag and sound buckets lock them in one order.
        rows = [(*k, *self.buckets[k]) for k in sorted(self.buckets)]
        upsert(self.conn, rm_trend_buckets, BUCKET_COLUMNS, rows,
               key=("kind", "key", "minute"), update=BUCKET_UPDATE)  # fmt: skip
        self.buckets.clear()

    def _meta(self, key: str) -> int | None:
        found = select_in(self.conn, rm_trend_meta, ("value",), "key", [key])
        return int(found[0][0]) if found else None
