"""Fixtures of the end-to-end tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    """The app on a fresh SQLite store, in process, with its lifespan running (the
    projections and the policy follower), and the development admin key on every
    request."""
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        with TestClient(create_app(container), headers=HEADERS) as client:
            yield client, container
    finally:
        container.close()
