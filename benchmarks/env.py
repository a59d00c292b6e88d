"""The benchmark's PostgreSQL server, its databases and its seeded workload.

One server for the whole run: the one REELPULSE_TEST_DATABASE_URL names, else a
throwaway local PostgreSQL 15 cluster (tests/support/pgserver.py) with durability back
on (fsync, full_page_writes, synchronous_commit = on: every COMMIT waits for its WAL
flush, as in production). Every measurement gets a fresh database copied from a
template that holds the workload's creators and videos, so rounds never see each other's
rows.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

from adapters.bootstrap import bootstrap
from adapters.settings import Settings
from adapters.workload import (
    EngagementBatch,
    PublishVideo,
    RegisterCreator,
    WorkloadConfig,
    drive_application,
    generate,
)
from benchmarks.core import console, tests_on_path
from commands.engagement import Signal

DURABLE = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}


@dataclass
class Workload:
    signals: list[Signal]  # engagement signals on the catalog's videos and creators
    videos: list[Any]  # video ids
    catalog_commands: int


class Server:
    """Databases on one PostgreSQL server, durable settings on."""

    def __init__(self, admin_url: str, local: Any) -> None:
        self.admin_url = admin_url
        self.local = local  # the PostgresServer we started, or None
        self.admin = psycopg.connect(admin_url, autocommit=True)
        self.version = str(self.admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def url(self, name: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def create(self, name: str | None = None, template: str | None = None) -> str:
        name = name or f"bench_{uuid4().hex[:10]}"
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self.admin.execute(stmt)
        self.admin.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(sql.Identifier(name))
        )
        return name

    def drop(self, name: str) -> None:
        self.admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    @contextlib.contextmanager
    def fresh(self, template: str | None = None) -> Iterator[str]:
        """A new database (a copy of `template`), dropped afterwards; yields its URL."""
        name = self.create(template=template)
        try:
            yield self.url(name)
        finally:
            self.drop(name)

    def close(self) -> None:
        self.admin.close()
        if self.local is not None:
            self.local.stop()


@contextlib.contextmanager
def server(settings: dict[str, str] | None = None) -> Iterator[Server]:
    """The benchmark's server; `settings` are extra server settings (ALTER SYSTEM, then a
    reload: only those a reload applies, e.g. wal_compression, checkpoint_timeout)."""
    tests_on_path()
    import os

    from support.pgserver import ENV_VAR, start_local_server

    external = os.environ.get(ENV_VAR, "").strip()
    local = None if external else start_local_server()
    admin_url = external or local.admin_url  # type: ignore[union-attr]
    if local is not None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for key, value in {**DURABLE, **(settings or {})}.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(key), sql.Literal(value)))  # fmt: skip
            conn.execute("SELECT pg_reload_conf()")
            pending = [
                r[0] for r in conn.execute("SELECT name FROM pg_settings WHERE pending_restart")
            ]
            if pending:
                raise SystemExit(f"these settings need a server restart: {', '.join(pending)}")
    elif settings:
        raise SystemExit(f"--pg-setting applies to the benchmark's own server, not {ENV_VAR}")
    s = Server(admin_url.split("?")[0], local)
    try:
        yield s
    finally:
        s.close()


def workload(views: int, creators: int = 200, seed: int = 7) -> tuple[list[Any], Workload]:
    """The seeded workload: its catalog commands and its engagement signals."""
    config = WorkloadConfig(
        seed=seed, views_per_day=views, creators=creators, viewers=max(100, creators * 25),
        batch_window_seconds=600,
    )  # fmt: skip
    commands = generate(config).commands
    catalog = [c for c in commands if isinstance(c, RegisterCreator | PublishVideo)]
    signals = [s for c in commands if isinstance(c, EngagementBatch) for s in c.signals]
    videos = [c.video_id for c in catalog if isinstance(c, PublishVideo)]
    return catalog, Workload(signals, videos, len(catalog))


def make_template(srv: Server, catalog: list[Any]) -> str:
    """A database holding the catalog's events and read models; closed, so copyable."""
    name = srv.create()
    container = bootstrap(Settings(database_url=srv.url(name), projections_in_process=False))
    try:
        drive_application(container, catalog)
        container.run_projections_until_idle()
    finally:
        container.close()
    console.print(f"template database {name}: {len(catalog)} catalog commands")
    return name
