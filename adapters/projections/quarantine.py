"""Quarantine: a projection is never stopped for good by one event.

When a runner's batch fails with an error that belongs to the data of an event (a value
its read model cannot hold: PostgreSQL's DataError on a NUL byte, a string too long; a
constraint the event breaks; a projection bug on one event's fields: ValueError, KeyError
...), the group applies the same events again one at a time, each in its own savepoint
(`careful_pass`). The event that fails alone is recorded in `projection_quarantine` with
its position and the reason, an alert is raised (rule `projection_quarantine`), and the
projection's position moves past it, in the same transaction as the events applied
before it: exactly once still holds for every other event.

Errors of the system, not of an event, are never quarantined: a lost connection, a
database that is down, a timeout (OperationalError, InterfaceError, ...) and SQL that
the database refuses as such (ProgrammingError: a missing table after a bad migration)
keep the runner retrying and reporting, as before (adapters/projections/poison.py). A
guard stops quarantining after MAX_STREAK events in a row failed with nothing applied
between them: then the failure is the projection's, not the events', and it stays stuck
and reported.

A checkpointed projection (online model) reloads its state after a quarantine: from its
checkpoint, replaying the events since while skipping the quarantined ones, so its state
is that of the events it applied. A rebuild starts with no quarantine and tries every
event again (the way to re-apply them after a fix).
"""

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Mapper, Notification

from adapters.readmodel.alerts_view import SqlAlertSink
from adapters.readmodel.tables import projection_quarantine
from adapters.readmodel.upsert import insert_for
from projections.alerting import Alert

log = logging.getLogger(__name__)

RULE = "projection_quarantine"
SOURCE = "projection_runner"  # not a projection's name: no projection reset deletes these
MAX_STREAK = 5  # quarantines in a row with nothing applied between: the projection's fault
# At most this many quarantines per projection within RECENT (read from the table, so it
# holds across restarts and rebuilds): more is a fault of the projection's code (a bad
# deploy failing on every event of a kind), which must stop it, not skip its events.
MAX_RECENT = 20
RECENT = timedelta(hours=1)

# A database error's kind, by its PEP 249 class name: the same names for SQLAlchemy's
# wrappers (sa.exc.DataError) and the drivers' own exceptions raised on the raw cursor
# paths (psycopg.errors.CharacterNotInRepertoire is a psycopg.DataError).
_DB_DATA = frozenset({"DataError", "IntegrityError"})
_DB_KINDS = _DB_DATA | {
    "DatabaseError", "OperationalError", "InterfaceError", "ProgrammingError",
    "InternalError", "NotSupportedError",
}  # fmt: skip
# Errors of an event's data raised by Python code on its fields (or while decoding it):
# a value out of range, a missing key, a None where a value belongs. Assertions and
# recursion limits are the code's, never quarantined.
_DATA = (
    ValueError,  # includes UnicodeError, JSON decode errors, MapperDeserialisationError
    TypeError,
    LookupError,  # KeyError, IndexError
    AttributeError,
    ArithmeticError,
)


class OperationalAlerts(SqlAlertSink):
    """Alerts of the projection machinery itself, written on the caller's connection."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.changed: set[str] = set()

    def about(
        self, rule: str, name: str, position: int, severity: str, summary: str,
        details: dict[str, Any], *, window: int | None = None,
    ) -> None:  # fmt: skip
        """Raise (once per projection and `window`, default `position`) the alert `rule`
        about projection `name` at `position`."""
        self.raise_alert(
            Alert(
                rule=rule,
                source=SOURCE,
                subject_type="projection",
                subject_id=name,
                window=str(position if window is None else window),
                severity=severity,
                score=1.0,
                summary=summary,
                raised_at=datetime.now(UTC),
                position=position,
                details={"projection": name, **details},
            )
        )


def quarantinable(error: BaseException) -> bool:
    """Whether `error` belongs to an event's data (quarantine it) rather than to the
    system (retry): a database's DataError or IntegrityError, or a Python error on the
    event's values; never a connection, server, timeout or SQL error."""
    for cls in type(error).__mro__:
        if cls.__name__ in _DB_KINDS:
            return cls.__name__ in _DB_DATA
    if isinstance(error, sa.exc.StatementError):  # parameters the driver could not bind
        return isinstance(error.orig, _DATA)
    if isinstance(error, sa.exc.SQLAlchemyError):  # pool timeouts, closed connections ...
        return False
    return isinstance(error, _DATA)


