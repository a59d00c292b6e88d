"""SQL implementation of StatsView: accumulates a batch's deltas, writes them at flush."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.bulk import (
    ADD,
    ADD_MS,
    MAX,
    SET,
    select_in,
    update_existing,
    upsert,
    write_counting_new,
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
# A batch's deltas per video, in this order (a list per video: one index per counter).
DELTAS = (*CREATOR_COUNTERS, "completions")
VIDEO_COLUMNS = ("video_id", *DELTAS, "last_engaged_at")
# watch time in whole milliseconds (bulk.ADD_MS): exact, whatever the order of additions
VIDEO_UPDATE = {**dict.fromkeys(DELTAS, ADD), "watch_seconds": ADD_MS, "last_engaged_at": MAX}
VIEW_PAIR = ("video_id", "viewer_id")
FOLLOW_PAIR = ("pair_id", "viewer_id", "creator_id")
NEW_CREATOR_COLUMNS = ("creator_id", "handle", "display_name", "region", "status", "registered_at")
# Registered fills in the profile of a row its videos may have created (counters only).
CREATOR_PROFILE = dict.fromkeys(NEW_CREATOR_COLUMNS[1:], SET)
NEW_VIDEO_COLUMNS = (
    "video_id", "creator_id", "caption", "hashtags", "sound_id", "duration_seconds", "status",
    "published_at",
)  # fmt: skip


class SqlStatsView(StatsView):
    """One instance per transaction. Row inserts/updates that later events depend on are
    written immediately; hot counters are summed in memory and written once at flush.

    Keyed workers apply a creator's events (keyed by creator) and its videos' events
    (keyed by video) in any interleaving, so counters that roll up to a creator create
    its row when absent (profile NULL), and Creator.Registered fills in the profile of an
    existing row without touching its counters: the result is the same in any order."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.video_deltas: dict[UUID, list[int]] = {}  # DELTAS per video (watch in ms)
        self.last_engaged: dict[UUID, datetime] = {}
        self.viewed_pairs: dict[tuple[UUID, UUID], None] = {}
        self.follow_deltas: dict[UUID, int] = defaultdict(int)
        self.new_pairs: dict[UUID, tuple[UUID, UUID, UUID]] = {}
        self.new_videos: dict[UUID, dict[str, Any]] = {}
        self.new_creators: dict[UUID, tuple[Any, ...]] = {}
        # videos published in this batch, per creator / hashtag / sound (added at flush)
        self.published_by: dict[UUID, int] = defaultdict(int)
        self.published_with_tag: dict[str, int] = defaultdict(int)
        self.published_with_sound: dict[str, int] = defaultdict(int)
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
                   key=("creator_id",), update=CREATOR_PROFILE)  # fmt: skip
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
        """Insert the videos published in this batch; their counts on creators, hashtags
        and sounds are added at flush, with the engagement counters (one statement per
        table: see flush)."""
        if not self.new_videos:
            return
        rows = list(self.new_videos.values())
        self.new_videos.clear()
        values = [tuple(r[c] for c in NEW_VIDEO_COLUMNS) for r in rows]
        upsert(self.conn, rm_videos, NEW_VIDEO_COLUMNS, values, key=("video_id",))
        for r in rows:
            self.published_by[r["creator_id"]] += 1
            for t in r["hashtags"]:
                self.published_with_tag[t] += 1
            if r["sound_id"]:
                self.published_with_sound[r["sound_id"]] += 1

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
        d = self.video_deltas.get(video_id)
        if d is None:
            d = self.video_deltas[video_id] = [0, 0, 0, 0, 0, 0]
        d[0] += views
        d[1] += likes
        d[2] += shares
        d[3] += comments
        d[4] += round(watch_seconds * 1000)
        d[5] += completions
        if views:
            self.viewed_pairs[(video_id, viewer_id)] = None
        at = as_utc(at)
        last = self.last_engaged.get(video_id)
        if last is None or at > last:
            self.last_engaged[video_id] = at

    def viewed(
        self, video_id: UUID, viewer_id: UUID, at: datetime, watch_seconds: float, completed: bool
    ) -> None:
        """engagement(views=1, watch_seconds=..., completions=int(completed)) in one call."""
        d = self.video_deltas.get(video_id)
        if d is None:
            d = self.video_deltas[video_id] = [0, 0, 0, 0, 0, 0]
        d[0] += 1
        d[4] += round(watch_seconds * 1000)
        if completed:
            d[5] += 1
        self.viewed_pairs[(video_id, viewer_id)] = None
        at = as_utc(at)
        last = self.last_engaged.get(video_id)
        if last is None or at > last:
            self.last_engaged[video_id] = at

    def follow_pair(self, pair_id: UUID, viewer_id: UUID, creator_id: UUID) -> None:
        # Written at flush, before the follow counters that need the pair's creator.
        self.new_pairs.setdefault(pair_id, (pair_id, viewer_id, creator_id))

    def follow(self, pair_id: UUID, delta: int) -> None:
        self.follow_deltas[pair_id] += delta

    # -- flush ------------------------------------------------------------------------------
    def flush(self) -> set[str]:
        """Write the batch's counters, one statement per table; return change keys.

        Keyed workers write the same creator, hashtag and sound rows concurrently. Each of
        those tables gets ONE statement per flush, its rows sorted by key, the tables in
        one order, and the profiles of new creators after them: transactions lock shared
        rows in one global order, so they wait for each other but never deadlock."""
        changed = {f"video:{v}" for v in self.video_deltas} | {"summary"} | self._changed
        self._changed = changed
        self._write_new_videos()
        self._load_videos(list(self.video_deltas))
        # (videos, *CREATOR_COUNTERS, followers) per creator; (videos, *COUNTERS) per tag/sound
        creators: dict[UUID, list[float]] = {}
        tags: dict[str, list[float]] = {}
        sounds: dict[str, list[float]] = {}
        for creator_id, n in self.published_by.items():
            _sum_into(creators, creator_id, (n, 0, 0, 0, 0, 0, 0))
        for tag, n in self.published_with_tag.items():
            _sum_into(tags, tag, (n, 0, 0, 0, 0))
        for sound_id, n in self.published_with_sound.items():
            _sum_into(sounds, sound_id, (n, 0, 0, 0, 0))
        self.published_by.clear()
        self.published_with_tag.clear()
        self.published_with_sound.clear()
        for video_id, d in self.video_deltas.items():
            creator_id, hashtags, sound_id = self._video(video_id)
            _sum_into(creators, creator_id, (0, *d[:5], 0))
            engagement = (0, *d[:4])
            for t in hashtags:
                _sum_into(tags, t, engagement)
            if sound_id:
                _sum_into(sounds, sound_id, engagement)
        if self.video_deltas:
            # Each new (video, viewer) pair is one more unique viewer of its video.
            rows = [
                (v, *d[:4], d[4] / 1000, d[5], self.last_engaged.get(v))
                for v, d in self.video_deltas.items()
            ]
            write_counting_new(
                self.conn, rm_videos, VIDEO_COLUMNS, rows, key=("video_id",),
                update=VIDEO_UPDATE, count="unique_viewers", children=rm_view_pairs,
                child_columns=VIEW_PAIR, child_rows=list(self.viewed_pairs), create=False,
            )  # fmt: skip
        follows = self._follows()
        for creator_id, delta in follows.items():
            _sum_into(creators, creator_id, (0, 0, 0, 0, 0, 0, delta))
        _add_rows(self.conn, rm_creators, "creator_id", creators,
                  ("videos", *CREATOR_COUNTERS, "followers"), create=True)  # fmt: skip
        _add_rows(self.conn, rm_hashtags, "tag", tags, ("videos", *COUNTERS), create=True)
        _add_rows(self.conn, rm_sounds, "sound_id", sounds, ("videos", *COUNTERS), create=True)
        self._write_new_creators()
        self.video_deltas.clear()
        self.last_engaged.clear()
        self.viewed_pairs.clear()
        return changed

    def _load_videos(self, video_ids: list[UUID]) -> None:
        """The creator, hashtags and sound of every video not known yet, in one query."""
        missing = [v for v in video_ids if v not in self._videos]
        columns = ("video_id", "creator_id", "hashtags", "sound_id")
        for video_id, creator_id, hashtags, sound_id in select_in(
            self.conn, rm_videos, columns, "video_id", missing
        ):
            self._videos[video_id] = (creator_id, list(hashtags), sound_id)

    def _follows(self) -> dict[UUID, int]:
        """Write the batch's follow pairs and their states; return the follower deltas
        per creator. A pair started in this batch is inserted with its state (its creator
        is known); the others are looked up and updated."""
        new, self.new_pairs = self.new_pairs, {}
        deltas, self.follow_deltas = self.follow_deltas, defaultdict(int)
        if new:
            rows = [(*pair, deltas.get(pair[0], 0) > 0) for pair in new.values()]
            upsert(self.conn, rm_follow_pairs, (*FOLLOW_PAIR, "following"), rows, key=("pair_id",))
        creators: dict[UUID, int] = defaultdict(int)
        stored = [p for p in deltas if p not in new]
        columns = ("pair_id", "creator_id")
        creator_of = dict(select_in(self.conn, rm_follow_pairs, columns, "pair_id", stored))
        for pair_id, delta in deltas.items():
            pair = new.get(pair_id)
            creators[pair[2] if pair is not None else creator_of[pair_id]] += delta
        states = [(p, deltas[p] > 0) for p in stored if deltas[p]]
        update_existing(self.conn, rm_follow_pairs, ("pair_id", "following"), states,
                        key=("pair_id",), update={"following": SET})  # fmt: skip
        return {c: d for c, d in creators.items() if d}


