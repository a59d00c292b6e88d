"""SQL implementation of StatsReader (SQLAlchemy Core, keyset pagination)."""

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_cases, rm_creators, rm_hashtags, rm_sounds, rm_videos
from adapters.readmodel.times import as_utc
from queries.stats import (
    CreatorStats,
    Page,
    PlatformSummary,
    StatsReader,
    TagStats,
    VideoFilter,
    VideoOrder,
    VideoStats,
    decode_cursor,
    encode_cursor,
)

V = rm_videos.c
C = rm_creators.c
# A row whose creator is not registered yet (its videos' counters came first: keyed
# workers, migration 0011) is no creator to show.
REGISTERED = C.handle.is_not(None)


def _video(row: Any) -> VideoStats:
    return VideoStats(
        video_id=row.video_id,
        creator_id=row.creator_id,
        caption=row.caption,
        hashtags=tuple(row.hashtags),
        sound_id=row.sound_id,
        duration_seconds=row.duration_seconds,
        status=row.status,
        published_at=as_utc(row.published_at),
        views=row.views,
        unique_viewers=row.unique_viewers,
        likes=row.likes,
        shares=row.shares,
        comments=row.comments,
        watch_seconds=row.watch_seconds,
        completions=row.completions,
    )


def _creator(row: Any) -> CreatorStats:
    return CreatorStats(
        creator_id=row.creator_id,
        handle=row.handle,
        display_name=row.display_name,
        region=row.region,
        status=row.status,
        registered_at=as_utc(row.registered_at),
        followers=row.followers,
        videos=row.videos,
        views=row.views,
        likes=row.likes,
        shares=row.shares,
        comments=row.comments,
        strikes=row.strikes,
    )


ORDER_COLUMN = {
    VideoOrder.NEWEST: V.published_at,
    VideoOrder.MOST_VIEWED: V.views,
    VideoOrder.MOST_LIKED: V.likes,
}


class SqlStatsReader(StatsReader):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements = 0  # counted, so tests can show batching keeps it constant

    def _rows(self, stmt: Any) -> list[Any]:
        self.statements += 1
        with self.engine.connect() as conn:
            return list(conn.execute(stmt))

    def video(self, video_id: UUID) -> VideoStats | None:
        rows = self._rows(sa.select(rm_videos).where(V.video_id == video_id))
        return _video(rows[0]) if rows else None

    def videos_by_ids(self, ids: list[UUID]) -> dict[UUID, VideoStats]:
        if not ids:
            return {}
        return {
            r.video_id: _video(r)
            for r in self._rows(sa.select(rm_videos).where(V.video_id.in_(ids)))
        }

    def videos(self, flt: VideoFilter, order: VideoOrder, first: int, after: str | None) -> Page:
        col = ORDER_COLUMN[order]
        stmt = sa.select(rm_videos)
        if flt.creator_id is not None:
            stmt = stmt.where(V.creator_id == flt.creator_id)
        if flt.status is not None:
            stmt = stmt.where(V.status == flt.status)
        if flt.sound_id is not None:
            stmt = stmt.where(V.sound_id == flt.sound_id)
        if flt.hashtag is not None:
            # JSON array membership, portable across SQLite and PostgreSQL via LIKE on text.
            stmt = stmt.where(sa.cast(V.hashtags, sa.Text).like(f'%"{flt.hashtag}"%'))
        if after is not None:
            value, last_id = decode_cursor(after)
            if order is VideoOrder.NEWEST:
                value = datetime.fromisoformat(value)
            stmt = stmt.where(
                sa.or_(col < value, sa.and_(col == value, V.video_id < UUID(last_id)))
            )
        stmt = stmt.order_by(col.desc(), V.video_id.desc()).limit(first + 1)
        rows = self._rows(stmt)
        items = [_video(r) for r in rows[:first]]
        end = None
        if items:
            last = rows[len(items) - 1]
            value = getattr(last, col.name)
            end = encode_cursor(
                value.isoformat() if isinstance(value, datetime) else value, str(last.video_id)
            )
        return Page(items=items, end_cursor=end, has_next_page=len(rows) > first)

    def creator(self, creator_id: UUID) -> CreatorStats | None:
        rows = self._rows(sa.select(rm_creators).where(C.creator_id == creator_id, REGISTERED))
        return _creator(rows[0]) if rows else None

    def creators_by_ids(self, ids: list[UUID]) -> dict[UUID, CreatorStats]:
        if not ids:
            return {}
        return {
            r.creator_id: _creator(r)
            for r in self._rows(sa.select(rm_creators).where(C.creator_id.in_(ids), REGISTERED))
        }

    def hashtag(self, tag: str) -> TagStats | None:
        rows = self._rows(sa.select(rm_hashtags).where(rm_hashtags.c.tag == tag))
        return TagStats(rows[0].tag, *rows[0][1:]) if rows else None

    def sound(self, sound_id: str) -> TagStats | None:
        rows = self._rows(sa.select(rm_sounds).where(rm_sounds.c.sound_id == sound_id))
        return TagStats(rows[0].sound_id, *rows[0][1:]) if rows else None

    def summary(self) -> PlatformSummary:
        (c,) = self._rows(
            sa.select(sa.func.count(), sa.func.count().filter(C.status == "suspended"))
            .select_from(rm_creators)
            .where(REGISTERED)
        )
        (v,) = self._rows(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(V.status == "removed"),
                sa.func.coalesce(sa.func.sum(V.views), 0),
                sa.func.coalesce(sa.func.sum(V.likes), 0),
                sa.func.coalesce(sa.func.sum(V.shares), 0),
                sa.func.coalesce(sa.func.sum(V.comments), 0),
                sa.func.coalesce(sa.func.sum(V.watch_seconds), 0.0),
            )
        )
        (o,) = self._rows(
            sa.select(sa.func.count()).select_from(rm_cases).where(rm_cases.c.status == "open")
        )
        return PlatformSummary(
            creators=c[0],
            suspended_creators=c[1],
            videos=v[0],
            removed_videos=v[1],
            views=int(v[2]),
            likes=int(v[3]),
            shares=int(v[4]),
            comments=int(v[5]),
            watch_seconds=float(v[6]),
            open_cases=o[0],
        )
