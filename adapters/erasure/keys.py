"""Per-subject data keys, kept in the event store's own database (one backup for both).

One row per subject: `data_key` (32 random bytes, AES-256-GCM) while the subject is
known, NULL once the subject is forgotten; `erased_at` then records when. The row stays as
the durable record of the erasure, so a key is never created again for that subject, and
both operations are single statements that commute safely:

    create:  INSERT ... ON CONFLICT DO NOTHING, then SELECT (a racing creator reads the
             winner's key; an erased subject reads NULL)
    erase:   UPSERT data_key = NULL, erased_at = now   (wins over any later create)
"""

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProcessRecorder

KEY_BYTES = 32
CACHE_SECONDS = 5.0  # how long another process may still use a key after it was erased
_ERASED = b""  # cached "this subject was erased" (a real key is never empty)


class KeyStore(ABC):
    """Subject keys with a small time-bounded cache (decoding is on every hot path)."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self._cache: dict[UUID, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    # -- public API ------------------------------------------------------------------------
    def key_for_writing(self, subject: UUID) -> bytes | None:
        """The subject's key, created on first use; None when the subject was erased."""
        cached = self._cached(subject)
        if cached:  # a real key
            return cached
        if cached == _ERASED:
            return None
        key = self._create_or_get(subject, os.urandom(KEY_BYTES))
        self._remember(subject, key)
        return key

    def prepare_for_writing(self, subjects: Iterable[UUID]) -> None:
        """`key_for_writing` for many subjects at once (a batch's commenters): the keys
        not cached are created or read in one transaction, not one each."""
        todo = {s for s in subjects if self._cached(s) is None}
        if not todo:
            return
        found = self._create_or_get_many({s: os.urandom(KEY_BYTES) for s in todo})
        for subject in todo:
            self._remember(subject, found.get(subject))

    def prefetch_for_reading(self, subjects: Iterable[UUID]) -> None:
        """Read the keys of many subjects into the cache in one query (a batch of sealed
        fields to open)."""
        todo = [s for s in set(subjects) if self._cached(s) is None]
        if todo:
            found = self._get_many(todo)
            for subject in todo:
                self._remember(subject, found.get(subject))

    def key_for_reading(self, subject: UUID) -> bytes | None:
        """The subject's key; None when erased or never created (both read as erased)."""
        cached = self._cached(subject)
        if cached is not None:
            return cached or None
        key = self._get(subject)
        self._remember(subject, key)
        return key

    def erase(self, subject: UUID) -> bool:
        """Delete the subject's key for good; True when a key existed until now."""
        existed = self._erase(subject, datetime.now(UTC))
        self._remember(subject, None)
        return existed

    def forget_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    @abstractmethod
    def create_table(self) -> None: ...

    @abstractmethod
    def table_exists(self) -> bool: ...

    @abstractmethod
    def erased_subjects(self) -> list[UUID]: ...

    def has_key(self, subject: UUID) -> bool:
        """True when key material for the subject is stored (tests, reports)."""
        return self._get(subject) is not None

    # -- backend ---------------------------------------------------------------------------
    @abstractmethod
    def _create_or_get(self, subject: UUID, candidate: bytes) -> bytes | None: ...

    def _create_or_get_many(self, candidates: dict[UUID, bytes]) -> dict[UUID, bytes | None]:
        return {s: self._create_or_get(s, key) for s, key in candidates.items()}

    def _get_many(self, subjects: list[UUID]) -> dict[UUID, bytes | None]:
        return {s: self._get(s) for s in subjects}

    @abstractmethod
    def _get(self, subject: UUID) -> bytes | None: ...

    @abstractmethod
    def _erase(self, subject: UUID, at: datetime) -> bool: ...

    # -- cache -----------------------------------------------------------------------------
    def _cached(self, subject: UUID) -> bytes | None:
        with self._lock:
            entry = self._cache.get(subject)
        if entry is None or time.monotonic() - entry[0] > self.cache_seconds:
            return None
        return entry[1] if entry[1] is not None else _ERASED

    def _remember(self, subject: UUID, key: bytes | None) -> None:
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()  # crude bound; keys are cheap to read again
            self._cache[subject] = (time.monotonic(), key)


class SQLiteKeyStore(KeyStore):
    def __init__(self, datastore: Any, table: str = "reelpulse_subject_keys") -> None:
        super().__init__()
        self.datastore, self.table = datastore, table

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (subject_id TEXT PRIMARY KEY, "
                "data_key BLOB, created_at TEXT NOT NULL, erased_at TEXT)"
            )

    def table_exists(self) -> bool:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.table,)
            )
            return c.fetchone() is not None

    def _create_or_get(self, subject: UUID, candidate: bytes) -> bytes | None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {self.table} (subject_id, data_key, created_at) VALUES (?,?,?) "
                "ON CONFLICT (subject_id) DO NOTHING",
                (subject.hex, candidate, datetime.now(UTC).isoformat()),
            )
            c.execute(f"SELECT data_key FROM {self.table} WHERE subject_id = ?", (subject.hex,))
            row = c.fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def _get(self, subject: UUID) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT data_key FROM {self.table} WHERE subject_id = ?", (subject.hex,))
            row = c.fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def _erase(self, subject: UUID, at: datetime) -> bool:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"SELECT data_key FROM {self.table} WHERE subject_id = ?", (subject.hex,))
            row = c.fetchone()
            c.execute(
                f"INSERT INTO {self.table} (subject_id, data_key, created_at, erased_at) "
                "VALUES (?, NULL, ?, ?) ON CONFLICT (subject_id) DO UPDATE SET data_key = NULL, "
                "erased_at = COALESCE(erased_at, excluded.erased_at)",
                (subject.hex, at.isoformat(), at.isoformat()),
            )
        return row is not None and row[0] is not None

    def erased_subjects(self) -> list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT subject_id FROM {self.table} WHERE erased_at IS NOT NULL")
            return [UUID(r[0]) for r in c.fetchall()]


