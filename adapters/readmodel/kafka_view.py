"""SQL side of the Kafka-run projection: the per-video engagement view and stored offsets.

`kafka_offsets` holds, per (consumer group, topic, partition), the next offset to read.
It is written in the same transaction as the read-model change of the messages before
it, so the read model and the offset are always consistent: a worker that takes over a
partition resumes exactly where the last committed transaction ended.

Writing it is a compare-and-set (`claim_offsets`): a batch only commits if the stored
offset is still the one its worker started from. A worker that lost its partitions but
still holds a batch (a zombie, e.g. after its session timed out) therefore cannot apply
messages that the partition's new owner applies too: whichever commits second rolls back.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import (
    kafka_offsets,
    projection_tracking,
    rm_kafka_video_engagement,
    rm_kafka_view_pairs,
)
from adapters.readmodel.upsert import insert_for, insert_ignore
from projections.video_engagement import VideoEngagementView

COUNTERS = ("views", "unique_viewers", "likes", "shares", "comments", "watch_ms", "completions")


class SqlVideoEngagementView(VideoEngagementView):
    """One instance per transaction: sums a batch's deltas in memory, writes them at flush."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.deltas: dict[UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.viewed_pairs: dict[tuple[UUID, UUID], None] = {}

    def add(
        self,
        video_id: UUID,
        viewer_id: UUID,
        *,
        views: int = 0,
        watch_ms: int = 0,
        completions: int = 0,
        likes: int = 0,
        shares: int = 0,
        comments: int = 0,
    ) -> None:
        d = self.deltas[video_id]
        d["views"] += views
        d["watch_ms"] += watch_ms
        d["completions"] += completions
        d["likes"] += likes
        d["shares"] += shares
        d["comments"] += comments
        if views:
            self.viewed_pairs[(video_id, viewer_id)] = None

    def flush(self) -> set[str]:
        """Write the batch with one upsert; return change keys (`video:<id>`)."""
        changed = {f"video:{v}" for v in self.deltas}
        self._flush_unique_viewers()
        if self.deltas:
            # Every touched video gets a row, even when its net delta is zero, so the table
            # does not depend on how messages were split into batches and workers. Sorted
            # keys: concurrent transactions lock rows in one order (no deadlocks).
            rows = [
                {"video_id": v, **{c: d.get(c, 0) for c in COUNTERS}}
                for v, d in sorted(self.deltas.items())
            ]
            stmt = insert_for(self.conn, rm_kafka_video_engagement)
            stmt = stmt.on_conflict_do_update(
                index_elements=["video_id"],
                set_={c: rm_kafka_video_engagement.c[c] + stmt.excluded[c] for c in COUNTERS},
            )
            self.conn.execute(stmt, rows)
        self.deltas.clear()
        return changed

    def _flush_unique_viewers(self) -> None:
        if not self.viewed_pairs:
            return
        pairs = sorted(self.viewed_pairs)
        existing: set[tuple[UUID, UUID]] = set()
        for i in range(0, len(pairs), 400):
            chunk = pairs[i : i + 400]
            rows = self.conn.execute(
                sa.select(rm_kafka_view_pairs.c.video_id, rm_kafka_view_pairs.c.viewer_id).where(
                    sa.tuple_(rm_kafka_view_pairs.c.video_id, rm_kafka_view_pairs.c.viewer_id).in_(
                        chunk
                    )
                )
            )
            existing.update((r.video_id, r.viewer_id) for r in rows)
        new = [p for p in pairs if p not in existing]
        insert_ignore(
            self.conn, rm_kafka_view_pairs, [{"video_id": v, "viewer_id": w} for v, w in new]
        )
        for video_id, _ in new:
            self.deltas[video_id]["unique_viewers"] += 1
        self.viewed_pairs.clear()


def make_video_engagement_view(conn: sa.Connection) -> Any:
    return SqlVideoEngagementView(conn)


# -- stored offsets ------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredOffset:
    next_offset: int
    last_position: int


class OffsetConflict(Exception):
    """The stored offset moved since this worker read it: another worker owns the
    partition now. The batch must roll back."""

    def __init__(self, partitions: Iterable[int]) -> None:
        self.partitions = sorted(partitions)
        super().__init__(f"stored offsets of partitions {self.partitions} moved")


def _key(group: str, topic: str) -> Any:
    return sa.and_(kafka_offsets.c.consumer_group == group, kafka_offsets.c.topic == topic)


