"""The group commit's transaction on PostgreSQL (GroupWriter for the library's tables).

One transaction per group, in the library's own table and format, in four round trips:

    pipeline  BEGIN; SET LOCAL lock_timeout; LOCK TABLE events IN EXCLUSIVE MODE
              SELECT watched events after the last group  (index range on notification_id)
              SELECT streams among those decided as new   (primary-key probes)
              SELECT taken idempotency keys
    COPY      events (binary)                              (start, end: two round trips)
    pipeline  INSERT idempotency rows; NOTIFY (the library's channel)
              SELECT currval(notification_id sequence)    (ids: consecutive under the lock)
              COMMIT

The lock is why ids are consecutive and committed in order: every writer of the table
(the library's INSERT, the bulk COPY, this) takes it first, so a reader tailing by
notification id never passes a gap that fills later. Few round trips matter beyond the
network: after each one the writer thread waits for the GIL, up to the interpreter's
switch interval (5 ms) while deciding threads run. (A shorter switch interval sped up
B1 on a quiet machine and slowed it by a third with other processes on the cores: left
at the default.)
"""

import contextlib
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg import Connection
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
        """One transaction on a connection of the library's pool: `checks` sends BEGIN,
        the lock and the reads as one pipeline, `append` the COPY and then the
        idempotency rows, NOTIFY, currval and COMMIT as another: four round trips a group
        (each one a wait for the GIL afterwards, while other threads decide)."""
        with connection(self.recorder.datastore, timeout) as conn:
            tx = _Transaction(self, conn)
            try:
                yield tx
                if tx.begun and not tx.committed:
                    tx.curs.execute(b"COMMIT")
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                raise

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
    def __init__(self, writer: PostgresGroupWriter, conn: Connection[Any]) -> None:
        self.w = writer
        self.conn = conn
        self.curs = conn.cursor()
        self.committed = False
        self.begun = False

    def _begin(self) -> None:
        """BEGIN and the table lock, once (the library's connections are in autocommit
        mode: the transaction is ours to open)."""
        if not self.begun:
            self.curs.execute(b"BEGIN")
            for statement in self.w.recorder.lock_table_statements:
                self.curs.execute(statement, prepare=True)
            self.begun = True

    def checks(
        self,
        position: int,
        topics: Sequence[str],
        new_streams: Collection[UUID],
        keys: Collection[str],
    ) -> tuple[list[Watched], set[UUID], set[str]]:
        conn, w = self.conn, self.w
        with conn.pipeline():
            self._begin()
            watched = conn.cursor()
            if topics:
                watched.execute(w.sql_watched, (position, list(topics)), prepare=True)
            existing = conn.cursor()
            if new_streams:
                existing.execute(w.sql_existing, (list(new_streams),), prepare=True)
            taken = conn.cursor()
            if keys:
                taken.execute(w.sql_taken, (list(keys),), prepare=True)
        return (
            [
                (r["notification_id"], r["originator_id"], r["originator_version"], r["topic"])
                for r in watched.fetchall()
            ]
            if topics
            else [],
            {r["originator_id"] for r in existing.fetchall()} if new_streams else set(),
            {r["key"] for r in taken.fetchall()} if keys else set(),
        )

    def watched_since(self, position: int, topics: Sequence[str]) -> list[Watched]:
        return self.checks(position, topics, (), ())[0]

    def existing(self, stream_ids: Collection[UUID]) -> set[UUID]:
        return self.checks(0, (), stream_ids, ())[1]

    def taken_keys(self, keys: Collection[str]) -> set[str]:
        return self.checks(0, (), (), keys)[2]

    def append(self, requests: Sequence[AppendRequest]) -> list[int]:
        """COPY the events (not possible in a pipeline), then one pipeline: idempotency
        rows, NOTIFY (delivered at commit), the last id, COMMIT."""
        count = sum(len(r.events) for r in requests)
        curs, w = self.curs, self.w
        if not self.begun:
            with self.conn.pipeline():
                self._begin()
        if count:
            # A taken (id, version) fails the COPY: psycopg's UniqueViolation, the
            # library's IntegrityError once it leaves `connection`.
            with curs.copy(w.sql_copy) as copy:
                copy.set_types(_COPY_TYPES)
                write = copy.write_row
                for r in requests:
                    for e in r.events:
                        write((e.originator_id, e.originator_version, e.topic, e.state))
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
        last = self.conn.cursor()
        with self.conn.pipeline():
            if keys:
                curs.executemany(w.sql_insert_key, keys)
            if count:
                curs.execute(w.sql_notify)
                last.execute(w.sql_last_id, prepare=True)
            curs.execute(b"COMMIT")
        self.committed = True
        if not count:
            return []
        end = int(last.fetchone()["last"])  # type: ignore[index]
        return list(range(end - count + 1, end + 1))
