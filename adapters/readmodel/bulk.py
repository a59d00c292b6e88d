"""Set-based writes for read-model views: one statement per table per batch.

A view accumulates its batch in memory (counter deltas per row, last values) and writes
each table once at flush through `upsert`. On PostgreSQL the rows travel as one array
per column into `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE`: one prepared
statement whatever the row count (SQLAlchemy's multi-row VALUES is a new statement text
for every row count, which psycopg parses again: 12 % of a rebuild, docs/benchmarks.md),
and psycopg adapts each column in C. Other databases (SQLite, the embedded default) get
the same statement shape through SQLAlchemy's executemany.

`tests/integration/test_bulk_upsert.py` runs every kind of update on both databases
against the same expected rows.
"""

import struct
import weakref
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import orjson
import psycopg
import sqlalchemy as sa
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy.dialects import postgresql, sqlite

# How each update column combines the stored value and the new one.
ADD = "add"  # stored + new (counters)
SET = "set"  # new (last writer wins)
MAX = "max"  # greatest(stored, new), NULLs ignored
MIN = "min"  # least(stored, new), NULLs ignored
KEEP = "keep"  # stored (only written by the insert)
# Seconds kept to the millisecond: stored + new in whole milliseconds, divided back. The
# stored double is always the one nearest to an integer count of milliseconds, so the sum
# is exact and does not depend on the order of the additions (float + float does: a keyed
# projection's Kafka workers add in another order than the single-process runner).
ADD_MS = "add_ms"


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    key: Sequence[str],
    update: Mapping[str, str] | None = None,
) -> None:
    """Insert `rows` (tuples in `columns` order) into `table`; a row whose `key` exists
    updates the columns of `update` (column -> ADD/SET/MAX/MIN), or is skipped when
    `update` is empty. Keys must be unique within `rows`."""
    if not rows:
        return
    update = dict(update or {})
    if conn.dialect.name == "postgresql":
        sql = _pg_statement(
            table, tuple(columns), tuple(key), tuple(update.items()), _schema(conn, table)
        )
        arrays = _columns(table, columns, rows)
        cursor = _cursor(conn)
        try:
            cursor.execute(sql, arrays, prepare=True)
        finally:
            cursor.close()
        return
    stmt = sqlite.insert(table) if conn.dialect.name == "sqlite" else postgresql.insert(table)
    excluded = stmt.excluded
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={c: _combine(how, table.c[c], excluded[c], conn) for c, how in update.items()},
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    conn.execute(stmt, [dict(zip(columns, r, strict=True)) for r in rows])


