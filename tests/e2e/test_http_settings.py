"""Settings that shape the HTTP app reach it: the GraphQL response cache's bounds
(REELPULSE_GRAPHQL_CACHE_ENTRIES, REELPULSE_GRAPHQL_CACHE_BYTES) and the server choice."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.bootstrap import bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings


@pytest.mark.parametrize(("entries", "size", "enabled"), [(0, 1024, False), (7, 5000, True)])
def test_graphql_cache_bounds_come_from_the_settings(tmp_path: Path, entries, size, enabled):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.db'}",
                        graphql_cache_entries=entries, graphql_cache_bytes=size)  # fmt: skip
    container = bootstrap(settings)
    try:
        cache = create_app(container, run_background=False).state.graphql_cache
        assert cache.enabled is enabled
        assert cache.store.max_bytes == size
        assert cache.store.max_entries == max(1, entries)
    finally:
        container.close()


def test_defaults_and_bounds(monkeypatch: pytest.MonkeyPatch):
    defaults = Settings(_env_file=None)
    assert (defaults.graphql_cache_entries, defaults.graphql_cache_bytes) == (4096, 64 << 20)
    assert defaults.server == "uvicorn"
    monkeypatch.setenv("REELPULSE_SERVER", "granian")
    assert Settings(_env_file=None).server == "granian"
    for bad in ({"server": "gunicorn"}, {"graphql_cache_entries": -1},
                {"graphql_cache_bytes": 10}):  # fmt: skip
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **bad)