class PostgresKeyStore(KeyStore):
    def __init__(self, datastore: Any, table: str = "reelpulse_subject_keys") -> None:
        from psycopg.sql import SQL, Identifier

        super().__init__()
        self.datastore, self.table = datastore, table
        self._sql = SQL
        self._name = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(table))

    def _q(self, text: str) -> Any:
        return self._sql(text).format(t=self._name)

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._q(
                    "CREATE TABLE IF NOT EXISTS {t} (subject_id uuid PRIMARY KEY, "
                    "data_key bytea, created_at timestamptz NOT NULL, erased_at timestamptz)"
                )
            )

    def table_exists(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT to_regclass(%s) IS NOT NULL AS found",
                (f'"{self.datastore.schema}"."{self.table}"',),
            )
            row = curs.fetchone()
        return bool(row and row["found"])

    def _create_or_get(self, subject: UUID, candidate: bytes) -> bytes | None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._q(
                    "INSERT INTO {t} (subject_id, data_key, created_at) VALUES (%s, %s, now()) "
                    "ON CONFLICT (subject_id) DO NOTHING"
                ),
                (subject, candidate),
            )
            curs.execute(self._q("SELECT data_key FROM {t} WHERE subject_id = %s"), (subject,))
            row = curs.fetchone()
        return None if row is None or row["data_key"] is None else bytes(row["data_key"])

    def _create_or_get_many(self, candidates: dict[UUID, bytes]) -> dict[UUID, bytes | None]:
        subjects = list(candidates)
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._q(
                    "INSERT INTO {t} (subject_id, data_key, created_at) "
                    "SELECT s, k, now() FROM unnest(%s::uuid[], %s::bytea[]) AS c(s, k) "
                    "ON CONFLICT (subject_id) DO NOTHING"
                ),
                (subjects, [candidates[s] for s in subjects]),
            )
            curs.execute(
                self._q("SELECT subject_id, data_key FROM {t} WHERE subject_id = ANY(%s)"),
                (subjects,),
            )
            rows = curs.fetchall()
        return {
            r["subject_id"]: None if r["data_key"] is None else bytes(r["data_key"]) for r in rows
        }

    def _get(self, subject: UUID) -> bytes | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._q("SELECT data_key FROM {t} WHERE subject_id = %s"), (subject,))
            row = curs.fetchone()
        return None if row is None or row["data_key"] is None else bytes(row["data_key"])

    def _get_many(self, subjects: list[UUID]) -> dict[UUID, bytes | None]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                self._q("SELECT subject_id, data_key FROM {t} WHERE subject_id = ANY(%s)"),
                (subjects,),
            )
            rows = curs.fetchall()
        return {
            r["subject_id"]: None if r["data_key"] is None else bytes(r["data_key"]) for r in rows
        }

    def _erase(self, subject: UUID, at: datetime) -> bool:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._q("SELECT data_key FROM {t} WHERE subject_id = %s FOR UPDATE"), (subject,)
            )
            row = curs.fetchone()
            curs.execute(
                self._q(
                    "INSERT INTO {t} (subject_id, data_key, created_at, erased_at) "
                    "VALUES (%s, NULL, %s, %s) ON CONFLICT (subject_id) DO UPDATE SET "
                    "data_key = NULL, erased_at = COALESCE({t}.erased_at, EXCLUDED.erased_at)"
                ),
                (subject, at, at),
            )
        return row is not None and row["data_key"] is not None

    def erased_subjects(self) -> list[UUID]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._q("SELECT subject_id FROM {t} WHERE erased_at IS NOT NULL"))
            return [r["subject_id"] for r in curs.fetchall()]


class NoKeys(KeyStore):
    """A read-only store without a key table (a replay of a store older than erasure):
    nothing sealed can exist there, and nothing may be written."""

    def create_table(self) -> None:
        raise RuntimeError("read-only: no subject key table")

    def table_exists(self) -> bool:
        return False

    def erased_subjects(self) -> list[UUID]:
        return []

    def _create_or_get(self, subject: UUID, candidate: bytes) -> bytes | None:
        raise RuntimeError("read-only: cannot create a subject key")

    def _get(self, subject: UUID) -> bytes | None:
        return None

    def _erase(self, subject: UUID, at: datetime) -> bool:
        raise RuntimeError("read-only: cannot erase a subject key")


def key_store_for(recorder: ProcessRecorder, *, create_table: bool = True) -> KeyStore:
    """A key store in the recorder's own database (and schema), table created if missing
    (with create_table=False, as for a read-only replay, an absent table reads as empty)."""
    datastore = recorder.datastore  # type: ignore[attr-defined]
    events_table = getattr(recorder, "events_table_name", "stored_events")
    table = events_table.removesuffix("_events") + "_subject_keys"
    if table == "stored_subject_keys":
        table = "reelpulse_subject_keys"
    if hasattr(datastore, "schema"):
        store: KeyStore = PostgresKeyStore(datastore, table)
    else:
        store = SQLiteKeyStore(datastore, table)
    if create_table:
        store.create_table()
    elif not store.table_exists():
        return NoKeys()
    return store
