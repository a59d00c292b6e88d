"""Rebuild a projection from the first event: blue/green (default) or in place.

Blue/green: a fresh instance of the projection is run by the unchanged ProjectionRunner
into a *shadow* copy of the tables it owns, while the live version keeps serving.
On PostgreSQL the shadow is a schema (`rm_shadow_<name>`) reached through SQLAlchemy's
`schema_translate_map`; on SQLite it is a file beside the read-model file
(`<read>.rebuild-<name>.db`), written through its own engine so the live writer lock is
never needed while building. The shadow has its own `projection_tracking` and
`projection_checkpoints`, committed with every batch, so a killed rebuild resumes from
its own position.

Switch, in ONE read-model transaction on the live database (shadow reachable as
`<schema>.<table>`: the PostgreSQL schema, or the SQLite file ATTACHed as `shadow`):
1. lock out the live runners: PostgreSQL `LOCK TABLE projection_checkpoints,
   projection_tracking IN ACCESS EXCLUSIVE MODE` (a runner's batch reads both first, so it
   either commits before the lock or waits and then reads the new position); SQLite takes
   the single writer lock with a write to the tracking row (runners BEGIN IMMEDIATE);
2. catch the shadow up to the live position if the live moved on meanwhile;
3. verify (below), 4. replace the live owned rows with the shadow's, copy the shadow's
   tracking row and checkpoint; commit. Readers keep their snapshot (MVCC / WAL) and see
   the old version until the commit, the new one after. Then the shadow is dropped.

Kafka mode (`KafkaRun`: projections a consumer group runs from a projection feed, see
adapters/kafka/projection_consumer.py): the projections of the group are rebuilt together
from the store, each into its shadow, while the workers keep running. The switch also
locks `kafka_offsets` (a worker's batch claims its offsets first: it commits before the
lock or waits behind it), catches every shadow up to the highest position any partition
of the group has applied, copies them, and moves each partition's `last_position` and
`complete_through` up to that position: the workers drop what the shadow already holds
(their duplicate rule) and go on from their own offsets, so every event takes effect
exactly once. PostgreSQL only.

Verify: the stats shadow must equal a recount from the event history at its position
(adapters/readmodel/recount.py); every owned table gets a row count and a checksum on both
sides, compared when both are at the same position (floats at 12 significant digits:
float sums depend on how events were split into batches). A difference is reported, and
is an error only with `require_identical` -- a rebuild after a code change is expected
to differ.
"""

import contextlib
import fcntl
import hashlib
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import Mapper
from sqlalchemy.pool import NullPool

from adapters.erasure import keys_for
from adapters.erasure.service import purge_read_models
from adapters.projections.registry import OWNED_ROWS, projection_specs
from adapters.projections.reset import Owned
from adapters.projections.runner import ProjectionRunner, ProjectionSpec, read_position
from adapters.readmodel.db import create_read_engine
from adapters.readmodel.recount import recount_check
from adapters.readmodel.tables import (
    kafka_offsets,
    metadata,
    projection_checkpoints,
    projection_quarantine,
    projection_tracking,
)
from adapters.readmodel.times import as_utc
from adapters.readmodel.upsert import insert_for
from commands.base import SharedStore

SHADOW_PREFIX = "rm_shadow_"
ATTACHED = "shadow"  # the SQLite shadow file's name inside the switch connection
LOCK_TIMEOUT_SECONDS = 30
# rm_alerts columns written by the alert-action worker, not by projections: kept on switch.
ACTION_COLUMNS = frozenset({"action_status", "action_result", "acted_at"})


class RebuildError(Exception):
    """An expected failure; the message is one line for the operator."""


class UnknownProjection(RebuildError):
    pass


class RebuildBusy(RebuildError):
    pass


class VerificationFailed(RebuildError):
    pass


class RebuildInterrupted(RebuildError):
    pass