def update_existing(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    key: Sequence[str],
    update: Mapping[str, str],
) -> None:
    """Update the stored rows named by `key` (columns of `update`, combined as in
    `upsert`); rows with no stored match are ignored (an UPDATE, not an upsert)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        sql = _pg_update(
            table, tuple(columns), tuple(key), tuple(update.items()), _schema(conn, table)
        )
        cursor = _cursor(conn)
        try:
            cursor.execute(sql, _columns(table, columns, rows), prepare=True)
        finally:
            cursor.close()
        return
    stmt = (
        table.update()
        .where(*(table.c[k] == sa.bindparam(f"k_{k}") for k in key))
        .values({
            c: _combine(how, table.c[c], sa.bindparam(f"v_{c}"), conn)
            for c, how in update.items()
        })
    )  # fmt: skip
    params = []
    for r in rows:
        values = dict(zip(columns, r, strict=True))
        params.append({**{f"k_{k}": values[k] for k in key},
                       **{f"v_{c}": values[c] for c in update}})  # fmt: skip
    conn.execute(stmt, params)


def insert_returning_new(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    key: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert the rows whose key is not stored; return the keys of those inserted."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        sql = _pg_statement(
            table, tuple(columns), tuple(key), (), _schema(conn, table), returning=True
        )
        cursor = _cursor(conn)
        try:
            cursor.execute(sql, _columns(table, columns, rows), prepare=True)
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(key))
    stmt = stmt.returning(*(table.c[k] for k in key))
    result = conn.execute(stmt, [dict(zip(columns, r, strict=True)) for r in rows])
    return [tuple(r) for r in result]


def write_counting_new(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    key: Sequence[str],
    update: Mapping[str, str],
    count: str,
    children: sa.Table,
    child_columns: Sequence[str],
    child_rows: Sequence[Sequence[Any]],
    create: bool = True,
) -> None:
    """Insert `child_rows` into `children`, skipping the stored ones (their key is all of
    `child_columns`), then write `rows` to `table` as `upsert` (create=True) or
    `update_existing` (create=False) do, with `count` added to by the number of child
    rows newly inserted for each row (a child names its row by its first len(key)
    columns, named as `key`). E.g. a session's distinct videos: each new (session, video)
    pair is one more video watched.

    On PostgreSQL this is one statement (the insert is a data-modifying CTE whose
    RETURNING rows are counted per key): no round trip, and no new keys sent back and
    parsed. Elsewhere (and as its reference, tests/integration/test_bulk_upsert.py):
    insert_returning_new, a count in Python, then the write."""
    if not rows:
        return
    if tuple(child_columns[: len(key)]) != tuple(key):
        raise ValueError(f"child columns {child_columns} do not start with the key {key}")
    if conn.dialect.name == "postgresql" and child_rows:
        sql = _pg_counting(
            table, tuple(columns), tuple(key), tuple(update.items()), count, children,
            tuple(child_columns), _schema(conn, table), _schema(conn, children), create,
        )  # fmt: skip
        arrays = _columns(children, child_columns, child_rows) + _columns(table, columns, rows)
        cursor = _cursor(conn)
        try:
            cursor.execute(sql, arrays, prepare=True)
        finally:
            cursor.close()
        return
    new = insert_returning_new(conn, children, child_columns, child_rows, key=child_columns)
    counted: dict[tuple[Any, ...], int] = {}
    for r in new:
        k = tuple(r[: len(key)])
        counted[k] = counted.get(k, 0) + 1
    at = [list(columns).index(k) for k in key]
    full = [(*r, counted.get(tuple(r[i] for i in at), 0)) for r in rows]
    write = upsert if create else update_existing
    write(conn, table, (*columns, count), full, key=key, update={**update, count: ADD})


def select_in(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    key: str,
    values: Sequence[Any],
) -> list[tuple[Any, ...]]:
    """`SELECT columns FROM table WHERE key IN values` as tuples: on PostgreSQL one
    prepared statement with the values as one binary array (SQLAlchemy renders an IN list
    of bound parameters per call), elsewhere SQLAlchemy in chunks."""
    if not values:
        return []
    if conn.dialect.name == "postgresql":
        sql = _pg_select(table, tuple(columns), key, _schema(conn, table))
        cursor = _cursor(conn)
        try:
            cursor.execute(sql, (list(values),), prepare=True)
            return [tuple(r) for r in cursor]
        finally:
            cursor.close()
    out: list[tuple[Any, ...]] = []
    values = list(values)
    for i in range(0, len(values), 500):
        stmt = sa.select(*(table.c[c] for c in columns)).where(
            table.c[key].in_(values[i : i + 500])
        )
        out.extend(tuple(r) for r in conn.execute(stmt))
    return out


def raw_query(conn: sa.Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """A PostgreSQL statement of a view's own (`{t}`-style names from `qualified`), run
    prepared on the connection's driver cursor; rows as tuples."""
    cursor = _cursor(conn)
    try:
        cursor.execute(sql, params, prepare=True)
        return [tuple(r) for r in cursor]
    finally:
        cursor.close()


def raw_execute(conn: sa.Connection, sql: str, params: Sequence[Any]) -> None:
    """raw_query for a statement without rows (DELETE, UPDATE)."""
    cursor = _cursor(conn)
    try:
        cursor.execute(sql, params, prepare=True)
    finally:
        cursor.close()