def quarantined_positions(conn: sa.Connection, name: str, start: int, end: int) -> set[int]:
    """Positions in (start, end] that projection `name` quarantined."""
    q = projection_quarantine.c
    rows = conn.execute(
        sa.select(q.position).where(q.name == name, q.position > start, q.position <= end)
    )
    return {int(r[0]) for r in rows}


def quarantine_counts(conn: sa.Connection) -> dict[str, int]:
    """Quarantined events per projection (those with none are absent)."""
    q = projection_quarantine.c
    rows = conn.execute(sa.select(q.name, sa.func.count()).group_by(q.name))
    return {r[0]: int(r[1]) for r in rows}


def quarantined(conn: sa.Connection, name: str | None = None, limit: int = 100) -> list[Any]:
    """The latest quarantined events (of one projection, or all), newest first."""
    q = projection_quarantine.c
    stmt = sa.select(projection_quarantine).order_by(q.quarantined_at.desc(), q.position.desc())
    if name is not None:
        stmt = stmt.where(q.name == name)
    return list(conn.execute(stmt.limit(limit)))


def record(
    conn: sa.Connection,
    name: str,
    notification: Notification,
    error: Exception,
    *,
    alert: bool = True,
) -> None:
    """Quarantine `notification` for projection `name` (in the caller's transaction) and,
    with `alert`, raise its alert once (not from a rebuild's shadow: no rm_alerts there)."""
    now = datetime.now(UTC)  # an operational record, not an event-time fact
    reason = _storable(f"{type(error).__name__}: {error}"[:2000])
    stmt = insert_for(conn, projection_quarantine).values(
        name=name,
        position=notification.id,
        originator_id=str(notification.originator_id),
        originator_version=notification.originator_version,
        topic=notification.topic,
        error=reason,
        quarantined_at=now,
    )
    conn.execute(stmt.on_conflict_do_nothing())
    log.error(
        "projection %s: quarantined the event at position %d (%s, %s v%d): %s",
        name, notification.id, notification.topic, notification.originator_id,
        notification.originator_version, reason,
    )  # fmt: skip
    if not alert:
        return
    OperationalAlerts(conn).about(
        RULE, name, notification.id, "warning",
        f"projection {name} quarantined the event at position {notification.id} "
        f"({notification.topic}) and went on: {reason[:200]}",
        {"position": notification.id, "topic": notification.topic, "error": reason},
    )  # fmt: skip


def _storable(text: str) -> str:
    """The reason as any database stores it: the error's own text may quote the event's
    unstorable value (a NUL, a lone surrogate)."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class QuarantineLimit(RuntimeError):
    """A projection quarantined MAX_RECENT events within RECENT: it stops (and reports)
    instead of skipping more."""

    def __init__(self, name: str, error: Exception) -> None:
        super().__init__(
            f"projection {name} quarantined {MAX_RECENT} events within {RECENT}; stopped "
            f"instead of skipping more (a fault of its code?): {type(error).__name__}: {error}"
        )


def _recent(conn: sa.Connection, name: str) -> int:
    q = projection_quarantine.c
    since = datetime.now(UTC) - RECENT
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(q.name == name, q.quarantined_at >= since)
        ).scalar_one()
    )


def check_recent(conn: sa.Connection, name: str, error: Exception) -> None:
    """Raise QuarantineLimit when `name` quarantined MAX_RECENT events within RECENT."""
    if _recent(conn, name) >= MAX_RECENT:
        raise QuarantineLimit(name, error) from error


def careful_pass(
    name: str,
    conn: sa.Connection,
    notifications: Sequence[Notification],
    mapper: Mapper[Any],
    apply: Callable[[sa.Connection, Sequence[Notification], Sequence[Any]], set[str]],
    streak: int,
    *,
    alert: bool = True,
) -> tuple[set[str], int, int | None]:
    """Apply `notifications` one at a time, each in its own savepoint, until one fails
    alone: quarantine it (when its error is quarantinable and the streak allows) and stop
    there. Returns (change keys, events applied, the position quarantined or None). A
    failure that is not quarantinable is raised."""
    changed: set[str] = set()
    applied = 0
    for n in notifications:
        try:
            with conn.begin_nested():
                changed |= apply(conn, [n], [mapper.to_domain_event(n)])
        except Exception as e:
            if not quarantinable(e) or (applied == 0 and streak >= MAX_STREAK):
                raise
            check_recent(conn, name, e)
            record(conn, name, n, e, alert=alert)
            return changed, applied, n.id
        applied += 1
    return changed, applied, None
