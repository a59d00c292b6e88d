"""SQL side of alerts: the sink projections raise alerts through, and the action worker's
bookkeeping. An alert row is written once (insert, or nothing when its id exists), so a
re-applied batch or a rebuild never duplicates it nor resets an action already done."""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_alerts
from adapters.readmodel.upsert import insert_for
from projections.alerting import Alert, AlertSink


class SqlAlertSink(AlertSink):
    """Mix into a projection's SQL view; `changed` gets "alerts" when an alert is new."""

    conn: sa.Connection
    changed: set[str]

    def raise_alert(self, alert: Alert) -> None:
        stmt = insert_for(self.conn, rm_alerts).values(
            alert_id=alert.id,
            rule=alert.rule,
            source=alert.source,
            subject_type=alert.subject_type,
            subject_id=alert.subject_id,
            severity=alert.severity,
            score=alert.score,
            summary=alert.summary,
            details=alert.details,
            raised_at=alert.raised_at.astimezone(UTC),
            position=alert.position,
            action=alert.action,
            action_status="pending" if alert.action else None,
        )
        result = self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["alert_id"]))
        if result.rowcount:
            self.changed.add("alerts")


ACTION_STATUSES = ("pending", "done", "skipped", "failed", "abandoned")


def pending_actions(
    conn: sa.Connection, limit: int = 100, *, retry_failed_before: datetime | None = None
) -> list[sa.Row]:
    """Alerts whose action is still to be carried out, oldest first; with
    `retry_failed_before`, also failed ones last attempted before then (their back-off
    is over). Skipped, done and abandoned actions are never returned."""
    due = rm_alerts.c.action_status == "pending"
    if retry_failed_before is not None:
        retry = sa.and_(
            rm_alerts.c.action_status == "failed",
            rm_alerts.c.acted_at <= retry_failed_before.astimezone(UTC),
        )
        due = sa.or_(due, retry)
    return list(
        conn.execute(
            sa.select(rm_alerts)
            .where(due)
            .order_by(rm_alerts.c.position, rm_alerts.c.alert_id)
            .limit(limit)
        )
    )


def record_action(
    conn: sa.Connection, alert_id: UUID, status: str, result: str, *, at: datetime | None = None
) -> None:
    """Record what the action worker did (`at` defaults to now: bookkeeping, not event time)."""
    if status not in ACTION_STATUSES:
        raise ValueError(f"action status must be one of {ACTION_STATUSES}")
    conn.execute(
        rm_alerts.update()
        .where(rm_alerts.c.alert_id == alert_id)
        .values(
            action_status=status,
            action_result=result[:2000],
            acted_at=(at or datetime.now(UTC)).astimezone(UTC),
        )
    )
