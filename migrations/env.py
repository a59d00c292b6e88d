"""Alembic environment for ReelPulse read models.

Normally run through `reelpulse db upgrade` (adapters/readmodel/db.py), which passes an
open connection. The `alembic` CLI also works with `-x url=<sqlalchemy url>`.
"""

import sqlalchemy as sa
from alembic import context

from adapters.readmodel.tables import metadata

config = context.config
target_metadata = metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