def qualified(conn: sa.Connection, table: sa.Table) -> str:
    """The table's quoted name as this connection sees it (schema_translate_map)."""
    return _qualified(table, _schema(conn, table))


def _combine(how: str, stored: Any, new: Any, conn: sa.Connection) -> Any:
    if how == ADD:
        return stored + new
    if how == ADD_MS:
        return (sa.func.round(stored * 1000) + sa.func.round(new * 1000)) / 1000.0
    if how == SET:
        return new
    if how in (MAX, MIN):
        pick = sa.func.max if conn.dialect.name == "sqlite" else sa.func.greatest
        if how == MIN:
            pick = sa.func.min if conn.dialect.name == "sqlite" else sa.func.least
        return sa.func.coalesce(pick(stored, new), stored, new)
    if how == KEEP:
        return stored
    raise ValueError(f"unknown update {how!r}")


# -- PostgreSQL --------------------------------------------------------------------------
def _schema(conn: sa.Connection, table: sa.Table) -> str | None:
    """The table's schema as this connection sees it: SQLAlchemy's schema_translate_map
    applies to our own statements too (a blue/green rebuild writes a shadow schema)."""
    translate = conn.get_execution_options().get("schema_translate_map") or {}
    return translate.get(table.schema, table.schema)  # type: ignore[no-any-return]


def _qualified(table: sa.Table, schema: str | None) -> str:
    return f'"{schema}"."{table.name}"' if schema else f'"{table.name}"'


def _pg_type(column: sa.Column[Any]) -> str:
    if isinstance(column.type, sa.JSON):
        return "text"  # sent as JSON text, cast per row
    return str(column.type.compile(dialect=postgresql.dialect()))


@cache
def _pg_statement(
    table: sa.Table,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[tuple[str, str], ...],
    schema: str | None,
    *,
    returning: bool = False,
) -> str:
    name = _qualified(table, schema)
    values = ", ".join(_pg_value(table, c) for c in columns)
    keys = _names(key)
    sql = (
        f"INSERT INTO {name} ({_names(columns)}) SELECT {values} "
        f"FROM {_unnest(table, columns, 'u')} ON CONFLICT ({keys}) "
    )
    if update:
        sql += "DO UPDATE SET " + ", ".join(
            _pg_set(name, c, how, f'EXCLUDED."{c}"') for c, how in update
        )
    else:
        sql += "DO NOTHING"
    if returning:
        sql += " RETURNING " + keys
    return sql


@cache
def _pg_select(table: sa.Table, columns: tuple[str, ...], key: str, schema: str | None) -> str:
    array = f"%b::{_pg_type(table.c[key])}[]"
    return f'SELECT {_names(columns)} FROM {_qualified(table, schema)} WHERE "{key}" = ANY({array})'


@cache
def _pg_update(
    table: sa.Table,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[tuple[str, str], ...],
    schema: str | None,
) -> str:
    name = _qualified(table, schema)
    sets = [_pg_set(name, c, how, _pg_value(table, c)) for c, how in update]
    where = " AND ".join(f'{name}."{k}" = u."{k}"' for k in key)
    return f"UPDATE {name} SET {', '.join(sets)} FROM {_unnest(table, columns, 'u')} WHERE {where}"