@dataclass(frozen=True)
class Progress:
    name: str
    phase: str  # build | catch-up | verify | switch | rebuild (in place)
    start: int  # position the phase started from
    position: int
    target: int  # the store head (moves while events arrive)
    events: int  # applied in this phase
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class KafkaRun:
    """Projections a Kafka consumer group runs (`reelpulse kafka-project`): rebuilt
    together, coordinated with the group's stored offsets."""

    group: str
    topic: str
    partitions: int
    names: tuple[str, ...]


@dataclass(frozen=True)
class TableCheck:
    table: str
    rows: int  # rebuilt
    checksum: str
    live_rows: int | None = None  # at the same position, when compared
    live_checksum: str | None = None

    @property
    def identical(self) -> bool | None:
        if self.live_checksum is None:
            return None
        return self.rows == self.live_rows and self.checksum == self.live_checksum


@dataclass(frozen=True)
class RebuildResult:
    name: str
    mode: str  # blue-green | in-place
    position: int
    resumed_from: int
    events: int  # applied by this run
    seconds: float
    switch_seconds: float
    tables: tuple[TableCheck, ...]
    recount: str | None = None

    @property
    def compared(self) -> bool:
        return any(t.identical is not None for t in self.tables)

    @property
    def identical(self) -> bool:
        return self.compared and all(t.identical for t in self.tables)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        rows = sum(t.rows for t in self.tables)
        resumed = f", resumed from {self.resumed_from}" if self.resumed_from else ""
        if self.mode == "in-place":
            verdict = "rebuilt in place"
        elif not self.compared:
            verdict = "not compared with the live version (it was not at the same position)"
        elif self.identical:
            verdict = "identical to the live version"
        else:
            changed = [t.table for t in self.tables if not t.identical]
            verdict = f"differs from the live version in {', '.join(changed)}"
        recount = f"; recount {self.recount}" if self.recount else ""
        return (
            f"{self.name}: {self.mode} rebuild at position {self.position}: {self.events:,} "
            f"events in {self.seconds:.1f}s ({self.rate:,.0f} ev/s{resumed}), {rows:,} rows, "
            f"{verdict}{recount}; switch {self.switch_seconds:.2f}s"
        )


# -- checksums -----------------------------------------------------------------------------
def _canon(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.12g}"
    if isinstance(v, datetime):
        return as_utc(v).isoformat()
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in sorted(v.items())}
    if isinstance(v, list | tuple):
        return [_canon(x) for x in v]
    if isinstance(v, bytes | memoryview):
        return hashlib.sha256(bytes(v)).hexdigest()
    if isinstance(v, UUID):
        return str(v)
    return v


def table_checksum(
    conn: sa.Connection, owned: Owned, table: sa.Table | None = None
) -> tuple[int, str]:
    """(rows, checksum) of the rows `owned` names, read from `table` (default: the live
    one), in primary-key order, without the alert-action columns."""
    table = owned.table if table is None else table
    cols = [c for c in table.columns if c.name not in ACTION_COLUMNS]
    stmt = sa.select(*cols).order_by(*table.primary_key.columns)
    if owned.where is not None:
        stmt = stmt.where(owned.where(table))
    digest, n = hashlib.sha256(), 0
    for row in conn.execute(stmt.execution_options(yield_per=5000)):  # streamed, not all held
        digest.update(json.dumps([_canon(v) for v in row], default=str).encode() + b"\n")
        n += 1
    return n, digest.hexdigest()[:16]


def owned_checksums(engine: sa.Engine, name: str) -> dict[str, tuple[int, str]]:
    """{table: (rows, checksum)} of the live rows projection `name` owns."""
    with engine.connect() as conn:
        return {o.table.name: table_checksum(conn, o) for o in OWNED_ROWS[name]}


@lru_cache
def _tables_in(schema: str) -> dict[str, sa.Table]:
    md = sa.MetaData()
    return {t.name: t.to_metadata(md, schema=schema) for t in metadata.sorted_tables}


def _tables_of(name: str) -> list[sa.Table]:
    owned = {o.table.name: o.table for o in OWNED_ROWS[name]}
    return [projection_tracking, projection_checkpoints, projection_quarantine, *owned.values()]


