"""The read-model database: a SQLAlchemy engine plus Alembic migrations."""

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.pool import StaticPool

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).parent


def read_model_url(database_url: str, read_database_url: str | None) -> str:
    """The read-model database URL: explicit, or derived from the event store's URL.

    SQLite keeps read models in a sibling file (so projection writes never wait on the
    event store's single writer lock); PostgreSQL uses the same database.
    """
    if read_database_url:
        url = read_database_url
    elif database_url.startswith("sqlite:///") and not database_url.endswith(":memory:"):
        path = Path(database_url.removeprefix("sqlite:///"))
        url = f"sqlite:///{path.with_name(path.stem + '-read' + path.suffix)}"
    elif database_url.startswith(("postgresql://", "postgres://")):
        url = database_url
    else:
        # memory:// store: read models in a throwaway file, so concurrent projection
        # threads get real SQLite transactions (one shared in-memory connection would not).
        directory = Path(tempfile.mkdtemp(prefix="reelpulse-read-"))
        atexit.register(shutil.rmtree, directory, True)
        url = f"sqlite:///{directory / 'read.db'}"
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_read_engine(url: str, *, pool_size: int = 10, writer: bool = False) -> sa.Engine:
    """An engine for the read models. On SQLite a `writer` engine starts every
    transaction with BEGIN IMMEDIATE: projection transactions read then write, and a
    deferred transaction could not upgrade its lock while another writer commits."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    elif url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    else:
        engine = sa.create_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            if writer:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves

        if writer:

            @sa.event.listens_for(engine, "begin")
            def _begin_immediate(conn: sa.Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Run Alembic migrations for the read-model schema."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
