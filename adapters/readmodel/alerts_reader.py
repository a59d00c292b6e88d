"""Reading alerts: a cursor-paginated list (newest first) and a feed for subscriptions.

Order: newest first by (position, alert_id) descending. `position` is the event that
raised the alert, so the order is the order of the event log (event time, not the time
a projection happened to catch up), it is total (alert_id breaks ties) and stable under
inserts: keyset pagination with an opaque cursor (urlsafe base64 of "position:alert_id")
never skips or repeats a row, whatever arrives while a client pages.

Several projections raise alerts (rules, bot detector, emerging trends) and each commits
at its own pace, so "alerts after position p" alone can miss an alert that a lagging
projection writes later below p. `AlertFeed` keeps a low-water mark instead: the lowest
tracking position of the alert-raising projections; every alert at or below it is
already committed, so only alerts above it are re-read, de-duplicated by id.
"""

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import projection_tracking, rm_alerts
from adapters.readmodel.times import as_utc
from domain.errors import InvalidValue

MAX_PAGE = 100


class InvalidCursor(InvalidValue, ValueError):
    """A malformed `after` cursor (REST: 422 through InvalidValue; GraphQL: ValueError)."""

    code = "invalid_cursor"


class InvalidPageSize(InvalidValue, ValueError):
    code = "invalid_page_size"


@dataclass(frozen=True)
class AlertItem:
    id: UUID
    rule: str
    source: str
    subject_type: str
    subject_id: str
    severity: str
    score: float
    summary: str
    details: dict[str, Any]
    raised_at: datetime  # event time
    position: int
    action: str | None
    action_status: str | None  # pending | done | skipped | failed | abandoned
    action_result: str | None
    acted_at: datetime | None

    @property
    def cursor(self) -> str:
        return encode_cursor(self.position, self.id)


@dataclass(frozen=True)
class AlertPage:
    items: tuple[AlertItem, ...]
    end_cursor: str | None
    has_next_page: bool


def encode_cursor(position: int, alert_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{position}:{alert_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
        position, alert_id = raw.split(":", 1)
        return int(position), UUID(alert_id)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidCursor("invalid alerts cursor", code="invalid_cursor") from None


def _item(row: Any) -> AlertItem:
    return AlertItem(
        id=row.alert_id,
        rule=row.rule,
        source=row.source,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        severity=row.severity,
        score=float(row.score),
        summary=row.summary,
        details=dict(row.details or {}),
        raised_at=as_utc(row.raised_at),
        position=int(row.position),
        action=row.action,
        action_status=row.action_status,
        action_result=row.action_result,
        acted_at=as_utc(row.acted_at) if row.acted_at is not None else None,
    )


def alerts(
    conn: sa.Connection, first: int, after: str | None = None, rule: str | None = None
) -> AlertPage:
    """A page of alerts, newest first, optionally of one rule; `after` is an end cursor."""
    if not 1 <= first <= MAX_PAGE:
        raise InvalidPageSize(f"`first` must be between 1 and {MAX_PAGE}", code="page_size")
    a = rm_alerts.c
    stmt = sa.select(rm_alerts)
    if rule is not None:
        stmt = stmt.where(a.rule == rule)
    if after is not None:
        position, alert_id = decode_cursor(after)
        stmt = stmt.where(
            sa.or_(a.position < position, sa.and_(a.position == position, a.alert_id < alert_id))
        )
    rows = list(conn.execute(stmt.order_by(a.position.desc(), a.alert_id.desc()).limit(first + 1)))
    items = tuple(_item(r) for r in rows[:first])
    return AlertPage(
        items=items,
        end_cursor=items[-1].cursor if items else None,
        has_next_page=len(rows) > first,
    )


def alerts_since(conn: sa.Connection, position: int, limit: int = 1000) -> list[AlertItem]:
    """Alerts raised by events after `position`, oldest first (for subscriptions)."""
    a = rm_alerts.c
    stmt = (
        sa.select(rm_alerts)
        .where(a.position > position)
        .order_by(a.position, a.alert_id)
        .limit(limit)
    )
    return [_item(r) for r in conn.execute(stmt)]


def low_water(conn: sa.Connection, projections: Iterable[str]) -> int:
    """The lowest position the alert-raising projections have all committed (0 if one
    has not started): no alert at or below it can still appear."""
    names = list(projections)
    rows = dict(
        conn.execute(
            sa.select(projection_tracking.c.name, projection_tracking.c.position).where(
                projection_tracking.c.name.in_(names)
            )
        ).all()
    )
    return min((int(rows.get(n, 0)) for n in names), default=0)


class AlertFeed:
    """New alerts for one subscriber, each exactly once, in log order per poll.

    `start` skips what exists already; `poll` (after an "alerts" change, or on a timer
    for projections running in another process) returns the alerts not yet delivered.
    """

    def __init__(self, projections: Iterable[str]) -> None:
        self.projections = list(projections)
        self.low = 0
        self.seen: dict[UUID, int] = {}  # delivered alerts above `low`, with positions

    def start(self, conn: sa.Connection) -> None:
        self.low = low_water(conn, self.projections)
        self.seen = {i.id: i.position for i in self._above(conn, self.low)}

    def poll(self, conn: sa.Connection) -> list[AlertItem]:
        low = low_water(conn, self.projections)  # read first: rows at or below it are final
        fresh = [i for i in self._above(conn, self.low) if i.id not in self.seen]
        self.seen.update((i.id, i.position) for i in fresh)
        if low > self.low:  # nothing at or below the new mark can be re-read: forget it
            self.low = low
            self.seen = {k: p for k, p in self.seen.items() if p > low}
        return fresh

    @staticmethod
    def _above(conn: sa.Connection, position: int) -> list[AlertItem]:
        # Unbounded on purpose: above the low-water mark are only the alerts of the
        # slowest projection's current batch, a handful.
        a = rm_alerts.c
        stmt = sa.select(rm_alerts).where(a.position > position).order_by(a.position, a.alert_id)
        return [_item(r) for r in conn.execute(stmt)]
