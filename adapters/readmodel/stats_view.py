"""SQL implementation of StatsView: accumulates a batch's deltas, writes them at flush."""

from collections import defaultdict
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import (
    ADD,
    SET,
    insert_returning_new,
    select_in,
    update_existing,
    upsert,
)
from adapters.readmodel.tables import (
    rm_creators,
    rm_follow_pairs,
    rm_hashtags,
    rm_sounds,
    rm_videos,
    rm_view_pairs,
)
from adapters.readmodel.times import as_utc
from adapters.readmodel.upsert import add_counters
from projections.stats import StatsView

COUNTERS = ("views", "likes", "shares", "comments")
CREATOR_COUNTERS = (*COUNTERS, "watch_seconds")
VIDEO_COUNTERS = (*COUNTERS, "watch_seconds", "completions", "unique_viewers")
VIDEO_UPDATE = {**dict.fromkeys(VIDEO_COUNTERS, ADD), "last_engaged_at": SET}
NEW_CREATOR_COLUMNS = ("creator_id", "handle", "display_name", "region", "status", "registered_at")
NEW_VIDEO_COLUMNS = (
    "video_id", "creator_id", "caption", "hashtags", "sound_id", "duration_seconds", "status",
    "published_at",
)  # fmt: skip


class SqlStatsView(StatsView):
    """One instance per transaction. Row inserts/updates that later events depend on are
    written immediately; hot counters are summed in memory and written once at flush."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.video_deltas: dict[UUID, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.last_engaged: dict[UUID, datetime] = {}
        self.viewed_pairs: dict[tuple[UUID, UUID], None] = {}
        self.follow_deltas: dict[UUID, int] = defaultdict(int)
        self.new_pairs: dict[UUID, dict[str, UUID]] = {}
        self.new_videos: dict[UUID, dict[str, Any]] = {}
        self.new_creators: dict[UUID, tuple[Any, ...]] = {}
        self._videos: dict[UUID, tuple[UUID, list[str], str | None]] = {}
        self._changed: set[str] = set()  # keys of mid-batch flushes (caption edits)

    # -- creators ---------------------------------------------------------------------------
    def creator_registered(
        self, creator_id: UUID, handle: str, display_name: str, region: str, at: datetime
    ) -> None:
        # Written at flush (or before anything that updates creators), in one statement.
        self.new_creators[creator_id] = (
            creator_id,
            handle,
            display_name,
            region,
            "active",
            as_utc(at),
        )

    def _write_new_creators(self) -> None:
        if self.new_creators:
            upsert(self.conn, rm_creators, NEW_CREATOR_COLUMNS, list(self.new_creators.values()),
                   key=("creator_id",))  # fmt: skip
            self.new_creators.clear()

    def creator_profile(self, creator_id: UUID, display_name: str, region: str) -> None:
        self._write_new_creators()
        self.conn.execute(
            rm_creators.update()
            .where(rm_creators.c.creator_id == creator_id)
            .values(display_name=display_name, region=region)
        )

    def creator_strikes(self, creator_id: UUID, delta: int) -> None:
        self._write_new_creators()
        add_counters(
            self.conn, rm_creators, "creator_id", {creator_id: {"strikes": delta}}, create=False
        )

    def creator_status(self, creator_id: UUID, status: str) -> None:
        self._write_new_creators()
        self.conn.execute(
            rm_creators.update().where(rm_creators.c.creator_id == creator_id).values(status=status)
        )

    # -- videos -----------------------------------------------------------------------------
    def video_published(
        self,
        video_id: UUID,
        creator_id: UUID,
        caption: str,
        hashtags: list[str],
        sound_id: str | None,
        duration_seconds: float,
        at: datetime,
    ) -> None:
        # Written at flush (or before anything that updates videos), in one statement each.
        self.new_videos[video_id] = dict(
            video_id=video_id, creator_id=creator_id, caption=caption, hashtags=hashtags,
            sound_id=sound_id, duration_seconds=duration_seconds, status="active",
            published_at=as_utc(at),
        )  # fmt: skip
        self._videos[video_id] = (creator_id, hashtags, sound_id)

    def _write_new_videos(self) -> None:
        """Insert the videos published in this batch and count them on their creators,
        hashtags and sounds."""
        self._write_new_creators()
        if not self.new_videos:
            return
        rows = list(self.new_videos.values())
        self.new_videos.clear()
        values = [tuple(r[c] for c in NEW_VIDEO_COLUMNS) for r in rows]
        upsert(self.conn, rm_videos, NEW_VIDEO_COLUMNS, values, key=("video_id",))
        creators: dict[UUID, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        tags: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        sounds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for r in rows:
            creators[r["creator_id"]]["videos"] += 1
            for t in r["hashtags"]:
                tags[t]["videos"] += 1
            if r["sound_id"]:
                sounds[r["sound_id"]]["videos"] += 1
        _add(self.conn, rm_creators, "creator_id", creators, ("videos",), create=False)
        _add(self.conn, rm_hashtags, "tag", tags, ("videos",), create=True)
        _add(self.conn, rm_sounds, "sound_id", sounds, ("videos",), create=True)

    def video_caption(self, video_id: UUID, caption: str, hashtags: list[str]) -> None:
        self.flush()  # counters so far belong to the old hashtags (and new videos are in)
        _, old, _ = self._video(video_id)
        self.conn.execute(
            rm_videos.update()
            .where(rm_videos.c.video_id == video_id)
            .values(caption=caption, hashtags=hashtags)
        )
        row = self.conn.execute(
            sa.select(*(rm_videos.c[c] for c in COUNTERS)).where(rm_videos.c.video_id == video_id)
        ).one()
        totals = dict(zip(COUNTERS, row, strict=True))
        # Move the video's history from the removed tags to the added ones.
        removed, added = set(old) - set(hashtags), set(hashtags) - set(old)
        self._tag_videos(sorted(removed), -1, {c: -v for c, v in totals.items()})
        self._tag_videos(sorted(added), +1, totals)
        self._videos[video_id] = (self._videos[video_id][0], hashtags, self._videos[video_id][2])

    def video_status(self, video_id: UUID, status: str) -> None:
        self._write_new_videos()
        self.conn.execute(
            rm_videos.update().where(rm_videos.c.video_id == video_id).values(status=status)
        )

    def _tag_videos(
        self, tags: list[str], videos: int, counters: dict[str, float] | None = None
    ) -> None:
        if tags:
            deltas = {t: {"videos": videos, **(counters or {})} for t in tags}
            add_counters(self.conn, rm_hashtags, "tag", deltas, create=True)

    def _video(self, video_id: UUID) -> tuple[UUID, list[str], str | None]:
        if video_id not in self._videos:
            row = self.conn.execute(
                sa.select(rm_videos.c.creator_id, rm_videos.c.hashtags, rm_videos.c.sound_id).where(
                    rm_videos.c.video_id == video_id
                )
            ).one()
            self._videos[video_id] = (row.creator_id, list(row.hashtags), row.sound_id)
        return self._videos[video_id]

    # -- engagement -------------------------------------------------------------------------
    def engagement(
        self,
        video_id: UUID,
        viewer_id: UUID,
        at: datetime,
        *,
        views: int = 0,
        watch_seconds: float = 0.0,
        completions: int = 0,
        likes: int = 0,
        shares: int = 0,
        comments: int = 0,
    ) -> None:
        d = self.video_deltas[video_id]
        d["views"] += views
        d["watch_seconds"] += watch_seconds
        d["completions"] += completions
        d["likes"] += likes
        d["shares"] += shares
        d["comments"] += comments
        if views:
            self.viewed_pairs[(video_id, viewer_id)] = None
        at = as_utc(at)
        if video_id not in self.last_engaged or at > self.last_engaged[video_id]:
            self.last_engaged[video_id] = at

    def follow_pair(self, pair_id: UUID, viewer_id: UUID, creator_id: UUID) -> None:
        # Written at flush, before the follow counters that need the pair's creator.
        self.new_pairs.setdefault(
            pair_id, dict(pair_id=pair_id, viewer_id=viewer_id, creator_id=creator_id)
        )

    def follow(self, pair_id: UUID, delta: int) -> None:
        self.follow_deltas[pair_id] += delta

    # -- flush ------------------------------------------------------------------------------
    def flush(self) -> set[str]:
        """Write the batch's counters, one statement per table; return change keys."""
        changed = {f"video:{v}" for v in self.video_deltas} | {"summary"} | self._changed
        self._changed = changed
        self._write_new_videos()
        self._flush_unique_viewers()
        self._load_videos(list(self.video_deltas))
        creators: dict[UUID, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        tags: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        sounds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for video_id, d in self.video_deltas.items():
            creator_id, hashtags, sound_id = self._video(video_id)
            for c in (*COUNTERS, "watch_seconds"):
                creators[creator_id][c] += d[c]
            for c in COUNTERS:
                for t in hashtags:
                    tags[t][c] += d[c]
                if sound_id:
                    sounds[sound_id][c] += d[c]
        if self.video_deltas:
            rows = [
                (v, *(d[c] for c in VIDEO_COUNTERS), self.last_engaged.get(v))
                for v, d in self.video_deltas.items()
            ]
            update_existing(self.conn, rm_videos, ("video_id", *VIDEO_COUNTERS, "last_engaged_at"),
                            rows, key=("video_id",), update=VIDEO_UPDATE)  # fmt: skip
        _add(self.conn, rm_creators, "creator_id", creators, CREATOR_COUNTERS, create=False)
        _add(self.conn, rm_hashtags, "tag", tags, COUNTERS, create=True)
        _add(self.conn, rm_sounds, "sound_id", sounds, COUNTERS, create=True)
        self._flush_follows()
        self.video_deltas.clear()
        self.last_engaged.clear()
        return changed

    def _flush_unique_viewers(self) -> None:
        if not self.viewed_pairs:
            return
        # One insert that skips known pairs and returns the new ones: each new pair is
        # one more unique viewer of its video.
        pair = ("video_id", "viewer_id")
        new = insert_returning_new(
            self.conn, rm_view_pairs, pair, list(self.viewed_pairs), key=pair
        )
        for video_id, _ in new:
            self.video_deltas[video_id]["unique_viewers"] += 1
        self.viewed_pairs.clear()

    def _load_videos(self, video_ids: list[UUID]) -> None:
        """The creator, hashtags and sound of every video not known yet, in one query."""
        missing = [v for v in video_ids if v not in self._videos]
        columns = ("video_id", "creator_id", "hashtags", "sound_id")
        for video_id, creator_id, hashtags, sound_id in select_in(
            self.conn, rm_videos, columns, "video_id", missing
        ):
            self._videos[video_id] = (creator_id, list(hashtags), sound_id)

    def _flush_follows(self) -> None:
        if self.new_pairs:
            rows = [
                (p["pair_id"], p["viewer_id"], p["creator_id"]) for p in self.new_pairs.values()
            ]
            upsert(self.conn, rm_follow_pairs, ("pair_id", "viewer_id", "creator_id"), rows,
                   key=("pair_id",))  # fmt: skip
            self.new_pairs.clear()
        if not self.follow_deltas:
            return
        ids = list(self.follow_deltas)
        columns = ("pair_id", "creator_id")
        creator_of = dict(select_in(self.conn, rm_follow_pairs, columns, "pair_id", ids))
        creators: dict[UUID, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for pair_id, delta in self.follow_deltas.items():
            creators[creator_of[pair_id]]["followers"] += delta
        _add(self.conn, rm_creators, "creator_id", creators, ("followers",), create=False)
        states = [(p, d > 0) for p, d in self.follow_deltas.items() if d]
        update_existing(self.conn, rm_follow_pairs, ("pair_id", "following"), states,
                        key=("pair_id",), update={"following": SET})  # fmt: skip
        self.follow_deltas.clear()


def _add(
    conn: sa.Connection,
    table: sa.Table,
    key: str,
    deltas: dict[Any, dict[str, float]],
    counters: tuple[str, ...],
    *,
    create: bool,
) -> None:
    """counter += delta for every row of `deltas` in one statement; with create=False the
    rows must exist (an update), else missing ones are inserted."""
    if not deltas:
        return
    rows = [(k, *(d.get(c, 0) for c in counters)) for k, d in deltas.items()]
    update = dict.fromkeys(counters, ADD)
    if create:
        upsert(conn, table, (key, *counters), rows, key=(key,), update=update)
    else:
        update_existing(conn, table, (key, *counters), rows, key=(key,), update=update)


def make_stats_view(conn: sa.Connection) -> Any:
    return SqlStatsView(conn)
