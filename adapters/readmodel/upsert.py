"""Dialect-neutral helpers for batched read-model writes (SQLite and PostgreSQL)."""

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.readmodel.tables import rm_model_metrics


def insert_for(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def add_counters(
    conn: sa.Connection,
    table: sa.Table,
    key: str,
    deltas: Mapping[Any, Mapping[str, float]],
    *,
    create: bool,
) -> None:
    """counter += delta for many rows in one statement per column set.

    With create=True missing rows are inserted (upsert); otherwise rows must exist.
    """
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for k, d in deltas.items():
        cols = tuple(sorted(c for c, v in d.items() if v))
        if cols:
            by_columns.setdefault(cols, []).append({key: k, **{c: d[c] for c in cols}})
    for cols, rows in by_columns.items():
        if create:
            stmt = insert_for(conn, table)
            stmt = stmt.on_conflict_do_update(
                index_elements=[key], set_={c: table.c[c] + stmt.excluded[c] for c in cols}
            )
            conn.execute(stmt, rows)
        else:
            params = [{"k": r[key], **{f"d_{c}": r[c] for c in cols}} for r in rows]
            stmt = (
                table.update()
                .where(table.c[key] == sa.bindparam("k"))
                .values({c: table.c[c] + sa.bindparam(f"d_{c}") for c in cols})
            )
            conn.execute(stmt, params)


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert_for(conn, table).on_conflict_do_nothing(), list(rows))


def write_metrics(
    conn: sa.Connection, metrics: Mapping[tuple[str, str], tuple[float, int]]
) -> None:
    """Upsert a batch's model metrics: (model, metric) -> (value, samples)."""
    stmt = insert_for(conn, rm_model_metrics)
    stmt = stmt.on_conflict_do_update(
        index_elements=["model", "metric"],
        set_={"value": stmt.excluded.value, "samples": stmt.excluded.samples},
    )
    rows = [
        {"model": m, "metric": n, "value": v, "samples": k} for (m, n), (v, k) in metrics.items()
    ]
    conn.execute(stmt, rows)
