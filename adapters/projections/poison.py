"""Poison events: a projection that keeps failing on an event is reported, never skipped.

The runner already rolls the failing batch back and retries it after a back-off, so the
position stays before the poison event and the read model is untouched. What this adds
is the report: the error is written to the projection's `projection_tracking` row (the
status that `reelpulse projections status`, /v1/admin/projections and /readyz show; the
row is created at position 0 when the projection never committed a batch) and an alert
is raised in rm_alerts (rule `projection_error`). The alert id is derived from the
projection and the position it is stuck at, so retries every second raise it once.
"""

import logging
from datetime import UTC, datetime

import sqlalchemy as sa

from adapters.projections.manager import ProjectionManager
from adapters.projections.quarantine import OperationalAlerts
from adapters.projections.runner import ProjectionRunner, read_position
from adapters.readmodel.tables import projection_tracking
from adapters.readmodel.upsert import insert_for

RULE = "projection_error"
log = logging.getLogger(__name__)


def report_projection_error(engine: sa.Engine, name: str, message: str) -> None:
    """Record `message` as projection `name`'s last error and raise (once) an alert for
    the position it is stuck at."""
    now = datetime.now(UTC)  # an operational alert, not an event-time fact
    with engine.begin() as conn:
        position = read_position(conn, name)
        stmt = insert_for(conn, projection_tracking).values(
            name=name, position=0, events=0, updated_at=now, last_error=message[:2000]
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["name"], set_={"last_error": stmt.excluded.last_error}
            )
        )
        OperationalAlerts(conn).about(
            RULE, name, position + 1, "critical",  # the first event it could not apply
            f"projection {name} is stuck after position {position}: {message[:200]}",
            {"position": position, "error": message[:2000]}, window=position,
        )  # fmt: skip


def install_poison_reporting(manager: ProjectionManager) -> None:
    """Make every runner of `manager` report its errors through report_projection_error."""
    for runner in manager.runners:
        runner.on_error = _reporter(runner)  # type: ignore[method-assign]


def _reporter(runner: ProjectionRunner) -> "_Report":
    return _Report(runner.engine, runner.name)


class _Report:
    def __init__(self, engine: sa.Engine, name: str) -> None:
        self.engine, self.name = engine, name

    def __call__(self, message: str) -> None:
        try:
            report_projection_error(self.engine, self.name, message)
        except Exception:  # the database may be what failed: the log still has it
            log.exception("could not report the error of projection %s", self.name)