@cache
def _pg_counting(
    table: sa.Table,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[tuple[str, str], ...],
    count: str,
    children: sa.Table,
    child_columns: tuple[str, ...],
    schema: str | None,
    child_schema: str | None,
    create: bool,
) -> str:
    """write_counting_new's statement: the child insert as a CTE, its new keys counted,
    joined to the rows (parameters: the child arrays, then the rows' arrays)."""
    keys, cnames, names = _names(key), _names(child_columns), _names(columns)
    name = _qualified(table, schema)
    joined = " AND ".join(f'n."{k}" = u."{k}"' for k in key)
    sql = (
        f"WITH new AS (INSERT INTO {_qualified(children, child_schema)} ({cnames}) "
        f"SELECT {cnames} FROM {_unnest(children, child_columns, 'c')} "
        f"ON CONFLICT ({cnames}) DO NOTHING RETURNING {keys}), "
        f"n AS (SELECT {keys}, count(*) AS n FROM new GROUP BY {keys}) "
    )
    source = f"{_unnest(table, columns, 'u')} LEFT JOIN n ON {joined}"
    if create:
        values = ", ".join(_pg_value(table, c) for c in columns)
        sets = [_pg_set(name, c, how, f'EXCLUDED."{c}"') for c, how in update]
        sets.append(f'"{count}" = {name}."{count}" + EXCLUDED."{count}"')
        return sql + (
            f'INSERT INTO {name} ({names}, "{count}") SELECT {values}, coalesce(n.n, 0) '
            f"FROM {source} ON CONFLICT ({keys}) DO UPDATE SET {', '.join(sets)}"
        )
    sets = [_pg_set(name, c, how, _pg_value(table, c)) for c, how in update]
    sets.append(f'"{count}" = {name}."{count}" + coalesce(n.n, 0)')
    where = " AND ".join(f'{name}."{k}" = u."{k}"' for k in key)
    return sql + f"UPDATE {name} SET {', '.join(sets)} FROM {source} WHERE {where}"


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _unnest(table: sa.Table, columns: Sequence[str], alias: str) -> str:
    """The rows as one parameter per column (binary arrays: 6x faster than text), unnested
    as `alias` with the columns' names."""
    arrays = ", ".join(f"%b::{_pg_type(table.c[c])}[]" for c in columns)
    return f"unnest({arrays}) AS {alias}({_names(columns)})"


def _pg_value(table: sa.Table, column: str) -> str:
    """A column of the unnest alias `u`, JSON text cast back to its type."""
    if isinstance(table.c[column].type, sa.JSON):
        return f'u."{column}"::{table.c[column].type.compile(dialect=postgresql.dialect())}'
    return f'u."{column}"'


def _pg_set(name: str, column: str, how: str, new: str) -> str:
    """`"column" = ` the stored value (of table `name`) and `new` combined as `how` says."""
    stored = f'{name}."{column}"'
    return (
        f'"{column}" = '
        + {
            ADD: f"{stored} + {new}",
            ADD_MS: f"(round({stored} * 1000) + round({new} * 1000)) / 1000.0::float8",
            SET: new,
            MAX: f"coalesce(greatest({stored}, {new}), {stored}, {new})",
            MIN: f"coalesce(least({stored}, {new}), {stored}, {new})",
            KEEP: stored,
        }[how]
    )


def _columns(table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any]:
    """One parameter per column: uuid, integer, float and boolean columns already in
    PostgreSQL's binary array format (`_encoded`), others as lists for psycopg."""
    arrays: list[Any] = [list(values) for values in zip(*rows, strict=True)]
    for i, c in enumerate(columns):
        kind = table.c[c].type
        if isinstance(kind, sa.JSON):
            arrays[i] = [None if v is None else orjson.dumps(v).decode() for v in arrays[i]]
        elif isinstance(kind, sa.Float):  # one type per array: 3 and 2.5 both as floats
            arrays[i] = _encoded(_Float8Array, [None if v is None else float(v) for v in arrays[i]])
        else:
            arrays[i] = _encoded(_ARRAY_OF.get(type(kind)), arrays[i])
    return arrays


