"""Per-request GraphQL context: readers, DataLoaders, consistency token handling."""

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from adapters.auth.principal import Principal
from adapters.auth.service import Authenticator
from adapters.bootstrap import Container
from adapters.readmodel.stats_reader import SqlStatsReader


class UserError(Exception):
    """A client mistake in a query (bad cursor, page too large...): shown, never masked."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT", **extensions: Any) -> None:
        super().__init__(message)
        self.extensions = {"code": code, **extensions}


MAX_PAGE_SIZE = 100


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise UserError(f"`first` must be between 1 and {MAX_PAGE_SIZE}", code="PAGE_SIZE")
    return first


@dataclass
class Readers:
    """Long-lived readers over the read-model engine (one set per app)."""

    stats: SqlStatsReader
    trending: Any
    moderation: Any
    sessions: Any
    models: Any

    @classmethod
    def build(cls, container: Container) -> "Readers":
        from adapters.readmodel.models_reader import SqlModelsReader
        from adapters.readmodel.moderation_reader import SqlModerationReader
        from adapters.readmodel.sessions_reader import SqlSessionsReader
        from adapters.readmodel.trending_reader import SqlTrendingReader

        engine = container.read_engine
        return cls(
            stats=SqlStatsReader(engine),
            trending=SqlTrendingReader(engine),
            moderation=SqlModerationReader(engine),
            sessions=SqlSessionsReader(engine),
            models=SqlModelsReader(engine),
        )


# Readers are synchronous (SQLAlchemy): they run in threads to keep the event loop free,
# in a pool of their own. They used asyncio.to_thread, the event loop's default executor
# (cpu_count + 4 threads: 6 on 2 cores), which also authenticates every REST request
# (adapters/auth/policy.py) and runs the engagement commands' store work: one costly
# query's thousands of reads queued there ahead of everyone else's work. READ_THREADS
# stays below the read engine's pool (10 connections + 10 overflow), so a GraphQL read
# never waits on, or times out for, a connection others need.
READ_THREADS = 4
_read_pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="graphql-read")


async def call(fn: Any, *args: Any) -> Any:
    """Run a synchronous read in the GraphQL read pool, keeping the event loop free."""
    run = contextvars.copy_context().run  # as asyncio.to_thread: the request id goes along
    return await asyncio.get_running_loop().run_in_executor(_read_pool, run, fn, *args)


def _on_connection(engine: Any, fn: Any, *args: Any) -> Any:
    with engine.connect() as conn:
        return fn(conn, *args)


async def read(info: Any, fn: Any, *args: Any) -> Any:
    """`fn(conn, *args)` on a read-model connection, in the read pool; a ValueError (a
    reader refusing an argument) is the caller's error, not the server's."""
    try:
        return await call(_on_connection, info.context.container.read_engine, fn, *args)
    except ValueError as e:
        raise UserError(str(e)) from None


@dataclass
class GraphQLContext(BaseContext):
    container: Container
    readers: Readers
    consistency_token: int | None = None
    token_error: str | None = None
    auth: Authenticator | None = None
    principal: Principal | None = None  # None only before a WebSocket's connection_init
    loaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()
        stats, moderation = self.readers.stats, self.readers.moderation

        async def creators(ids: list[UUID]) -> list[Any]:
            found = await call(stats.creators_by_ids, list(ids))
            return [found.get(i) for i in ids]

        async def videos(ids: list[UUID]) -> list[Any]:
            found = await call(stats.videos_by_ids, list(ids))
            return [found.get(i) for i in ids]

        async def cases(ids: list[UUID]) -> list[Any]:
            found = await call(moderation.cases_by_ids, list(ids))
            return [found.get(i) for i in ids]

        self.loaders = {
            "creator": DataLoader(load_fn=creators),
            "video": DataLoader(load_fn=videos),
            "case": DataLoader(load_fn=cases),
        }
