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


def pending_actions(conn: sa.Connection, limit: int = 100) -> list[sa.Row]:
    return list(
        conn.execute(
            sa.select(rm_alerts)
            .where(rm_alerts.c.action_status == "pending")
            .order_by(rm_alerts.c.position, rm_alerts.c.alert_id)
            .limit(limit)
        )
    )


def record_action(conn: sa.Connection, alert_id: UUID, status: str, result: str) -> None:
    conn.execute(
        rm_alerts.update()
        .where(rm_alerts.c.alert_id == alert_id)
        .values(action_status=status, action_result=result[:2000], acted_at=datetime.now(UTC))
    )