# -- binary arrays -------------------------------------------------------------------------
# psycopg adapts a list element by element in Python (about 0.25-0.35 us each: a tenth of
# a core rebuild's CPU went there). The columns of read models are mostly uuids and
# numbers, whose binary array form (array_send: a header, then each element's length and
# bytes) is built here in one pass: numpy for numbers, one join for uuids. Anything else,
# or any NULL, goes to psycopg as before. tests/integration/test_bulk_upsert.py writes
# the same rows both ways.
_HEADER = struct.Struct("!iIIii")  # dimensions, flags (no NULLs), element oid, length, lower bound
_UUID_LENGTH = struct.pack("!i", 16)


class _Binary:
    """A column's values as a PostgreSQL binary array of `element` (type oid)."""

    __slots__ = ("data",)
    oid = element = 0

    def __init__(self, data: bytes) -> None:
        self.data = data

    @classmethod
    def encode(cls, values: list[Any]) -> bytes | None:
        """The elements (each its length and bytes), or None when `values` are not all
        of this kind."""
        raise NotImplementedError


class _UuidArray(_Binary):
    __slots__ = ()
    oid, element = 2951, 2950

    @classmethod
    def encode(cls, values: list[Any]) -> bytes | None:
        try:  # a None or a text has no .int
            return _UUID_LENGTH + _UUID_LENGTH.join([v.int.to_bytes(16, "big") for v in values])
        except AttributeError:
            return None


class _Int8Array(_Binary):
    __slots__ = ()
    oid, element = 1016, 20
    kinds = "i"  # numpy's kind of the values' array: int64 (no float, None, uint64)
    layout = np.dtype([("length", ">i4"), ("value", ">i8")])
    size = 8

    @classmethod
    def encode(cls, values: list[Any]) -> bytes | None:
        try:
            found = np.array(values)
        except OverflowError:  # beyond 64 bits: psycopg sends numeric
            return None
        if found.dtype.kind not in cls.kinds or found.ndim != 1:
            return None
        out = np.empty(len(values), dtype=cls.layout)
        out["length"] = cls.size
        out["value"] = found
        return out.tobytes()


class _Float8Array(_Int8Array):
    __slots__ = ()
    oid, element = 1022, 701
    kinds = "f"
    layout = np.dtype([("length", ">i4"), ("value", ">f8")])


class _BoolArray(_Int8Array):
    __slots__ = ()
    oid, element = 1000, 16
    kinds = "b"
    layout = np.dtype([("length", ">i4"), ("value", "?")])
    size = 1


_ARRAY_OF: dict[type, type[_Binary]] = {
    sa.Uuid: _UuidArray, sa.Integer: _Int8Array, sa.BigInteger: _Int8Array,
    sa.SmallInteger: _Int8Array, sa.Boolean: _BoolArray,
}  # fmt: skip


def _encoded(kind: type[_Binary] | None, values: list[Any]) -> Any:
    """`values` as a `kind` binary array, or the list itself when they are not all of
    that kind (a float in an integer column, a NULL, no values)."""
    if kind is None or not values:
        return values
    body = kind.encode(values)
    if body is None:
        return values
    return kind(_HEADER.pack(1, 0, kind.element, len(values), 1) + body)


def _dumper(kind: type[_Binary]) -> type[Dumper]:
    class BinaryArrayDumper(Dumper):
        format = Format.BINARY
        oid = kind.oid

        def dump(self, obj: _Binary) -> bytes:
            return obj.data

    return BinaryArrayDumper


_DUMPERS = {kind: _dumper(kind) for kind in (_UuidArray, _Int8Array, _Float8Array, _BoolArray)}
_REGISTERED: "weakref.WeakSet[psycopg.Connection[Any]]" = weakref.WeakSet()


def _cursor(conn: sa.Connection) -> Any:
    """A cursor of the connection's psycopg connection, which knows the binary arrays."""
    driver = conn.connection.driver_connection
    if driver not in _REGISTERED:
        for kind, dumper in _DUMPERS.items():
            driver.adapters.register_dumper(kind, dumper)  # type: ignore[union-attr]
        _REGISTERED.add(driver)  # type: ignore[arg-type]
    return driver.cursor()  # type: ignore[union-attr]
