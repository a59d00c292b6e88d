"""How far the read models are, known without a database query per request.

The response cache (adapters/graphql/cache.py) stores each answer with the version of
the read models it was computed from and serves it only while that version is current.
The version is the log's head plus every row of `projection_tracking`: name, position
and `updated_at` (a blue/green rebuild's switch can leave the position unchanged but
always sets `updated_at`; an in-place rebuild deletes the row).

Two sources keep it current:
- in-process projections announce every commit on the ChangeHub: a position moves in the
  version at once, before any reader can see the commit's rows through another query;
- everything else (projections in another process, rebuilds, the head) is read in a
  thread, at most every REFRESH_AFTER seconds while requests arrive. A version older than
  STALE_AFTER is never used: the request waits for a fresh read first.

So a cached answer is at most STALE_AFTER (+ one read) behind what an uncached query
would answer -- the eventual consistency the read side already has -- and a consistency
token is honoured exactly: a hit needs every projection at or past the token.
"""

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from adapters.readmodel.tables import projection_tracking

REFRESH_AFTER = 0.05  # seconds: start a background read when the version is this old
STALE_AFTER = 0.1  # seconds: older than this, wait for a fresh read before answering

Row = tuple[int, Any]  # (position, updated_at)
Read = Callable[[], tuple[int, dict[str, Row]]]  # -> (head, {name: row})


@dataclass(frozen=True)
class Positions:
    read_at: float  # clock time the database read began (-inf: never read)
    head: int
    rows: Mapping[str, Row]
    # Lowest position among the projections a consistency token waits for; -1 while one
    # has no tracking row (the usual path then answers even token 0 with a timeout).
    floor: int
    version: tuple[Any, ...] = field(compare=False)  # what cached answers are keyed by

    @classmethod
    def of(
        cls, read_at: float, head: int, rows: Mapping[str, Row], names: Iterable[str]
    ) -> "Positions":
        floor = min((rows[n][0] if n in rows else -1 for n in names), default=0)
        version = (head, tuple(sorted((n, p, u) for n, (p, u) in rows.items())))
        return cls(read_at, head, dict(rows), floor, version)


def database_reader(tracking_engine: sa.Engine, head: Callable[[], int]) -> Read:
    """One read of every tracking row and of the log's head (two short queries).

    `tracking_engine` is the engine the projections write through, as in
    ProjectionManager.positions(): the poll never takes a connection from the readers'
    pool (nor shows in their statement counts)."""

    def read() -> tuple[int, dict[str, Row]]:
        t = projection_tracking.c
        query = sa.select(t.name, t.position, t.updated_at)
        with tracking_engine.connect() as conn:
            rows = {r.name: (int(r.position), r.updated_at) for r in conn.execute(query)}
        return head(), rows

    return read


class PositionsClock:
    """The current Positions; thread-safe for the hub's listener, async for requests."""

    def __init__(
        self, read: Read, names: Iterable[str], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read = read
        self._names = list(names)
        self._clock = clock
        self._lock = threading.Lock()
        self._positions = Positions.of(float("-inf"), 0, {}, self._names)
        self._refreshing: asyncio.Task[None] | None = None

    @property
    def known(self) -> Positions:
        """The positions as last read or announced (no read, whatever their age)."""
        return self._positions

    def published(self, name: str, position: int, changed: set[str]) -> None:
        """ChangeHub listener (a runner's thread, after its commit): move the position now."""
        with self._lock:
            now = self._positions
            row = now.rows.get(name)
            if row is not None and row[0] >= position:
                return
            rows = {**now.rows, name: (position, row[1] if row else None)}
            self._positions = Positions.of(now.read_at, now.head, rows, self._names)

    async def current(self) -> Positions | None:
        """Positions no older than STALE_AFTER; None when they cannot be read (the caller
        then answers without the cache, and meets the same database error there)."""
        positions = self._positions
        age = self._clock() - positions.read_at
        if age < REFRESH_AFTER:
            return positions
        task = self._refresh()
        if age < STALE_AFTER:
            return positions  # fresh enough; the read runs in the background
        try:
            await asyncio.shield(task)  # a cancelled request must not cancel the shared read
        except Exception:
            return None
        return self._positions

    def _refresh(self) -> "asyncio.Task[None]":
        """The read in flight on this loop, or a new one: one read at a time."""
        loop = asyncio.get_running_loop()
        task = self._refreshing
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._refreshing = loop.create_task(self._read_and_merge())
            task.add_done_callback(_consume_error)
        return task

    async def _read_and_merge(self) -> None:
        started = self._clock()
        head, rows = await asyncio.to_thread(self._read)
        with self._lock:
            known = self._positions.rows
            merged = {}
            for name, (position, updated_at) in rows.items():
                row = known.get(name)
                if row is not None and row[1] == updated_at:
                    # The same commit as far as the row tells; the hub may have announced a
                    # newer one after this read began: never move back.
                    position = max(position, row[0])
                merged[name] = (position, updated_at)
            self._positions = Positions.of(started, head, merged, self._names)


def _consume_error(task: "asyncio.Task[None]") -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a failed read is retried by the next request
