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

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

# How each update column combines the stored value and the new one.
ADD = "add"  # stored + new (counters)
SET = "set"  # new (last writer wins)
MAX = "max"  # greatest(stored, new), NULLs ignored
MIN = "min"  # least(stored, new), NULLs ignored
KEEP = "keep"  # stored (only written by the insert)


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
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
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
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
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
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, _columns(table, columns, rows), prepare=True)
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(key))
    stmt = stmt.returning(*(table.c[k] for k in key))
    result = conn.execute(stmt, [dict(zip(columns, r, strict=True)) for r in rows])
    return [tuple(r) for r in result]


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
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
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
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params, prepare=True)
        return [tuple(r) for r in cursor]
    finally:
        cursor.close()


def qualified(conn: sa.Connection, table: sa.Table) -> str:
    """The table's quoted name as this connection sees it (schema_translate_map)."""
    return _qualified(table, _schema(conn, table))


def _combine(how: str, stored: Any, new: Any, conn: sa.Connection) -> Any:
    if how == ADD:
        return stored + new
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
    names = ", ".join(f'"{c}"' for c in columns)
    arrays = ", ".join(f"%b::{_pg_type(table.c[c])}[]" for c in columns)  # binary: 6x faster
    values = ", ".join(
        f'u."{c}"::{table.c[c].type.compile(dialect=postgresql.dialect())}'
        if isinstance(table.c[c].type, sa.JSON)
        else f'u."{c}"'
        for c in columns
    )
    keys = ", ".join(f'"{k}"' for k in key)
    sql = (
        f"INSERT INTO {name} ({names}) SELECT {values} FROM unnest({arrays}) AS u({names}) "
        f"ON CONFLICT ({keys}) "
    )
    if update:
        sets = []
        for c, how in update:
            stored, new = f'{name}."{c}"', f'EXCLUDED."{c}"'
            sets.append(f'"{c}" = ' + {
                ADD: f"{stored} + {new}",
                SET: new,
                MAX: f"coalesce(greatest({stored}, {new}), {stored}, {new})",
                MIN: f"coalesce(least({stored}, {new}), {stored}, {new})",
                KEEP: stored,
            }[how])  # fmt: skip
        sql += "DO UPDATE SET " + ", ".join(sets)
    else:
        sql += "DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(f'"{k}"' for k in key)
    return sql


@cache
def _pg_select(table: sa.Table, columns: tuple[str, ...], key: str, schema: str | None) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    array = f"%b::{_pg_type(table.c[key])}[]"
    return f'SELECT {names} FROM {_qualified(table, schema)} WHERE "{key}" = ANY({array})'


@cache
def _pg_update(
    table: sa.Table,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[tuple[str, str], ...],
    schema: str | None,
) -> str:
    name = _qualified(table, schema)
    names = ", ".join(f'"{c}"' for c in columns)
    arrays = ", ".join(f"%b::{_pg_type(table.c[c])}[]" for c in columns)  # binary: 6x faster
    sets = []
    for c, how in update:
        stored, new = f'{name}."{c}"', f'u."{c}"'
        if isinstance(table.c[c].type, sa.JSON):
            new = f"{new}::{table.c[c].type.compile(dialect=postgresql.dialect())}"
        sets.append(f'"{c}" = ' + {
            ADD: f"{stored} + {new}",
            SET: new,
            MAX: f"coalesce(greatest({stored}, {new}), {stored}, {new})",
            MIN: f"coalesce(least({stored}, {new}), {stored}, {new})",
        }[how])  # fmt: skip
    where = " AND ".join(f'{name}."{k}" = u."{k}"' for k in key)
    return f"UPDATE {name} SET {', '.join(sets)} FROM unnest({arrays}) AS u({names}) WHERE {where}"


def _columns(
    table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[list[Any]]:
    arrays = [list(values) for values in zip(*rows, strict=True)]
    for i, c in enumerate(columns):
        kind = table.c[c].type
        if isinstance(kind, sa.JSON):
            arrays[i] = [None if v is None else orjson.dumps(v).decode() for v in arrays[i]]
        elif isinstance(kind, sa.Float):  # one type per array: 3 and 2.5 both as floats
            arrays[i] = [None if v is None else float(v) for v in arrays[i]]
    return arrays
