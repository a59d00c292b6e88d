"""`adapters/readmodel/bulk.py` writes the same rows on SQLite and PostgreSQL.

Every kind of update (add, set, max, min, keep, insert-only) against a table with the
column types read models use (uuid, integers, floats, text, timestamps, JSON), checked
row by row against what the rules say.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa

from adapters.readmodel.bulk import (
    ADD,
    KEEP,
    MAX,
    MIN,
    SET,
    insert_returning_new,
    select_in,
    update_existing,
    upsert,
    write_counting_new,
)
from adapters.readmodel.db import create_read_engine

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
metadata = sa.MetaData()
things = sa.Table(
    "bulk_things",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("label", sa.Text, nullable=True),
    sa.Column("first_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("note", sa.String(32), nullable=True),
)
parts = sa.Table(  # children of things: (id, kind) names the thing
    "bulk_parts",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("part", sa.Uuid, primary_key=True),
)
numbers = sa.Table(  # the column types bulk sends as binary arrays, NULLs included
    "bulk_numbers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("small", sa.Integer, nullable=True),
    sa.Column("big", sa.BigInteger, nullable=True),
    sa.Column("ratio", sa.Float, nullable=True),
    sa.Column("flag", sa.Boolean, nullable=True),
    sa.Column("other", sa.Uuid, nullable=True),
)
COLUMNS = ("id", "kind", "count", "score", "label", "first_at", "last_at", "payload", "note")
UPDATE = {"count": ADD, "score": SET, "label": SET, "first_at": MIN, "last_at": MAX, "note": KEEP}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'read.db'}"
        engine = create_read_engine(url, writer=True)
        metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    server = request.getfixturevalue("pg_server")
    with server.fresh_database() as url:
        engine = create_read_engine("postgresql+psycopg://" + url.split("://", 1)[1], writer=True)
        metadata.create_all(engine)
        yield engine
        engine.dispose()


def rows_of(engine: sa.Engine) -> dict[tuple[UUID, str], tuple]:
    with engine.connect() as conn:
        out = {}
        for r in conn.execute(sa.select(things)):
            first = (
                r.first_at.replace(tzinfo=UTC)
                if r.first_at and not r.first_at.tzinfo
                else r.first_at
            )
            last = (
                r.last_at.replace(tzinfo=UTC) if r.last_at and not r.last_at.tzinfo else r.last_at
            )
            out[(r.id, r.kind)] = (r.count, r.score, r.label, first, last, r.payload, r.note)
        return out


def test_upserts_combine_stored_and_new_values_as_declared(engine):
    a, b, c = UUID(int=1), UUID(int=2), UUID(int=3)
    first = [
        (a, "video", 3, 1.5, "one", T0, T0, {"tags": ["x"]}, "kept"),
        (b, "video", 1, 2, None, None, T0, None, None),
    ]
    second = [
        (a, "video", 2, 0.25, "uno", T0 - timedelta(hours=1), T0 + timedelta(hours=1),
         {"tags": []}, "ignored"),
        (b, "video", 4, 7, "two", T0, None, [1, 2], "ignored"),
        (c, "sound", 1, 3, "three", T0, T0, "plain", "new"),
    ]  # fmt: skip
    with engine.begin() as conn:
        upsert(conn, things, COLUMNS, first, key=("id", "kind"), update=UPDATE)
    with engine.begin() as conn:
        upsert(conn, things, COLUMNS, second, key=("id", "kind"), update=UPDATE)

    assert rows_of(engine) == {
        (a, "video"): (5, 0.25, "uno", T0 - timedelta(hours=1), T0 + timedelta(hours=1),
                       {"tags": ["x"]}, "kept"),
        (b, "video"): (5, 7.0, "two", T0, T0, None, None),
        (c, "sound"): (1, 3.0, "three", T0, T0, "plain", "new"),
    }  # fmt: skip


def test_without_updates_existing_rows_are_left_alone_and_new_keys_reported(engine):
    a, b = UUID(int=1), UUID(int=2)
    row = (a, "video", 1, 1.0, "old", T0, T0, None, None)
    with engine.begin() as conn:
        upsert(conn, things, COLUMNS, [row], key=("id", "kind"))
    with engine.begin() as conn:
        upsert(conn, things, COLUMNS, [(a, "video", 9, 9.0, "new", T0, T0, None, None)],
               key=("id", "kind"))  # fmt: skip
        new = insert_returning_new(
            conn, things, COLUMNS,
            [(a, "video", 5, 5.0, "x", T0, T0, None, None),
             (b, "video", 5, 5.0, "x", T0, T0, None, None)],
            key=("id", "kind"),
        )  # fmt: skip

    assert new == [(b, "video")]
    assert rows_of(engine)[(a, "video")][:3] == (1, 1.0, "old")


def test_nothing_to_write_is_no_statement(engine):
    with engine.begin() as conn:
        upsert(conn, things, COLUMNS, [], key=("id", "kind"), update=UPDATE)
        assert insert_returning_new(conn, things, COLUMNS, [], key=("id", "kind")) == []
    assert rows_of(engine) == {}


def test_updates_change_only_stored_rows(engine):
    a, b = UUID(int=1), UUID(int=2)
    with engine.begin() as conn:
        upsert(conn, things, COLUMNS, [(a, "video", 1, 1.0, "old", T0, T0, None, None)],
               key=("id", "kind"))  # fmt: skip
    with engine.begin() as conn:
        update_existing(
            conn, things, ("id", "kind", "count", "label", "last_at", "payload"),
            [(a, "video", 4, "new", T0 + timedelta(hours=1), {"k": 1}),
             (b, "video", 9, "ghost", T0, None)],
            key=("id", "kind"),
            update={"count": ADD, "label": SET, "last_at": MAX, "payload": SET},
        )  # fmt: skip

    assert rows_of(engine) == {
        (a, "video"): (5, 1.0, "new", T0, T0 + timedelta(hours=1), {"k": 1}, None)
    }


@pytest.mark.postgres
def test_a_translated_schema_is_written_not_the_default_one(pg_server):
    with pg_server.fresh_database() as url:
        engine = create_read_engine("postgresql+psycopg://" + url.split("://", 1)[1])
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA shadow_x")
        metadata.create_all(engine)
        shadow = engine.execution_options(schema_translate_map={None: "shadow_x"})
        metadata.create_all(shadow)
        row = (UUID(int=1), "video", 1, 1.0, None, T0, T0, None, None)
        with shadow.begin() as conn:
            upsert(conn, things, COLUMNS, [row], key=("id", "kind"), update=UPDATE)
            update_existing(conn, things, ("id", "kind", "count"), [(UUID(int=1), "video", 2)],
                            key=("id", "kind"), update={"count": ADD})  # fmt: skip
            insert_returning_new(conn, things, COLUMNS, [row], key=("id", "kind"))

        assert rows_of(engine) == {}
        assert rows_of(shadow)[(UUID(int=1), "video")][0] == 3
        engine.dispose()


def test_select_in_reads_the_rows_named(engine):
    rows = [(UUID(int=i), "video", i, float(i), None, T0, T0, None, None) for i in range(1, 6)]
    with engine.begin() as conn:
        upsert(conn, things, COLUMNS, rows, key=("id", "kind"))
        got = select_in(
            conn, things, ("id", "count"), "id", [UUID(int=2), UUID(int=4), UUID(int=9)]
        )
        assert select_in(conn, things, ("id",), "id", []) == []
    assert sorted(got) == [(UUID(int=2), 2), (UUID(int=4), 4)]


@pytest.mark.parametrize("create", [True, False], ids=["upsert", "update"])
def test_counting_new_children_adds_only_the_new_ones(engine, create):
    # Given two things, one with a stored part
    a, b, c = UUID(int=1), UUID(int=2), UUID(int=3)
    p1, p2, p3 = UUID(int=11), UUID(int=12), UUID(int=13)
    with engine.begin() as conn:
        upsert(conn, things, COLUMNS, [(a, "video", 1, 1.0, "a", T0, T0, None, None),
                                       (b, "video", 0, 1.0, "b", T0, T0, None, None)],
               key=("id", "kind"))  # fmt: skip
        upsert(conn, parts, ("id", "kind", "part"), [(a, "video", p1)], key=("id", "kind", "part"))

    # When a batch writes parts (one stored, two new for a, one new for c) and its rows
    with engine.begin() as conn:
        write_counting_new(
            conn, things, ("id", "kind", "score", "last_at", "payload"),
            [(a, "video", 2.5, T0 + timedelta(hours=1), {"k": [1]}),
             (b, "video", 3.5, T0 + timedelta(hours=2), None),
             (c, "video", 4.5, T0, "x")],
            key=("id", "kind"), update={"score": SET, "last_at": MAX, "payload": SET},
            count="count", children=parts, child_columns=("id", "kind", "part"),
            child_rows=[(a, "video", p1), (a, "video", p2), (a, "video", p3), (c, "video", p1)],
            create=create,
        )  # fmt: skip

    # Then each row's count grew by its new parts only; c is written only by an upsert
    # (its part is stored either way: the parts are inserted first)
    expected = {
        (a, "video"): (3, 2.5, "a", T0, T0 + timedelta(hours=1), {"k": [1]}, None),
        (b, "video"): (0, 3.5, "b", T0, T0 + timedelta(hours=2), None, None),
    }
    if create:
        expected[(c, "video")] = (1, 4.5, None, None, T0, "x", None)
    assert rows_of(engine) == expected
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(parts)).scalar() == 4


def test_numbers_uuids_and_nulls_are_written_as_given(engine):
    # Columns whose values bulk encodes itself on PostgreSQL (uuid, integer, float,
    # boolean) unless one of them is not of the column's kind (None, a float in an
    # integer column): each array either way, read back as written.
    ids = [UUID(int=i) for i in range(1, 7)]
    batches = [
        [(ids[0], 1, 2**63 - 1, 0.5, True, ids[1]), (ids[1], -7, -(2**63), 3.0, False, ids[0])],
        [(ids[2], None, 5, None, None, None), (ids[3], 2, None, 1.25, True, None)],
        [(ids[4], 3, 4, 2, False, ids[5]), (ids[5], 0, 0, -0.0, True, ids[4])],  # 2: an int
    ]
    columns = ("id", "small", "big", "ratio", "flag", "other")
    with engine.begin() as conn:
        for rows in batches:
            upsert(conn, numbers, columns, rows, key=("id",))
    with engine.connect() as conn:
        got = {r[0]: tuple(r) for r in conn.execute(sa.select(numbers))}
    expected = [(*r[:3], None if r[3] is None else float(r[3]), *r[4:]) for b in batches for r in b]
    assert got == {r[0]: r for r in expected}