def _sum_into(totals: dict[Any, list[float]], key: Any, values: Sequence[float]) -> None:
    """totals[key] += values, elementwise."""
    row = totals.get(key)
    if row is None:
        totals[key] = list(values)
    else:
        for i, v in enumerate(values):
            row[i] += v


def _add_rows(
    conn: sa.Connection,
    table: sa.Table,
    key: str,
    totals: dict[Any, list[float]],
    counters: tuple[str, ...],
    *,
    create: bool,
) -> None:
    """counter += delta for every row of `totals` (lists in `counters` order) in one
    statement; with create=False the rows must exist (an update), else missing ones are
    inserted."""
    if not totals:
        return
    # Sorted by key: transactions that share rows lock them in one order (no deadlock).
    rows = [(k, *totals[k]) for k in sorted(totals)]
    update = dict.fromkeys(counters, ADD)
    if "watch_seconds" in counters:  # summed in milliseconds (bulk.ADD_MS)
        i = counters.index("watch_seconds") + 1
        rows = [(*r[:i], r[i] / 1000, *r[i + 1 :]) for r in rows]
        update["watch_seconds"] = ADD_MS
    if create:
        upsert(conn, table, (key, *counters), rows, key=(key,), update=update)
    else:
        update_existing(conn, table, (key, *counters), rows, key=(key,), update=update)


def make_stats_view(conn: sa.Connection) -> Any:
    return SqlStatsView(conn)