def load_offsets(
    conn: sa.Connection, group: str, topic: str, partitions: Iterable[int]
) -> dict[int, StoredOffset]:
    """The stored offsets of these partitions (absent: nothing committed yet)."""
    rows = conn.execute(
        sa.select(
            kafka_offsets.c.partition, kafka_offsets.c.next_offset, kafka_offsets.c.last_position
        ).where(_key(group, topic), kafka_offsets.c.partition.in_(list(partitions)))
    )
    return {r.partition: StoredOffset(int(r.next_offset), int(r.last_position)) for r in rows}


def claim_offsets(
    conn: sa.Connection,
    group: str,
    topic: str,
    expected: Mapping[int, int | None],
    new: Mapping[int, int],
) -> dict[int, int]:
    """Move each partition's stored offset from `expected` (None: no row yet) to `new`,
    first thing in a batch's transaction; return the stored last positions.

    Raises OffsetConflict when a stored offset is not the expected one. Partitions are
    claimed in sorted order, so on PostgreSQL two workers wait for each other's offset
    rows (the loser re-checks after the winner commits and fails) instead of deadlocking.
    """
    now = datetime.now(UTC)
    moved = []
    for partition in sorted(new):
        old = expected[partition]
        if old is None:
            # RETURNING, not rowcount: psycopg reports -1 for INSERT .. ON CONFLICT DO NOTHING
            stmt = (
                insert_for(conn, kafka_offsets)
                .values(consumer_group=group, topic=topic, partition=partition,
                        next_offset=new[partition], last_position=0, events=0, updated_at=now)
                .on_conflict_do_nothing()
                .returning(kafka_offsets.c.partition)
            )  # fmt: skip
            claimed = conn.execute(stmt).first() is not None
        else:
            stmt = (
                kafka_offsets.update()
                .where(
                    _key(group, topic),
                    kafka_offsets.c.partition == partition,
                    kafka_offsets.c.next_offset == old,
                )
                .values(next_offset=new[partition], updated_at=now)
            )
            claimed = conn.execute(stmt).rowcount == 1
        if not claimed:
            moved.append(partition)
    if moved:
        raise OffsetConflict(moved)
    return {p: s.last_position for p, s in load_offsets(conn, group, topic, new).items()}


def record_progress(
    conn: sa.Connection,
    group: str,
    topic: str,
    last_positions: Mapping[int, int],
    events: Mapping[int, int],
    watermarks: Mapping[int, int] | None = None,
) -> None:
    """After a claimed batch: the highest event-store position seen, events applied, and
    the highest relay watermark read (a feed's partition is complete through it)."""
    marks = watermarks or {}
    for partition in sorted(last_positions):
        values: dict[str, Any] = {
            "last_position": last_positions[partition],
            "events": kafka_offsets.c.events + events.get(partition, 0),
        }
        mark = marks.get(partition)
        if mark is not None:
            values["complete_through"] = sa.case(
                (kafka_offsets.c.complete_through < mark, mark),
                else_=kafka_offsets.c.complete_through,
            )
        conn.execute(
            kafka_offsets.update()
            .where(_key(group, topic), kafka_offsets.c.partition == partition)
            .values(**values)
        )


def group_position(conn: sa.Connection, group: str, topic: str, partitions: int) -> int:
    """The position a group's read model is complete through: the least watermark over
    the topic's `partitions` partitions (0 while one has no stored offset yet)."""
    rows = conn.execute(
        sa.select(kafka_offsets.c.partition, kafka_offsets.c.complete_through).where(
            _key(group, topic)
        )
    ).all()
    marks = {int(r.partition): int(r.complete_through) for r in rows}
    if partitions <= 0 or any(p not in marks for p in range(partitions)):
        return 0
    return min(marks[p] for p in range(partitions))


def track_group_position(conn: sa.Connection, position: int, events: Mapping[str, int]) -> None:
    """Each projection's row in projection_tracking, as the single-process runner writes
    it: the position only moves forward (workers commit in any order)."""
    now = datetime.now(UTC)
    stmt = insert_for(conn, projection_tracking)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "position": sa.case(
                (projection_tracking.c.position < stmt.excluded.position, stmt.excluded.position),
                else_=projection_tracking.c.position,
            ),
            "events": projection_tracking.c.events + stmt.excluded.events,
            "updated_at": stmt.excluded.updated_at,
            "last_error": None,
        },
    )
    conn.execute(
        stmt,
        [
            {"name": name, "position": position, "events": n, "updated_at": now,
             "last_error": None}
            for name, n in sorted(events.items())
        ],
    )  # fmt: skip
