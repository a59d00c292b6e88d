"""Build the one shared event store from a database URL."""

from pathlib import Path
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment, get_topic
from sqlalchemy.engine import make_url

from adapters.erasure import install_shredding
from adapters.eventstore.codec import OrjsonTranscoder
from adapters.eventstore.committer import GroupCommitter, GroupWriter
from adapters.eventstore.group_pg import PostgresGroupWriter
from adapters.eventstore.group_sqlite import SQLiteGroupWriter
from adapters.eventstore.postgres import PostgresEventStoreRecorder
from adapters.eventstore.sqlite import IDEMPOTENCY_TABLE, SQLiteEventStoreRecorder
from commands.base import STORE_NAME, EventStoreExtensions, SharedStore
from commands.write_model import WATCHED_TOPICS


class ConfigurationError(ValueError):
    """The database URL (or another setting) cannot be used."""


def eventsourcing_env(
    database_url: str, *, cache_size: int = 0, pool_size: int = 10, pre_ping: bool = False
) -> dict[str, str]:
    """Translate a database URL into eventsourcing's environment variables."""
    env: dict[str, str] = {
        "CREATE_TABLE": "y",
        "IS_SNAPSHOTTING_ENABLED": "y",
        # The library's stored-event JSON, encoded and decoded with orjson (codec.py).
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
    }
    if cache_size:
        env["AGGREGATE_CACHE_MAXSIZE"] = str(cache_size)
    if database_url in ("memory://", "sqlite://", "sqlite:///:memory:"):
        # A named shared-cache database: every pooled connection (threads!) sees the same
        # data, and each store gets its own name so two stores in a process stay apart.
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=f"file:reelpulse-{uuid4().hex}?mode=memory&cache=shared",
            PROCESS_RECORDER_TOPIC=get_topic(SQLiteEventStoreRecorder),
        )
        return env
    try:
        url = make_url(database_url)
    except Exception as e:  # sqlalchemy raises ArgumentError with a useful message
        raise ConfigurationError(f"cannot parse database URL {database_url!r}: {e}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database:
            raise ConfigurationError("a sqlite URL needs a file path: sqlite:///var/reelpulse.db")
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=url.database,
            SQLITE_LOCK_TIMEOUT="10",
            PROCESS_RECORDER_TOPIC=get_topic(SQLiteEventStoreRecorder),
        )
    elif backend in ("postgresql", "postgres"):
        if not url.database:
            raise ConfigurationError("a postgresql URL needs a database name")
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=url.database,
            POSTGRES_HOST=url.host or "localhost",
            POSTGRES_PORT=str(url.port or 5432),
            POSTGRES_USER=url.username or "postgres",
            POSTGRES_PASSWORD=url.password or "",
            POSTGRES_POOL_SIZE=str(pool_size),
            POSTGRES_MAX_OVERFLOW=str(pool_size),
            POSTGRES_CONNECT_TIMEOUT="5",
            # Off by default: a connection broken by a server restart fails its first use
            # and the recorder's retry takes another (the pool drops the broken one); on,
            # every checkout costs one more round trip (docs/benchmarks.md, B3).
            POSTGRES_PRE_PING="y" if pre_ping else "n",
            PROCESS_RECORDER_TOPIC=get_topic(PostgresEventStoreRecorder),
        )
        schema = url.query.get("schema")
        if schema:
            env["POSTGRES_SCHEMA"] = str(schema)
    else:
        raise ConfigurationError(
            f"unsupported database {backend!r}: use sqlite:///path, memory:// or postgresql://"
        )
    return env


def open_shared_store(
    database_url: str, *, cache_size: int = 0, pool_size: int = 10, pre_ping: bool = False
) -> SharedStore:
    """Connect to (and create, if needed) the event store tables."""
    env = eventsourcing_env(
        database_url, cache_size=cache_size, pool_size=pool_size, pre_ping=pre_ping
    )
    factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(
        Environment(STORE_NAME, env)
    )
    recorder = factory.process_recorder()
    assert isinstance(recorder, EventStoreExtensions)
    install_shredding(factory, recorder)  # per-viewer encryption of comment texts (GDPR)
    store = SharedStore(env=env, factory=factory, recorder=recorder, extensions=recorder)
    store.appender = GroupCommitter(
        group_writer(recorder),
        watched_topics=WATCHED_TOPICS,
        on_committed=store.notify_committed,
    )
    recorder.on_inserted = store.appender.observe  # type: ignore[attr-defined]
    return store


def group_writer(recorder: Any) -> GroupWriter:
    """The group commit's transaction for this recorder's database."""
    if isinstance(recorder, PostgresEventStoreRecorder):
        return PostgresGroupWriter(recorder, recorder.idempotency_table)
    if isinstance(recorder, SQLiteEventStoreRecorder):
        return SQLiteGroupWriter(recorder, IDEMPOTENCY_TABLE)
    raise ConfigurationError(f"no group commit for {type(recorder).__name__}")
