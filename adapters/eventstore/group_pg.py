"""The group commit's transaction on PostgreSQL (GroupWriter for the library's tables).

One transaction per group, in the library's own table and format:

    BEGIN; SET LOCAL lock_timeout; LOCK TABLE events IN EXCLUSIVE MODE   (the library's)
    SELECT watched events after the last group      (index range on notification_id)
    SELECT streams among those decided as new       (primary-key probes)
    SELECT taken idempotency keys
    INSERT idempotency rows; NOTIFY (the library's channel); COPY events (binary)
    SELECT currval(notification_id sequence)        (ids: consecutive under the lock)
    COMMIT

The lock is why ids are consecutive and committed in order: every writer of the table
(the library's INSERT, the bulk COPY, this) takes it first, so a reader tailing by
notification id never passes a gap that fills later.
"""

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import orjson
from psycopg import Connection, Cursor
from psycopg.sql import SQL, Identifier

from adapters.eventstore.bulk import connection
from adapters.eventstore.committer import GroupTransaction, GroupWriter, Watched, ids_of
from commands.appending import AppendRequest

_COPY_TYPES = ["uuid", "int8", "text", "bytea"]


class PostgresGroupWriter(GroupWriter):
    def __init__(self, recorder: Any, idempotency_table: str) -> None:
        self.recorder = recorder  # PostgresEventStoreRecorder: its datastore, lock, channel
        schema = Identifier(recorder.datastore.schema)
        events = Identifier(recorder.events_table_name)
        idem = Identifier(idempotency_table)
        self.sql_watched = SQL(
            "SELECT notification_id, originator_id, originator_version, topic FROM {s}.{t} "
            "WHERE notification_id > %s AND topic = ANY(%s) ORDER BY notification_id"
        ).format(s=schema, t=events)
        self.sql_existing = SQL(
            "SELECT DISTINCT originator_id FROM {s}.{t} WHERE originator_id = ANY(%s)"
        ).format(s=schema, t=events)
        self.sql_taken = SQL("SELECT key FROM {s}.{t} WHERE key = ANY(%s)").format(s=schema, t=idem)
        self.sql_insert_key = SQL("INSERT INTO {s}.{t} VALUES (%s, %s, %s, %s, %s)").format(
            s=schema, t=idem
        )
        self.sql_copy = SQL(
            "COPY {s}.{t} (originator_id, originator_version, topic, state) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(s=schema, t=events)
        qualified = f"{recorder.datastore.schema}.{recorder.events_table_name}"
        self.sql_last_id = SQL(
            "SELECT currval(pg_get_serial_sequence({name}, 'notification_id')) AS last"
        ).format(name=qualified)
        self.sql_notify = SQL("NOTIFY {}").format(Identifier(recorder.channel_name))
        self.sql_find = SQL(
            "SELECT originator_id, originator_version, notification_id, state FROM {s}.{t} "
            "WHERE originator_id = ANY(%s) ORDER BY notification_id"
        ).format(s=schema, t=events)

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[GroupTransaction]:
        with (
            connection(self.recorder.datastore, timeout) as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            for statement in self.recorder.lock_table_statements:
                curs.execute(statement, prepare=True)
            yield _Transaction(self, conn, curs)

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def committed_ids(self, requests: Sequence[AppendRequest]) -> list[int] | None:
        last = requests[-1].events[-1]
        with self.recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            streams = list({e.originator_id for r in requests for e in r.events})
            rows = curs.execute(self.sql_find, (streams,)).fetchall()
        mine = [r for r in rows if r["originator_id"] == last.originator_id
                and r["originator_version"] == last.originator_version]  # fmt: skip
        if not mine or bytes(mine[0]["state"]) != last.state:
            return None  # not stored, or stored by another writer: not this group's commit
        return ids_of(
            ((r["originator_id"], r["originator_version"], r["notification_id"]) for r in rows),
            requests,
        )


class _Transaction(GroupTransaction):
    def __init__(self, writer: PostgresGroupWriter, conn: Connection[Any], curs: Cursor[Any]):
        self.w = writer
        self.conn = conn
        self.curs = curs

    def watched_since(self, position: int, topics: Sequence[str]) -> list[Watched]:
        rows = self.curs.execute(self.w.sql_watched, (position, list(topics)), prepare=True)
        return [
            (r["notification_id"], r["originator_id"], r["originator_version"], r["topic"])
            for r in rows.fetchall()
        ]

    def existing(self, stream_ids: Collection[UUID]) -> set[UUID]:
        rows = self.curs.execute(self.w.sql_existing, (list(stream_ids),), prepare=True)
        return {r["originator_id"] for r in rows.fetchall()}

    def taken_keys(self, keys: Collection[str]) -> set[str]:
        rows = self.curs.execute(self.w.sql_taken, (list(keys),), prepare=True)
        return {r["key"] for r in rows.fetchall()}

    def append(self, requests: Sequence[AppendRequest]) -> list[int]:
        keys = [
            (
                r.idempotency.key,
                r.idempotency.fingerprint,
                orjson.dumps(r.idempotency.result).decode(),
                r.events[-1].originator_id,
                r.events[-1].originator_version,
            )
            for r in requests
            if r.idempotency is not None and r.events
        ]
        if keys:
            self.curs.executemany(self.w.sql_insert_key, keys)
        count = sum(len(r.events) for r in requests)
        if not count:
            return []
        self.curs.execute(self.w.sql_notify)
        # A taken (id, version) fails the COPY: psycopg's UniqueViolation, which the
        # library's datastore turns into its IntegrityError when it leaves the connection.
        with self.curs.copy(self.w.sql_copy) as copy:
            copy.set_types(_COPY_TYPES)
            write = copy.write_row
            for r in requests:
                for e in r.events:
                    write((e.originator_id, e.originator_version, e.topic, e.state))
        row = self.curs.execute(self.w.sql_last_id, prepare=True).fetchone()
        last = int(row["last"])  # type: ignore[index]
        return list(range(last - count + 1, last + 1))
