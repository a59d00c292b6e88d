"""Fixtures shared by integration tests that compare two read-model databases."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.readmodel.db import create_read_engine, read_model_url, upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def read_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty read-model databases (A and B) on one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
        return
    pg_url = request.getfixturevalue("pg_url")
    with request.getfixturevalue("pg_server").fresh_database() as other:
        yield read_model_url(pg_url, None), read_model_url(other, None)


@pytest.fixture
def engines() -> Iterator[Callable[[str], sa.Engine]]:
    """Read-model writer engines at the current schema; disposed at the end."""
    made: list[sa.Engine] = []

    def make(url: str) -> sa.Engine:
        engine = create_read_engine(url, pool_size=2, writer=True)
        upgrade(engine)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()