# -- where the shadow lives ---------------------------------------------------------------
class _Shadow:
    name: str
    schema: str
    engine: sa.Engine  # the build engine: unqualified tables land in the shadow

    def exists(self) -> bool: ...
    def create(self, tables: list[sa.Table]) -> None: ...
    def drop(self) -> None: ...
    def switch(self) -> contextlib.AbstractContextManager[sa.Connection]: ...
    def lock_live(self, conn: sa.Connection, name: str) -> None: ...
    def hold(self, name: str) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None:
        """Release connections to the shadow (the shadow itself stays)."""

    def position(self) -> int | None:
        if not self.exists():
            return None
        try:
            with self.engine.connect() as conn:
                return read_position(conn, self.name)
        except sa.exc.DBAPIError:  # created but tables not yet there
            return 0


class _PostgresShadow(_Shadow):
    def __init__(self, live: sa.Engine, name: str) -> None:
        self.live, self.name, self.schema = live, name, SHADOW_PREFIX + name
        self.engine = live.execution_options(schema_translate_map={None: self.schema})

    def exists(self) -> bool:
        with self.live.connect() as conn:
            q = sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s")
            return conn.execute(q, {"s": self.schema}).first() is not None

    def create(self, tables: list[sa.Table]) -> None:
        with self.engine.begin() as conn:  # schema and tables in one transaction
            conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            metadata.create_all(conn, tables=tables)

    def drop(self) -> None:
        with self.live.begin() as conn:
            conn.execute(sa.schema.DropSchema(self.schema, cascade=True, if_exists=True))

    @contextlib.contextmanager
    def switch(self) -> Iterator[sa.Connection]:
        with self.live.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
            yield conn

    def lock_live(self, conn: sa.Connection, name: str) -> None:
        # In the order a runner's batch reads them (checkpoint first): no deadlock.
        conn.exec_driver_sql(
            "LOCK TABLE projection_checkpoints, projection_tracking IN ACCESS EXCLUSIVE MODE"
        )

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        key = zlib.crc32(f"reelpulse-rebuild:{name}".encode())
        with self.live.connect() as conn:  # a session lock: released if the process dies
            got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar()
            conn.commit()
            if not got:
                raise RebuildBusy(f"a rebuild of {name} is already running")
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()


