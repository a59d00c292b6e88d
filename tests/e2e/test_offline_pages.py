"""Every page ReelPulse serves works offline: no script, style, font or image from another
host (FastAPI's own /docs and /redoc and strawberry's GraphiQL load theirs from CDNs), and
every asset a page names is served by ReelPulse itself."""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings

PAGES = ["/docs", "/redoc", "/graphql", "/dashboard"]
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")
ELSEWHERE = re.compile(r"""(?:https?:)?//(?!www\.w3\.org/)[\w.-]+\.[a-z]{2,}[^"'\s)]*""")


@pytest.fixture
def client(tmp_path: Path):
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", development=True))
    try:
        with TestClient(create_app(container, run_background=False)) as c:
            yield c
    finally:
        container.close()


@pytest.mark.parametrize("path", PAGES)
def test_a_page_and_its_assets_come_from_reelpulse_alone(client: TestClient, path: str) -> None:
    page = client.get(path, headers={"accept": "text/html"})
    assert page.status_code == 200, page.text[:200]
    assert "text/html" in page.headers["content-type"]
    assert ELSEWHERE.findall(page.text) == []
    assets = [a or b for a, b in ASSET.findall(page.text)]
    assert assets, "a page without scripts or styles: the pattern missed them"
    for asset in assets:
        assert asset.startswith("/"), asset
        served = client.get(asset, headers=HEADERS)
        assert served.status_code == 200, asset
        if asset.endswith((".html", ".css")):  # (bundled scripts mention URLs in comments)
            assert ELSEWHERE.findall(served.text) == [], asset


def test_the_graphql_page_queries_the_api(client: TestClient) -> None:
    script = client.get("/static/graphql.js").text
    assert 'fetch("/graphql"' in script
    answer = client.post("/graphql", json={"query": "{ __typename }"}, headers=HEADERS)
    assert answer.json() == {"data": {"__typename": "Query"}}
