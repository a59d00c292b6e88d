"""SQL implementation of AlertRulesView: alerts go to rm_alerts through SqlAlertSink.

Alerts are rare (a handful per day against hundreds of thousands of views), so each is
one insert-or-nothing statement at the moment it is raised; the projection's hot path
(views) never touches the view at all.
"""

import sqlalchemy as sa

from adapters.readmodel.alerts_view import SqlAlertSink
from projections.alert_rules import AlertRulesView


class SqlAlertRulesView(SqlAlertSink, AlertRulesView):
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()

    def flush(self) -> set[str]:
        changed, self.changed = self.changed, set()
        return changed