class _SqliteShadow(_Shadow):
    schema = ATTACHED

    def __init__(self, live: sa.Engine, name: str) -> None:
        database = live.url.database
        if not database or database == ":memory:":
            raise RebuildError("blue/green needs a read-model file or PostgreSQL; use --in-place")
        self.name, self.live_path = name, Path(database)
        stem, suffix = self.live_path.stem, self.live_path.suffix or ".db"
        self.path = self.live_path.with_name(f"{stem}.rebuild-{name}{suffix}")
        self.lock_path = self.path.with_suffix(".lock")
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:  # type: ignore[override]
        if self._engine is None:
            self._engine = create_read_engine(f"sqlite:///{self.path}", pool_size=1, writer=True)
        return self._engine

    def exists(self) -> bool:
        return self.path.exists()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def create(self, tables: list[sa.Table]) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn, tables=tables)

    def drop(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    @contextlib.contextmanager
    def switch(self) -> Iterator[sa.Connection]:
        engine = sa.create_engine(
            f"sqlite:///{self.live_path}", poolclass=NullPool,
            connect_args={"timeout": LOCK_TIMEOUT_SECONDS, "check_same_thread": False},
        )  # fmt: skip

        @sa.event.listens_for(engine, "connect")
        def _attach(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None  # we BEGIN ourselves; ATTACH outside a transaction
            dbapi_conn.execute(f"ATTACH DATABASE ? AS {ATTACHED}", (str(self.path),))

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # DEFERRED, not IMMEDIATE: IMMEDIATE would also lock the shadow file, which the
            # catch-up below still writes through the build engine.
            conn.exec_driver_sql("BEGIN")

        try:
            with engine.begin() as conn:
                yield conn
        finally:
            engine.dispose()

    def lock_live(self, conn: sa.Connection, name: str) -> None:
        conn.execute(  # the first write takes the live file's writer lock (runners wait)
            projection_tracking.update()
            .where(projection_tracking.c.name == name)
            .values(events=projection_tracking.c.events)
        )

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as f:  # flock: released if the process dies
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RebuildBusy(f"a rebuild of {name} is already running") from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def shadow_for(engine: sa.Engine, name: str) -> _Shadow:
    if engine.dialect.name == "postgresql":
        return _PostgresShadow(engine, name)
    return _SqliteShadow(engine, name)


def shadow_positions(engine: sa.Engine, names: list[str]) -> dict[str, int]:
    """Positions of blue/green rebuilds in progress (or interrupted), by projection."""
    out: dict[str, int] = {}
    for name in names:
        with contextlib.suppress(RebuildError):
            shadow = shadow_for(engine, name)
            try:
                position = shadow.position()
            finally:
                shadow.close()
            if position is not None:
                out[name] = position
    return out


# -- the event store, seen only up to a position ------------------------------------------
class _CappedRecorder:
    def __init__(self, recorder: Any, cap: int) -> None:
        self._recorder, self._cap = recorder, cap

    def max_notification_id(self) -> int:
        return min(self._recorder.max_notification_id() or 0, self._cap)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._recorder, attr)


class _CappedStore:
    """The store as the runner and the recount see it: its head is at most `cap`, so a
    catch-up stops exactly at the live projection's position."""

    def __init__(self, store: SharedStore, cap: int) -> None:
        self._store = store
        self.recorder = _CappedRecorder(store.recorder, cap)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._store, attr)


def _capped(store: SharedStore, cap: int) -> SharedStore:
    return cast(SharedStore, _CappedStore(store, cap))


# -- the rebuilder -------------------------------------------------------------------------
OnProgress = Callable[[Progress], None]


