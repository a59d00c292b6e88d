"""PostgreSQL recorder: eventsourcing's process recorder + idempotency keys, same transaction."""

import json
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier
from psycopg_pool.base import AttemptWithBackoff

from adapters.eventstore.bulk import PostgresBulkMixin
from adapters.observability.metrics import count_recorded
from commands.base import EventStoreExtensions, IdempotencyRecord, StoredIdempotency

# The pool retries a lost server after 1, 2, 4, 8, 16... s: after a longer outage the first
# try could come 16 s after the server is back. Retry about every second instead, so the
# API recovers within seconds of PostgreSQL (tests/integration/test_faults_postgres_restart.py).
AttemptWithBackoff.DELAY_BACKOFF = 1.0


class PostgresEventStoreRecorder(PostgresBulkMixin, PostgresProcessRecorder, EventStoreExtensions):
    # Told of every insert after its commit (the group commit learns status changes made
    # through the library's save in this process: adapters/eventstore/committer.py).
    on_inserted: "Callable[[Sequence[StoredEvent], Sequence[int] | None], None] | None" = None

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        self.idempotency_table = self.events_table_name.removesuffix("_events") + "_idempotency"
        table = Identifier(self.idempotency_table)
        events = Identifier(self.events_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "key text PRIMARY KEY, fingerprint text NOT NULL, result jsonb NOT NULL, "
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL)"
            ).format(schema=schema, table=table)
        )
        # ON CONFLICT DO NOTHING: a taken key must not abort the pipelined transaction
        # with a server error; we see "no row returned" and raise IntegrityError ourselves.
        self._insert_idempotency = SQL(
            "INSERT INTO {schema}.{table} VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (key) DO NOTHING RETURNING key"
        ).format(schema=schema, table=table)
        self._select_idempotency = SQL(
            "SELECT i.fingerprint, i.result, e.notification_id FROM {schema}.{table} i "
            "JOIN {schema}.{events} e ON e.originator_id = i.originator_id "
            "AND e.originator_version = i.originator_version WHERE i.key = %s"
        ).format(schema=schema, table=table, events=events)
        self._select_position = SQL(
            "SELECT notification_id FROM {schema}.{events} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(schema=schema, events=events)

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # Runs inside the events' transaction, before the events themselves are inserted.
        super()._insert_events(curs, stored_events, **kwargs)
        record: IdempotencyRecord | None = kwargs.get("idempotency")
        if record is not None and stored_events:
            last = stored_events[-1]
            curs.execute(
                self._insert_idempotency,
                (
                    record.key,
                    record.fingerprint,
                    json.dumps(record.result),
                    last.originator_id,
                    last.originator_version,
                ),
            )
            if curs.fetchone() is None:
                raise IntegrityError(f"idempotency key {record.key!r} is already used")

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super().insert_events(stored_events, **kwargs)
        count_recorded(stored_events)  # after the commit: rolled-back events are not counted
        if self.on_inserted is not None:
            self.on_inserted(stored_events, ids)
        return ids

    def find_idempotency(self, key: str) -> StoredIdempotency | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_idempotency, (key,))
            row = curs.fetchone()
        if row is None:
            return None
        return StoredIdempotency(
            fingerprint=row["fingerprint"], result=row["result"], position=row["notification_id"]
        )

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_position, (originator_id, version))
            row = curs.fetchone()
        return None if row is None else int(row["notification_id"])
