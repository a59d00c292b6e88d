"""SQLite recorder: eventsourcing's process recorder + idempotency keys in the same transaction."""

import json
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder

from adapters.observability.metrics import count_recorded
from commands.base import EventStoreExtensions, IdempotencyRecord, StoredIdempotency

IDEMPOTENCY_TABLE = "reelpulse_idempotency"


class SQLiteEventStoreRecorder(SQLiteProcessRecorder, EventStoreExtensions):
    # Told of every insert after its commit (the group commit learns status changes made
    # through the library's save in this process: adapters/eventstore/committer.py).
    on_inserted: "Callable[[Sequence[StoredEvent], Sequence[int] | None], None] | None" = None

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {IDEMPOTENCY_TABLE} ("
            "key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, result TEXT NOT NULL, "
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        record: IdempotencyRecord | None = kwargs.get("idempotency")
        if record is not None and stored_events:
            last = stored_events[-1]
            c.execute(
                f"INSERT INTO {IDEMPOTENCY_TABLE} VALUES (?,?,?,?,?)",
                (
                    record.key,
                    record.fingerprint,
                    json.dumps(record.result),
                    _hex(last.originator_id),
                    last.originator_version,
                ),
            )
        return ids

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super().insert_events(stored_events, **kwargs)
        count_recorded(stored_events)  # after the commit: rolled-back events are not counted
        if self.on_inserted is not None:
            self.on_inserted(stored_events, ids)
        return ids

    def find_idempotency(self, key: str) -> StoredIdempotency | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT i.fingerprint, i.result, e.rowid FROM {IDEMPOTENCY_TABLE} i "
                f"JOIN {self.events_table_name} e ON e.originator_id = i.originator_id "
                "AND e.originator_version = i.originator_version WHERE i.key = ?",
                (key,),
            )
            row = c.fetchone()
        if row is None:
            return None
        return StoredIdempotency(fingerprint=row[0], result=json.loads(row[1]), position=row[2])

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid FROM {self.events_table_name} "
                "WHERE originator_id = ? AND originator_version = ?",
                (_hex(originator_id), version),
            )
            row = c.fetchone()
        return None if row is None else int(row[0])


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id
