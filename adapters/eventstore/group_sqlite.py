"""The group commit's transaction on SQLite (GroupWriter for the library's tables).

The embedded default. SQLite has one writer at a time (the library's pool serialises the
writers of this process, the database lock those of other processes), so the group's
transaction needs no table lock: its rows get consecutive rowids (the library's
notification ids), each one larger than any row before it.
"""

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from sqlite3 import Cursor
from typing import Any
from uuid import UUID

import orjson

from adapters.eventstore.committer import GroupTransaction, GroupWriter, Watched, ids_of
from commands.appending import AppendRequest

CHUNK = 500  # SQLite's bound on parameters per statement is 999 on old builds


def _chunks(items: Collection[Any]) -> Iterator[list[Any]]:
    items = list(items)
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


class SQLiteGroupWriter(GroupWriter):
    def __init__(self, recorder: Any, idempotency_table: str) -> None:
        self.recorder = recorder  # SQLiteEventStoreRecorder
        self.events = recorder.events_table_name
        self.idempotency = idempotency_table

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[GroupTransaction]:
        # SQLite: no pool to wait for (the lock wait is the datastore's own timeout).
        with self.recorder.datastore.transaction(commit=True) as c:
            yield _Transaction(self, c)

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def committed_ids(self, requests: Sequence[AppendRequest]) -> list[int] | None:
        last = requests[-1].events[-1]
        streams = list({e.originator_id.hex for r in requests for e in r.events})  # type: ignore[union-attr]
        rows: list[tuple[UUID, int, int]] = []
        with self.recorder.datastore.transaction(commit=False) as c:
            for chunk in _chunks(streams):
                c.execute(
                    f"SELECT originator_id, originator_version, rowid, state FROM {self.events} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for oid, version, rowid, state in c.fetchall():
                    key = UUID(oid)
                    if (key, version) == (last.originator_id, last.originator_version) and (
                        bytes(state) != last.state
                    ):
                        return None  # stored by another writer
                    rows.append((key, version, rowid))
        return ids_of(iter(rows), requests)


class _Transaction(GroupTransaction):
    def __init__(self, writer: SQLiteGroupWriter, c: Cursor) -> None:
        self.w = writer
        self.c = c

    def watched_since(self, position: int, topics: Sequence[str]) -> list[Watched]:
        self.c.execute(
            f"SELECT rowid, originator_id, originator_version, topic FROM {self.w.events} "
            f"WHERE rowid > ? AND topic IN ({','.join('?' * len(topics))}) ORDER BY rowid",
            [position, *topics],
        )
        return [(rowid, UUID(oid), v, t) for rowid, oid, v, t in self.c.fetchall()]

    def existing(self, stream_ids: Collection[UUID]) -> set[UUID]:
        found: set[UUID] = set()
        for chunk in _chunks([s.hex for s in stream_ids]):
            self.c.execute(
                f"SELECT DISTINCT originator_id FROM {self.w.events} "
                f"WHERE originator_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update(UUID(r[0]) for r in self.c.fetchall())
        return found

    def taken_keys(self, keys: Collection[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(keys):
            self.c.execute(
                f"SELECT key FROM {self.w.idempotency} WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update(r[0] for r in self.c.fetchall())
        return found

    def append(self, requests: Sequence[AppendRequest]) -> list[int]:
        rows = [
            (e.originator_id.hex, e.originator_version, e.topic, e.state)  # type: ignore[union-attr]
            for r in requests
            for e in r.events
        ]
        if not rows:
            return []
        self.c.executemany(
            f"INSERT INTO {self.w.events} (originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )
        keys = [
            (
                r.idempotency.key,
                r.idempotency.fingerprint,
                orjson.dumps(r.idempotency.result).decode(),
                r.events[-1].originator_id.hex,  # type: ignore[union-attr]
                r.events[-1].originator_version,
            )
            for r in requests
            if r.idempotency is not None and r.events
        ]
        if keys:
            self.c.executemany(f"INSERT INTO {self.w.idempotency} VALUES (?, ?, ?, ?, ?)", keys)
        self.c.execute(f"SELECT MAX(rowid) FROM {self.w.events}")
        last = int(self.c.fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))
