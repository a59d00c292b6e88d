"""Compare the stats read models with a recount from the event store."""

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Mapper, Notification

from adapters.readmodel.tables import projection_quarantine, rm_creators, rm_videos
from commands.base import SharedStore
from projections.recount import CREATOR_COUNTERS, VIDEO_COUNTERS, recount


@dataclass(frozen=True)
class Mismatch:
    table: str
    key: str
    column: str
    expected: float
    actual: float | None


@dataclass(frozen=True)
class RecountReport:
    events: int
    rows_checked: int
    mismatches: list[Mismatch]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def notification_pages(
    store: SharedStore, topics: Sequence[str] = (), page: int = 5000
) -> Iterator[list[Notification]]:
    """The stored notifications up to the current head (only those of `topics` when
    given), in log order, a page at a time, as stored (not decoded)."""
    start = 1
    head = store.recorder.max_notification_id() or 0
    while start <= head:
        notifications = store.recorder.select_notifications(
            start=start, limit=page, stop=head, topics=topics
        )
        if not notifications:
            return
        yield notifications
        start = notifications[-1].id + 1


def stored_events(
    store: SharedStore,
    mapper: Mapper[Any],
    topics: Sequence[str] = (),
    page: int = 5000,
    skip: Collection[int] = (),
) -> Iterator[tuple[int, Any]]:
    """(position, domain event) for every stored event up to the current head (only those
    of `topics` when given), in log order, read in pages; the positions in `skip` are
    left out undecoded."""
    for notifications in notification_pages(store, topics, page):
        for n in notifications:
            if n.id not in skip:
                yield n.id, mapper.to_domain_event(n)


def all_events(store: SharedStore, mapper: Mapper[Any], page: int = 5000) -> Iterator[Any]:
    for _, event in stored_events(store, mapper, page=page):
        yield event


def recount_check(
    store: SharedStore, mapper: Mapper[Any], engine: sa.Engine, name: str = "stats"
) -> RecountReport:
    """Recount the stats counters from the history, without the events that projection
    `name` quarantined (in `engine`'s projection_quarantine), and compare."""
    with engine.connect() as conn:
        q = projection_quarantine.c
        skipped = {p for (p,) in conn.execute(sa.select(q.position).where(q.name == name))}
    counts = recount(e for _, e in stored_events(store, mapper, skip=skipped))
    mismatches: list[Mismatch] = []
    checked = 0
    with engine.connect() as conn:
        for table, key, expected, columns in (
            (rm_videos, "video_id", counts.videos, VIDEO_COUNTERS),
            (rm_creators, "creator_id", counts.creators, CREATOR_COUNTERS),
        ):
            actual = {
                row[0]: row[1:]
                for row in conn.execute(sa.select(table.c[key], *(table.c[c] for c in columns)))
            }
            for k in set(expected) | set(actual):
                checked += 1
                row = actual.get(k)
                for i, column in enumerate(columns):
                    want = expected.get(k, {}).get(column, 0) if k in expected else None
                    got = None if row is None else row[i]
                    if want is None or got is None or abs(float(want) - float(got)) > 1e-6:
                        mismatches.append(
                            Mismatch(table.name, str(k), column, float(want or 0), got)
                        )
    return RecountReport(events=counts.events, rows_checked=checked, mismatches=mismatches)
