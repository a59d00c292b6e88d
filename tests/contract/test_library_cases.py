"""The eventsourcing library's own test cases, run against ReelPulse's storage code.

Where ReelPulse writes its own statements for the library's tables (the recorders'
COPY, pipelined INSERT and binary select; the group commit's transaction) or its own
codec for the library's stored-event format, the library's test cases are the
reference (`eventsourcing.tests.persistence`):

* PostgreSQL and SQLite: the event store recorders (`PostgresEventStoreRecorder`,
  `SQLiteEventStoreRecorder`) under the application and process recorder cases and the
  non-interleaving notification ids case (the aggregate recorder case is for recorders
  without notification ids: it requires `insert_events` to return None);
* the same cases' application recorder part through the group committer (every insert a
  request to `GroupCommitter`, as the lean write path does);
* the orjson transcoder under the library's transcoder case.

Each test gets an empty database (PostgreSQL: one created for it on the test server).
"""

import unittest
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    StoredEvent,
    Transcoder,
    UUIDAsHex,
)
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests import persistence as cases  # a module: its bases are not collected

from adapters.eventstore.codec import OrjsonTranscoder
from adapters.eventstore.committer import GroupCommitter
from adapters.eventstore.factory import group_writer
from adapters.eventstore.postgres import PostgresEventStoreRecorder
from adapters.eventstore.sqlite import SQLiteEventStoreRecorder
from commands.appending import AppendRequest


class _Postgres:
    """An empty database per test on the session's PostgreSQL server."""

    pool_size = 10

    @pytest.fixture(autouse=True)
    def _database(self, pg_server: Any) -> Iterator[None]:
        with pg_server.fresh_database() as url:
            self.url = url
            self.datastores: list[Any] = []
            yield
            for datastore in self.datastores:
                datastore.close()

    def recorder(self) -> PostgresEventStoreRecorder:
        parts = urlsplit(self.url)
        datastore = PostgresDatastore(
            dbname=parts.path.lstrip("/"),
            host=parts.hostname or "127.0.0.1",
            port=str(parts.port or 5432),
            user=parts.username or "postgres",
            password=parts.password or "",
            pool_size=self.pool_size,
            max_overflow=self.pool_size,
        )
        self.datastores.append(datastore)
        recorder = PostgresEventStoreRecorder(
            datastore,
            events_table_name="reelpulse_events",
            tracking_table_name="reelpulse_tracking",
        )
        recorder.create_table()
        return recorder


class _SQLite:
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> Iterator[None]:
        self.path = tmp_path / "events.db"
        yield

    def recorder(self) -> SQLiteEventStoreRecorder:
        datastore = SQLiteDatastore(str(self.path))
        recorder = SQLiteEventStoreRecorder(datastore, events_table_name="reelpulse_events")
        recorder.create_table()
        return recorder


class GroupCommitRecorder:
    """A recorder whose inserts are requests to the group committer: a request's events
    are all stored or none, and a stream whose version 1 it holds must be new (as the
    lean write path decides new streams). Everything else is the recorder's own."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder
        self.committer = GroupCommitter(group_writer(recorder))

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        assert not kwargs, kwargs  # tracking and the like are not the group commit's
        new = {e.originator_id for e in stored_events if e.originator_version == 1}
        request = AppendRequest(events=list(stored_events), new_streams=new)  # type: ignore[arg-type]
        return self.committer.submit(request).result(timeout=60)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)


# -- PostgreSQL -----------------------------------------------------------------------------
@pytest.mark.postgres
class TestPostgresApplicationRecorder(_Postgres, cases.ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> Any:
        return self.recorder()


@pytest.mark.postgres
class TestPostgresProcessRecorder(_Postgres, cases.ProcessRecorderTestCase):
    def create_recorder(self) -> Any:
        return self.recorder()


@pytest.mark.postgres
class TestPostgresNonInterleavingIds(_Postgres, cases.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> Any:
        return self.recorder()


@pytest.mark.postgres
class TestPostgresGroupCommit(_Postgres, cases.ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> Any:
        recorder = GroupCommitRecorder(self.recorder())
        self.committers = [*getattr(self, "committers", []), recorder.committer]
        return recorder

    def tearDown(self) -> None:
        for committer in getattr(self, "committers", []):
            committer.close()
        super().tearDown()


@pytest.mark.postgres
class TestPostgresGroupCommitNonInterleavingIds(
    _Postgres, cases.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> Any:
        return GroupCommitRecorder(self.recorder())


# -- SQLite ---------------------------------------------------------------------------------
class TestSQLiteApplicationRecorder(_SQLite, cases.ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> Any:
        return self.recorder()


class TestSQLiteProcessRecorder(_SQLite, cases.ProcessRecorderTestCase):
    def create_recorder(self) -> Any:
        return self.recorder()


class TestSQLiteGroupCommit(_SQLite, cases.ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> Any:
        return GroupCommitRecorder(self.recorder())


# -- the codec ------------------------------------------------------------------------------
class TestOrjsonTranscoder(cases.TranscoderTestCase):
    """The library's transcoder case, with the six tests its own JSON transcoder case skips
    skipped for the same reason: JSON has no tuples and no subclasses of dict, list, str or
    int (the library's JSONTranscoder turns them into the base types, and so does this)."""

    def construct_transcoder(self) -> Transcoder:
        transcoder = OrjsonTranscoder()
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
        self.register_custom(transcoder)
        return transcoder

    def register_custom(self, transcoder: OrjsonTranscoder) -> None:
        """The custom types the library's case uses, registered as its JSON case does."""
        transcoder.register(cases.CustomType1AsDict())
        transcoder.register(cases.CustomType2AsDict())

    test_tuple = test_mixed = test_dict_subclass = test_list_subclass = unittest.skip(
        "JSON has no tuples or subclasses (as the library's JSON case)"
    )(lambda self: None)
    test_str_subclass = test_int_subclass = test_tuple
