"""Checkpoint states compressed with lz4 on PostgreSQL (migration 0008, and the tables a
rebuild's shadow schema gets from `create_all`); the states read back as written."""

import pytest
import sqlalchemy as sa

from adapters.readmodel.db import upgrade
from adapters.readmodel.tables import lz4_supported, metadata, projection_checkpoints

pytestmark = pytest.mark.postgres

COMPRESSION = """
SELECT a.attcompression FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = 'projection_checkpoints' AND a.attname = 'state'
"""


def test_migrated_and_created_checkpoint_tables_compress_states_with_lz4(pg_url: str) -> None:
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            if not lz4_supported(conn):
                pytest.skip("this PostgreSQL build has no lz4")
        upgrade(engine)
        state = bytes(range(256)) * 4000  # about 1 MB, compressible
        with engine.begin() as conn:
            conn.execute(projection_checkpoints.insert(), {"name": "m", "position": 1,
                                                           "state": state})  # fmt: skip
        # as a rebuild creates its shadow tables: the same Table, the schema translated
        shadow_engine = engine.execution_options(schema_translate_map={None: "shadow"})
        with shadow_engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA shadow")
            metadata.create_all(conn, tables=[projection_checkpoints])
            conn.execute(projection_checkpoints.insert(), {"name": "m", "position": 1,
                                                           "state": state})  # fmt: skip
        shadow = projection_checkpoints.to_metadata(sa.MetaData(), schema="shadow")
        with engine.connect() as conn:
            for schema, table in (("public", projection_checkpoints), ("shadow", shadow)):
                kind = conn.exec_driver_sql(COMPRESSION, (schema,)).scalar()
                assert kind == "l", schema  # lz4
                method = conn.execute(
                    sa.select(sa.func.pg_column_compression(table.c.state))
                ).scalar()
                assert method == "lz4", schema
                assert conn.execute(sa.select(table.c.state)).scalar() == state
    finally:
        engine.dispose()
