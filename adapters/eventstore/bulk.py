"""The bulk path of the PostgreSQL event store: many streams read in one query, many
events written with one COPY.

eventsourcing's recorder writes a transaction's events with
`INSERT ... SELECT ... FROM unnest(%s::stored_event[])`; psycopg adapts every event to
the composite type in Python, which costs about 180 µs per event on a 2-core machine,
and the repository reads each aggregate with two queries (snapshot, events). For a batch
of engagement signals touching hundreds of streams those round trips and adaptations
are nearly all of the time. This mixin keeps what the library guarantees and changes
only how the rows travel:

* same rows, same format: the `StoredEvent`s come from the application's own mapper and
  go into the library's table and columns unchanged, so the library reads them back as
  if it had written them;
* one global order: the transaction takes the library's EXCLUSIVE table lock before it
  writes, so notification ids are issued (by the column's sequence, in COPY row order)
  and committed in the same order as every other insert, and a reader tailing by
  notification id never passes a gap that fills later;
* optimistic concurrency per stream: the primary key (originator_id, originator_version)
  still rejects a version that was taken; the whole transaction (events and idempotency
  row) rolls back and the caller sees eventsourcing's IntegrityError, as before;
* listeners are woken with the library's NOTIFY, idempotency rows are written in the
  same transaction (the recorder's `_insert_events` hook).

Small transactions (single commands) keep the library's statements, but its COMMIT goes
into the same pipeline as the LOCK and the INSERT (`insert_pipelined`): one round trip
instead of two, and the server releases the table lock when it reaches the COMMIT, not
after a second round trip that starts only once this thread holds the GIL again. Writers
serialise on that lock, so its hold time bounds the single-command rate.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import persistence
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Connection, Cursor
from psycopg import Error as PsycopgError
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from commands.base import StreamBatchReader

# Below this many events the library's single INSERT is as fast (one round trip either way).
COPY_THRESHOLD = 32
_COPY_TYPES = ["uuid", "int8", "text", "bytea"]


class PostgresBulkMixin(PostgresApplicationRecorder, StreamBatchReader):
    """Adds COPY inserts and multi-stream reads to eventsourcing's PostgreSQL recorder."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        self._copy_events = SQL(
            "COPY {schema}.{table} (originator_id, originator_version, topic, state) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(schema=schema, table=table)
        qualified = f"{self.datastore.schema}.{self.events_table_name}"
        self._last_notification_id = SQL(
            "SELECT currval(pg_get_serial_sequence({name}, 'notification_id')) AS last"
        ).format(name=qualified)
        self._select_notifications_base = (
            SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {s}.{t}"
            )
            .format(s=schema, t=table)
            .as_string(None)
        )
        self._snapshot_queries: dict[str, Composed] = {}
        self._select_streams = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(schema=schema, table=table)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        if len(stored_events) < COPY_THRESHOLD:
            return self.insert_pipelined(stored_events, **kwargs)
        return self.copy_events(stored_events, **kwargs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_pipelined(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's `insert_events` (same statements, same order: tracking and
        idempotency rows, LOCK, NOTIFY, INSERT ... RETURNING) with the COMMIT queued in the
        same pipeline, so the whole transaction is one round trip. A taken version fails
        the INSERT at that round trip: the transaction is rolled back and the library's
        IntegrityError raised, as before."""
        error: PsycopgError | None = None
        ids: Sequence[int] | None = None
        with self.datastore.get_connection() as conn:
            with conn.pipeline(), conn.cursor() as events:
                with conn.transaction():
                    with conn.cursor() as curs:
                        self._insert_events(curs, stored_events, **kwargs)
                    if stored_events:
                        self._insert_stored_events(events, stored_events, **kwargs)
                # The transaction block queued the COMMIT; the first fetch sends the queue
                # and waits once. A tracking record alone (a process application, no
                # events) is sent when the pipeline ends.
                if stored_events:
                    try:
                        ids = self._fetch_ids_after_insert_events(events, stored_events, **kwargs)
                    except PsycopgError as e:  # raised after the pipeline, as the library does
                        error = e
            if error is not None:
                # The failed INSERT aborted the explicit transaction and its queued COMMIT
                # was skipped: end it before the connection goes back to the pool.
                conn.rollback()
                raise error
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def copy_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        """Write the events with one COPY in one transaction; return their notification
        ids, in the order of `stored_events`. Raises IntegrityError when any
        (originator_id, originator_version) is taken (nothing is written then)."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # idempotency row, tracking
            self._lock_table(curs)  # the library's EXCLUSIVE lock: commit order = id order
            self._notify_channel(curs)
            with curs.copy(self._copy_events) as copy:
                copy.set_types(_COPY_TYPES)
                for e in stored_events:
                    copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
            return self._issued_ids(curs, len(stored_events))

    def _issued_ids(self, curs: Cursor[DictRow], count: int) -> list[int]:
        # Under the EXCLUSIVE lock no other transaction inserts, so the sequence issued
        # this COPY's ids consecutively, one per row in row order; currval is the last.
        curs.execute(self._last_notification_id, prepare=True)
        row = curs.fetchone()
        if row is None or row["last"] is None:  # pragma: no cover - COPY wrote rows
            raise IntegrityError("no notification ids were issued")
        last = int(row["last"])
        return list(range(last - count + 1, last + 1))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's query, its rows fetched in binary as tuples and its Notifications
        built without the frozen dataclass's per-field __setattr__: reading the log is
        what every projection round and rebuild does first (about 9 -> 2 us per event)."""
        where, params = [], []
        if start is not None:
            where.append("notification_id >= %s" if inclusive_of_start else "notification_id > %s")
            params.append(start)
        if stop is not None:
            where.append("notification_id <= %s")
            params.append(stop)
        if topics:
            where.append("topic = ANY(%s)")
            params.append(list(topics))
        sql = self._select_notifications_base
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY notification_id LIMIT %s"
        params.append(limit)
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(binary=True, row_factory=tuple_row) as curs,
        ):
            curs.execute(sql, params, prepare=True)
            rows = curs.fetchall()
        new, out = object.__new__, []
        for nid, originator_id, version, topic, state in rows:
            n = new(Notification)
            n.__dict__.update(
                originator_id=originator_id, originator_version=version, topic=topic,
                state=state, id=nid,
            )  # fmt: skip
            out.append(n)
        return out

    def select_streams(
        self,
        originator_ids: Iterable[UUID],
        snapshots: str | None = None,
        timeout: float | None = None,
    ) -> dict[UUID, list[StoredEvent]]:
        """Every stored event of the given streams, in one query, by stream and version;
        with `snapshots` (the snapshot table's name, same schema) each stream's latest
        snapshot first and only the events after it. Streams without events are absent
        from the result. `timeout`: the longest wait for a connection."""
        ids = list(dict.fromkeys(originator_ids))
        streams: dict[UUID, list[StoredEvent]] = {}
        if not ids:
            return streams
        with connection(self.datastore, timeout) as conn, conn.cursor() as curs:
            if snapshots is None:
                curs.execute(self._select_streams, (ids,), prepare=True)
            else:
                curs.execute(self._from_snapshots(snapshots), {"ids": ids}, prepare=True)
            for row in curs.fetchall():
                streams.setdefault(row["originator_id"], []).append(
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                )
        return streams

    def _from_snapshots(self, snapshots: str) -> Composed:
        query = self._snapshot_queries.get(snapshots)
        if query is None:
            query = SQL(
                "WITH s AS (SELECT DISTINCT ON (originator_id) originator_id, "
                "originator_version, topic, state FROM {schema}.{snapshots} "
                "WHERE originator_id = ANY(%(ids)s) "
                "ORDER BY originator_id, originator_version DESC) "
                "SELECT originator_id, originator_version, topic, state FROM s "
                "UNION ALL "
                "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                "FROM {schema}.{table} e LEFT JOIN s ON s.originator_id = e.originator_id "
                "WHERE e.originator_id = ANY(%(ids)s) "
                "AND e.originator_version > coalesce(s.originator_version, 0) "
                "ORDER BY 1, 2"
            ).format(
                schema=Identifier(self.datastore.schema),
                snapshots=Identifier(snapshots),
                table=Identifier(self.events_table_name),
            )
            self._snapshot_queries[snapshots] = query
        return query


# psycopg's errors as the library's (PostgresDatastore.get_connection's translation, in
# its order): the committer retries OperationalError/InterfaceError, refuses on
# IntegrityError.
_ERRORS: list[tuple[type[psycopg.Error], type[PersistenceError]]] = [
    (psycopg.InterfaceError, persistence.InterfaceError),
    (psycopg.OperationalError, persistence.OperationalError),
    (psycopg.DataError, persistence.DataError),
    (psycopg.IntegrityError, persistence.IntegrityError),
    (psycopg.InternalError, persistence.InternalError),
    (psycopg.ProgrammingError, persistence.ProgrammingError),
    (psycopg.NotSupportedError, persistence.NotSupportedError),
    (psycopg.DatabaseError, persistence.DatabaseError),
    (psycopg.Error, PersistenceError),
]


@contextmanager
def connection(datastore: Any, timeout: float | None) -> Iterator[Connection[Any]]:
    """A pooled connection as the library's `get_connection` gives it, waiting at most
    `timeout` seconds for one, and never longer than the pool's own timeout."""
    try:
        pool = datastore.pool
        pool.open()  # as get_connection does (a no-op once open)
        with pool.connection(
            timeout=pool.timeout if timeout is None else min(timeout, pool.timeout)
        ) as conn:
            yield conn
    except psycopg.Error as e:
        for theirs, ours in _ERRORS:
            if isinstance(e, theirs):
                raise ours(str(e)) from e
        raise