@dataclass
class Rebuilder:
    store: SharedStore
    mapper: Mapper[Any]
    engine: sa.Engine  # the live read-model writer engine
    batch_size: int = 1000
    runners: Mapping[str, ProjectionRunner] = field(default_factory=dict)  # in this process
    kafka: tuple[KafkaRun, ...] = ()  # projections run by Kafka consumer groups

    def kafka_run(self, name: str) -> KafkaRun | None:
        return next((run for run in self.kafka if name in run.names), None)

    @classmethod
    def for_container(cls, container: Any, *, batch_size: int | None = None) -> "Rebuilder":
        return cls(
            container.store, container.content.mapper, container.write_engine,
            batch_size=batch_size or container.settings.projection_batch_size,
            runners={r.name: r for r in container.projections.runners},
        )  # fmt: skip

    @property
    def names(self) -> list[str]:
        return [s.name for s in projection_specs()]

    def spec(self, name: str) -> ProjectionSpec:
        """A fresh projection instance (no in-memory state shared with the live one)."""
        for spec in projection_specs():
            if spec.name == name:
                return spec
        raise UnknownProjection(f"unknown projection {name!r} (known: {', '.join(self.names)})")

    def hold(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Exclusive right to rebuild `name`, across processes; RebuildBusy if taken."""
        self.spec(name)
        if self.engine.dialect.name == "postgresql":
            return _PostgresShadow(self.engine, name).hold(name)
        return _SqliteShadow(self.engine, name).hold(name)

    def rebuild(
        self,
        name: str,
        *,
        in_place: bool = False,
        restart: bool = False,
        require_identical: bool = False,
        on_progress: OnProgress | None = None,
        stop: threading.Event | None = None,
        held: bool = False,
    ) -> RebuildResult:
        spec = self.spec(name)
        run = self.kafka_run(name)
        if run is not None:
            raise RebuildError(
                f"{name} is run by the Kafka consumer group {run.group}: rebuild it with "
                f"{', '.join(run.names)} (rebuild_kafka)"
            )
        with contextlib.nullcontext() if held else self.hold(name):
            if in_place:
                result = self._in_place(spec, on_progress, stop)
            else:
                result = self._blue_green(spec, restart, require_identical, on_progress, stop)
        # A rebuild replays the events of forgotten viewers too (their ids stay in the log):
        # drop their read-model rows again (docs/erasure.md).
        purge_read_models(self.engine, keys_for(self.store.recorder).erased_subjects())
        return result

    # -- Kafka mode --------------------------------------------------------------------------
    def rebuild_kafka(
        self,
        run: KafkaRun,
        *,
        restart: bool = False,
        require_identical: bool = False,
        on_progress: OnProgress | None = None,
        stop: threading.Event | None = None,
    ) -> list[RebuildResult]:
        """Blue/green rebuild of every projection of a Kafka consumer group while its
        workers run (see the module docstring)."""
        if self.engine.dialect.name != "postgresql":
            raise RebuildError("a rebuild of Kafka-run projections needs PostgreSQL read models")
        specs = [self.spec(n) for n in run.names]
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            for spec in specs:
                stack.enter_context(self.hold(spec.name))
            shadows = {spec.name: _PostgresShadow(self.engine, spec.name) for spec in specs}
            try:
                results = self._kafka_build_and_switch(
                    run, specs, shadows, restart, require_identical, on_progress, stop, started
                )
            finally:
                for shadow in shadows.values():
                    shadow.close()
        purge_read_models(self.engine, keys_for(self.store.recorder).erased_subjects())
        return results

    def _kafka_build_and_switch(
        self, run: KafkaRun, specs: list[ProjectionSpec], shadows: dict[str, "_PostgresShadow"],
        restart: bool, require_identical: bool, on_progress: OnProgress | None,
        stop: threading.Event | None, started: float,
    ) -> list[RebuildResult]:  # fmt: skip
        built: dict[str, tuple[ProjectionRunner, int, int]] = {}
        for spec in specs:
            built[spec.name] = self._build(shadows[spec.name], spec, restart, on_progress, stop)
            self._ensure_tracking_row(spec.name)
        recounts = {n: self._recount(n, shadows[n].engine, r.position()) for n, (r, _, _) in
                    built.items()}  # fmt: skip
        switch_started = time.perf_counter()
        results = []
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
            # The workers' batches claim kafka_offsets first; their position writes read it
            # before projection_tracking: the same order here, no deadlock.
            conn.exec_driver_sql(
                "LOCK TABLE kafka_offsets, projection_checkpoints, projection_tracking "
                "IN ACCESS EXCLUSIVE MODE"
            )
            applied, complete = _group_marks(conn, run)
            # The group or a sibling may have gone further than a shadow: all catch up.
            target = max(applied, *(r.position() for r, _, _ in built.values()))
            # The live rows hold exactly the events up to `target` only when every
            # partition is complete through it and none applied beyond it.
            exact = complete >= target and applied <= target
            for spec in specs:
                runner, resumed_from, events = built[spec.name]
                position, events, checks = self._switch_in(
                    conn, shadows[spec.name], spec, runner, target, events, require_identical,
                    on_progress, stop, started, compare=lambda _: exact,
                )  # fmt: skip
                results.append((spec.name, position, resumed_from, events, checks))
            _raise_group_marks(conn, run, target)
        switch_seconds = time.perf_counter() - switch_started
        for shadow in shadows.values():
            shadow.drop()
        seconds = time.perf_counter() - started
        return [
            RebuildResult(
                name,
                "blue-green (kafka)",
                position,
                resumed,
                events,
                seconds,
                switch_seconds,
                tuple(checks),
                recounts[name],
            )
            for name, position, resumed, events, checks in results
        ]

    # -- blue/green ------------------------------------------------------------------------
    def _blue_green(
        self, spec: ProjectionSpec, restart: bool, require_identical: bool,
        on_progress: OnProgress | None, stop: threading.Event | None,
    ) -> RebuildResult:  # fmt: skip
        name, started = spec.name, time.perf_counter()
        shadow = shadow_for(self.engine, name)
        try:
            return self._build_and_switch(shadow, spec, restart, require_identical, on_progress,
                                          stop, started)  # fmt: skip
        finally:
            shadow.close()

    def _build_and_switch(
        self, shadow: _Shadow, spec: ProjectionSpec, restart: bool, require_identical: bool,
        on_progress: OnProgress | None, stop: threading.Event | None, started: float,
    ) -> RebuildResult:  # fmt: skip
        name = spec.name
        runner, resumed_from, events = self._build(shadow, spec, restart, on_progress, stop)
        recount = self._recount(name, shadow.engine, runner.position())
        self._ensure_tracking_row(name)
        switch_started = time.perf_counter()
        with self._paused(name), shadow.switch() as conn:
            shadow.lock_live(conn, name)
            live = read_position(conn, name)
            position, events, checks = self._switch_in(
                conn, shadow, spec, runner, live, events, require_identical, on_progress,
                stop, started, compare=lambda position: position == live,
            )  # fmt: skip
        switch_seconds = time.perf_counter() - switch_started
        shadow.drop()
        return RebuildResult(
            name, "blue-green", position, resumed_from, events,
            time.perf_counter() - started, switch_seconds, tuple(checks), recount,
        )  # fmt: skip

    def _build(
        self, shadow: _Shadow, spec: ProjectionSpec, restart: bool,
        on_progress: OnProgress | None, stop: threading.Event | None,
    ) -> tuple[ProjectionRunner, int, int]:  # fmt: skip
        """Build (or resume) the shadow of `spec`: (its runner, resumed from, events)."""
        if restart:
            shadow.drop()
        resumed_from = shadow.position() or 0
        shadow.create(_tables_of(spec.name))
        runner = ProjectionRunner(spec, self.store, self.mapper, shadow.engine,
                                  batch_size=self.batch_size)  # fmt: skip
        runner.raise_alerts = False  # the shadow has no rm_alerts
        return runner, resumed_from, self._run(runner, "build", on_progress, stop)

    def _switch_in(
        self, conn: sa.Connection, shadow: _Shadow, spec: ProjectionSpec,
        runner: ProjectionRunner, target: int, events: int, require_identical: bool,
        on_progress: OnProgress | None, stop: threading.Event | None, started: float,
        *, compare: Callable[[int], bool],
    ) -> tuple[int, int, list[TableCheck]]:  # fmt: skip
        """In the switch's transaction (the live side locked): catch the shadow up to
        `target`, verify it (against the live rows when `compare(position)`), copy it in.
        Returns (position, events applied by the build and the catch-up, checks)."""
        name = spec.name
        if runner.position() < target:  # the live version moved on while we built
            catch_up = ProjectionRunner(spec, _capped(self.store, target), self.mapper,
                                        shadow.engine, batch_size=self.batch_size)  # fmt: skip
            catch_up.raise_alerts = False
            events += self._run(catch_up, "catch-up", on_progress, stop)
        position = runner.position()
        self._report(on_progress, name, "verify", position, events, started)
        checks = self._compare(conn, name, shadow.schema, compare=compare(position))
        if require_identical and not all(c.identical for c in checks):
            different = [c.table for c in checks if not c.identical]
            raise VerificationFailed(
                f"{name}: the rebuilt version differs from the live one in "
                f"{', '.join(different)} (shadow kept; it resumes on the next run)"
            )
        self._report(on_progress, name, "switch", position, events, started)
        self._copy(conn, name, shadow.schema)
        return position, events, checks

    def _compare(
        self, conn: sa.Connection, name: str, schema: str, *, compare: bool
    ) -> list[TableCheck]:
        checks = []
        for owned in OWNED_ROWS[name]:
            rows, checksum = table_checksum(conn, owned, _tables_in(schema)[owned.table.name])
            live = table_checksum(conn, owned) if compare else (None, None)
            checks.append(TableCheck(owned.table.name, rows, checksum, *live))
        return checks

    def _copy(self, conn: sa.Connection, name: str, schema: str) -> None:
        shadow = _tables_in(schema)
        for owned in OWNED_ROWS[name]:
            live, source = owned.table, shadow[owned.table.name]
            cols = [c.name for c in live.columns]
            select = sa.select(*(source.c[c] for c in cols))
            if owned.where is not None:
                select = select.where(owned.where(source))
            kept = [c for c in cols if c in ACTION_COLUMNS]
            if not kept:
                conn.execute(owned.delete())
                conn.execute(live.insert().from_select(cols, select))
                continue
            # Keep what the alert-action worker recorded for alerts that survive the rebuild.
            keys = [c.name for c in live.primary_key.columns]
            gone = sa.tuple_(*(live.c[k] for k in keys)).not_in(
                sa.select(*(source.c[k] for k in keys))
            )
            conn.execute(owned.delete().where(gone))
            stmt = insert_for(conn, live).from_select(cols, select.where(sa.true()))
            update = {c: stmt.excluded[c] for c in cols if c not in kept and c not in keys}
            conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update))
        for table in (projection_tracking, projection_checkpoints, projection_quarantine):
            conn.execute(table.delete().where(table.c.name == name))
            source = shadow[table.name]
            cols = [c.name for c in table.columns]
            select = sa.select(*(source.c[c] for c in cols)).where(source.c.name == name)
            conn.execute(table.insert().from_select(cols, select))
        conn.execute(
            projection_tracking.update()
            .where(projection_tracking.c.name == name)
            .values(updated_at=datetime.now(UTC), last_error=None)
        )

    def _ensure_tracking_row(self, name: str) -> None:
        """The switch locks through the live tracking row (SQLite): make sure it exists."""
        with self.engine.begin() as conn:
            stmt = insert_for(conn, projection_tracking).values(name=name, position=0, events=0)
            conn.execute(stmt.on_conflict_do_nothing())

    # -- in place ----------------------------------------------------------------------------
    def _in_place(
        self, spec: ProjectionSpec, on_progress: OnProgress | None, stop: threading.Event | None
    ) -> RebuildResult:
        name, started = spec.name, time.perf_counter()
        with self._paused(name):
            self._ensure_tracking_row(name)
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    _PostgresShadow(self.engine, name).lock_live(conn, name)
                for owned in OWNED_ROWS[name]:
                    conn.execute(owned.delete())
                for table in (projection_tracking, projection_checkpoints, projection_quarantine):
                    conn.execute(table.delete().where(table.c.name == name))
            runner = ProjectionRunner(spec, self.store, self.mapper, self.engine,
                                      batch_size=self.batch_size)  # fmt: skip
            events = self._run(runner, "rebuild", on_progress, stop)
        position = runner.position()
        recount = self._recount(name, self.engine, position)
        with self.engine.connect() as conn:
            checks = [TableCheck(o.table.name, *table_checksum(conn, o)) for o in OWNED_ROWS[name]]
        seconds = time.perf_counter() - started
        return RebuildResult(name, "in-place", position, 0, events, seconds, 0.0, tuple(checks),
                             recount)  # fmt: skip

    # -- shared steps ------------------------------------------------------------------------
    def _run(
        self, runner: ProjectionRunner, phase: str, on_progress: OnProgress | None,
        stop: threading.Event | None,
    ) -> int:  # fmt: skip
        """Run batches until caught up; return the events applied."""
        started, start = time.perf_counter(), runner.position()
        first = _events(runner)
        position, events = start, 0
        while True:
            if stop is not None and stop.is_set():
                raise RebuildInterrupted(
                    f"{runner.name}: interrupted at position {position}; run the rebuild "
                    "again to resume"
                )
            if runner.run_once() == 0:
                return events
            position, events = runner.position(), _events(runner) - first
            if on_progress is not None:
                head = self.store.recorder.max_notification_id() or 0
                on_progress(Progress(runner.name, phase, start, position, max(head, position),
                                     events, time.perf_counter() - started))  # fmt: skip

    def _report(
        self, on_progress: OnProgress | None, name: str, phase: str, position: int,
        events: int, started: float,
    ) -> None:  # fmt: skip
        if on_progress is not None:
            on_progress(Progress(name, phase, position, position, position, events,
                                 time.perf_counter() - started))  # fmt: skip

    def _recount(self, name: str, engine: sa.Engine, position: int) -> str | None:
        """Only the stats counters have an independent recount from the event history."""
        if name != "stats":
            return None
        report = recount_check(_capped(self.store, position), self.mapper, engine)
        if not report.ok:
            m = report.mismatches[0]
            raise VerificationFailed(
                f"stats: {len(report.mismatches)} counters differ from the recount at position "
                f"{position}, e.g. {m.table}.{m.column} of {m.key}: {m.actual} != {m.expected}"
            )
        return f"ok ({report.rows_checked:,} rows)"

    @contextlib.contextmanager
    def _paused(self, name: str) -> Iterator[None]:
        """Stop this process's runner of `name` (if running) and make it reload its state
        from the checkpoint afterwards: its in-memory model state belongs to the version
        being replaced. Runners in other processes are held off by the lock instead."""
        runner = self.runners.get(name)
        thread = getattr(runner, "_thread", None)
        running = runner is not None and thread is not None and thread.is_alive()
        if running:
            runner.stop()  # type: ignore[union-attr]
            if thread.is_alive():  # type: ignore[union-attr]
                runner._stop.clear()  # type: ignore[union-attr]  # let it carry on
                raise RebuildError(f"the running projection {name} did not pause in time")
        try:
            yield
        finally:
            if runner is not None:
                runner._state_loaded = False
                if running:
                    runner._stop.clear()
                    runner.start()


def _group_marks(conn: sa.Connection, run: KafkaRun) -> tuple[int, int]:
    """(the highest position any partition of the group applied, the least position every
    partition is complete through; 0 while a partition has no stored offset)."""
    where = sa.and_(kafka_offsets.c.consumer_group == run.group, kafka_offsets.c.topic == run.topic)
    rows = conn.execute(
        sa.select(kafka_offsets.c.partition, kafka_offsets.c.last_position,
                  kafka_offsets.c.complete_through).where(where)
    ).all()  # fmt: skip
    applied = max((int(r.last_position) for r in rows), default=0)
    marks = {int(r.partition): int(r.complete_through) for r in rows}
    complete = min((marks.get(p, 0) for p in range(run.partitions)), default=0)
    return applied, complete


def _raise_group_marks(conn: sa.Connection, run: KafkaRun, position: int) -> None:
    """Every partition of the group: events up to `position` are applied (they are in the
    switched-in rows), so its worker drops them as duplicates and reports them complete."""
    where = sa.and_(kafka_offsets.c.consumer_group == run.group, kafka_offsets.c.topic == run.topic)
    for column in (kafka_offsets.c.last_position, kafka_offsets.c.complete_through):
        conn.execute(
            kafka_offsets.update().where(where, column < position).values({column.name: position})
        )
    partitions = conn.execute(sa.select(kafka_offsets.c.partition).where(where)).scalars()
    stored = {int(p) for p in partitions}
    missing = [p for p in range(run.partitions) if p not in stored]
    if missing:  # never consumed: its worker starts at the beginning and drops up to here
        conn.execute(
            kafka_offsets.insert(),
            [
                {"consumer_group": run.group, "topic": run.topic, "partition": p,
                 "next_offset": 0, "last_position": position, "events": 0,
                 "updated_at": datetime.now(UTC), "complete_through": position}
                for p in missing
            ],
        )  # fmt: skip


def _events(runner: ProjectionRunner) -> int:
    with runner.engine.connect() as conn:
        row = conn.execute(
            sa.select(projection_tracking.c.events).where(projection_tracking.c.name == runner.name)
        ).first()
        return int(row[0]) if row else 0
