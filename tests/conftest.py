"""Fixtures shared by every suite: event store URLs per backend and containers on them.

pytest puts tests/ on sys.path for this conftest (rootdir-relative, no tests/__init__.py),
so helpers import as `support.*`.
"""

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import artifacts
from support.artifacts import pytest_runtest_makereport  # noqa: F401 (the hook, see there)
from support.auth import ENV as AUTH_ENV
from support.figures import FIGURES
from support.kafka import kafka_broker
from support.pgserver import PostgresServer, start_session_server

from adapters.bootstrap import Container, bootstrap
from adapters.settings import Settings

ContainerFactory = Callable[..., Container]

# Every Settings() built by a test knows the development admin key (REELPULSE_DEV_API_KEY),
# so in-process apps accept support.auth.HEADERS just like servers from start_server.
for _name, _value in AUTH_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """Started on first use only, so runs without PostgreSQL tests never start it."""
    server = start_session_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka-protocol broker (Tansu, or REELPULSE_TEST_KAFKA_BOOTSTRAP), started on first use."""
    with kafka_broker() as bootstrap_servers:
        yield bootstrap_servers


@pytest.fixture
def kafka_prefix() -> str:
    """A topic prefix of this test's own, so tests sharing one broker never meet."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test."""
    with pg_server.fresh_database() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty event store on each backend in turn."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def container_factory() -> Iterator[ContainerFactory]:
    """bootstrap() on a URL; every container built is closed when the test ends."""
    containers: list[Container] = []

    def build(database_url: str, **kwargs: Any) -> Container:
        container = bootstrap(Settings(database_url=database_url), **kwargs)
        containers.append(container)
        return container

    yield build
    for container in reversed(containers):
        container.close()


# -- figures counted by tests (support.figures), also across pytest-xdist workers ---------
def pytest_sessionfinish(session: pytest.Session) -> None:
    artifacts.pytest_sessionfinish(session)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the figures to the controller
        workeroutput["figures"] = dict(FIGURES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:  # xdist controller: add them up
    FIGURES.update(getattr(node, "workeroutput", {}).get("figures", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
        terminalreporter.section(f"fuzz figures (HYPOTHESIS_PROFILE={profile})")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")
