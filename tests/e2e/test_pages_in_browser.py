"""Every page ReelPulse serves, in headless Chromium cut off from the internet.

Each page is opened in a browser context whose every request to a host other than
127.0.0.1/localhost is aborted and recorded: a test fails if a page even tried one (a CDN
script, a font, a logo), if it logged an error or a warning, or if a request failed. Then
the page must work: Swagger UI lists the routes, ReDoc renders, the query page runs a
query with the API key the dashboard stored, the dashboard shows data, and what the
dashboard says is true now (projection lag and ingest rate after traffic stops).

Against a real `reelpulse serve` over a store the demo workload was loaded into (with
`reelpulse demo`, so that no generated traffic runs while the lag test waits for quiet).
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from support.auth import DEV_API_KEY, HEADERS

from e2e.servers import free_port, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags Chromium needs on a closed network (no background fetches of its own).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
WAIT_MS = 30_000
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test installs it)",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'store.db'}"
    subprocess.run(
        [sys.executable, "-m", "adapters.cli", "demo"],
        env={**os.environ, "REELPULSE_DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = free_port()
    proc = start_server(database_url, port, timeout=120)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Visit:
    """A page and everything it tried that a page working offline must not."""

    page: Any
    outside: list[str] = field(default_factory=list)  # requests to other hosts (aborted)
    console: list[str] = field(default_factory=list)  # errors and warnings it logged
    failed: list[str] = field(default_factory=list)  # requests that failed or got >= 400

    def watch(self) -> None:
        def console(message: Any) -> None:
            if message.type in ("error", "warning"):
                self.console.append(f"{message.type}: {message.text}")

        def websocket(ws: Any) -> None:
            if not _local(ws.url):
                self.outside.append(ws.url)

        def failed(request: Any) -> None:
            if _local(request.url):  # (the others are in `outside`)
                self.failed.append(f"{request.url}: {request.failure}")

        def response(response: Any) -> None:
            if response.status >= 400:
                self.failed.append(f"{response.url}: {response.status}")

        self.page.on("console", console)
        self.page.on("pageerror", lambda error: self.console.append(f"error: {error}"))
        self.page.on("websocket", websocket)
        self.page.on("requestfailed", failed)
        self.page.on("response", response)

    def assert_clean(self, *, warnings: bool = True) -> None:
        console = [m for m in self.console if warnings or not m.startswith("warning")]
        assert (self.outside, console, self.failed) == ([], [], [])


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS


@pytest.fixture
def open_page(browser: Any, server: str) -> Iterator[Callable[..., Visit]]:
    contexts = []

    def open_page(path: str, *, stored_key: str | None = DEV_API_KEY) -> Visit:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        page = context.new_page()
        visit = Visit(page)

        def route(route: Any) -> None:
            if _local(route.request.url):
                route.continue_()
            else:
                visit.outside.append(route.request.url)
                route.abort()

        context.route("**/*", route)
        visit.watch()
        if stored_key is not None:  # the key a user typed once into the dashboard's form
            context.add_init_script(f"localStorage.setItem('reelpulse.apiKey', '{stored_key}')")
        page.goto(server + path)
        return visit

    yield open_page
    for context in contexts:
        context.close()


def test_swagger_ui_lists_the_routes_offline(open_page: Callable[..., Visit]) -> None:
    from playwright.sync_api import expect

    visit = open_page("/docs")
    operation = visit.page.locator(".opblock-post .opblock-summary-path[data-path='/v1/videos']")
    expect(operation).to_be_visible(timeout=WAIT_MS)
    assert visit.page.locator(".opblock").count() > 20
    visit.page.wait_for_load_state("networkidle")
    visit.assert_clean()


def test_redoc_renders_offline(open_page: Callable[..., Visit]) -> None:
    from playwright.sync_api import expect

    visit = open_page("/redoc")
    expect(visit.page.locator("h1").first).to_contain_text("ReelPulse", timeout=WAIT_MS)
    expect(visit.page.get_by_text("/v1/videos").first).to_be_attached(timeout=WAIT_MS)
    visit.page.wait_for_load_state("networkidle")
    # ReDoc's sampler warns about the OpenAPI document's shape (allOf of an array): the
    # document's concern, not this page's; errors and requests still count.
    visit.assert_clean(warnings=False)


def test_query_page_runs_a_query_with_the_key_the_dashboard_stored(
    open_page: Callable[..., Visit],
) -> None:
    from playwright.sync_api import expect

    visit = open_page("/graphql")
    page = visit.page
    expect(page.locator("#key")).to_have_value(DEV_API_KEY)
    expect(page.locator("#key-help")).to_contain_text("reelpulse keys create --role admin")
    expect(page.locator("#key-help")).to_be_visible()
    page.locator("#query").fill("{ summary { videos headPosition } }")
    page.locator("#run").click()
    expect(page.locator("#status")).to_contain_text("200", timeout=WAIT_MS)
    summary = json.loads(page.locator("#result").inner_text())["data"]["summary"]
    assert summary["videos"] > 0 and summary["headPosition"] > 0
    visit.assert_clean()


def test_query_page_without_a_key_says_how_to_get_one(open_page: Callable[..., Visit]) -> None:
    from playwright.sync_api import expect

    visit = open_page("/graphql", stored_key=None)
    page = visit.page
    expect(page.locator("#key")).to_have_value("")
    page.locator("#run").click()
    expect(page.locator("#status")).to_contain_text("401", timeout=WAIT_MS)
    expect(page.locator("#status")).to_contain_text("reelpulse keys create --role admin")
    assert visit.outside == []  # (the 401 itself is in the console, as it should be)


def test_dashboard_renders_data_offline_with_a_clean_console(
    open_page: Callable[..., Visit], server: str
) -> None:
    visit = open_page("/dashboard")
    page = visit.page
    page.wait_for_selector("#trend-video li", timeout=WAIT_MS)
    page.wait_for_selector("#queue tbody tr[data-video]", timeout=WAIT_MS)
    assert int(page.locator("[data-k=videos]").inner_text().replace(",", "")) > 0
    page.wait_for_load_state("networkidle")
    visit.assert_clean()


def _percent(share: float) -> str:
    """A share as the dashboard writes it (Intl, at most one decimal)."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


def test_sentiment_panel_shows_what_the_api_says(
    open_page: Callable[..., Visit], server: str
) -> None:
    query = """{ platformSentiment { scored positiveShare negativeShare }
      sentimentRanking(kind: HASHTAG, first: 5) { key }
      turningNegativeVideos(first: 5) { videoId } }"""
    r = httpx.post(f"{server}/graphql", json={"query": query}, headers=HEADERS)
    data = r.json()["data"]
    mood = data["platformSentiment"]
    assert mood["scored"] > 0 and data["sentimentRanking"] and data["turningNegativeVideos"]

    visit = open_page("/dashboard")
    page = visit.page
    page.wait_for_selector("#sentiment-mood .bar", timeout=WAIT_MS)
    line = page.locator("#sentiment-mood [data-k=mood]").inner_text()
    assert line.startswith(f"{_percent(mood['positiveShare'])} positive · "
                           f"{_percent(mood['negativeShare'])} negative")  # fmt: skip
    tags = page.locator("#sentiment-hashtag li .key").all_inner_texts()
    assert tags == ["#" + h["key"] for h in data["sentimentRanking"]]
    turning = page.locator("#sentiment-turning li[data-key]")
    ids = [turning.nth(i).get_attribute("data-key") for i in range(turning.count())]
    assert ids == [v["videoId"] for v in data["turningNegativeVideos"]]
    turning.first.click()  # the video's detail says how its comments read
    page.wait_for_selector("#detail-sentiment", timeout=WAIT_MS)
    assert page.locator("#detail-sentiment").inner_text().startswith("Comments, 24 h:")
    visit.assert_clean()


@pytest.mark.parametrize("path", ["/favicon.ico", "/static/favicon.ico"])
def test_the_favicon_browsers_ask_for_is_served(server: str, path: str) -> None:
    # Headless Chromium does not report its own favicon request to the page, so this is
    # the request a browser's tab makes (it was a 404 in the console).
    icon = httpx.get(server + path)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/")


def test_moderation_queue_shows_what_it_is_sorted_by(
    open_page: Callable[..., Visit], server: str
) -> None:
    visit = open_page("/dashboard")
    page = visit.page
    page.wait_for_selector("#queue tbody tr[data-video]", timeout=WAIT_MS)
    headers = page.locator("#queue thead th").all_inner_texts()
    sorted_by = page.locator("#queue thead th[aria-sort=descending]")
    assert sorted_by.count() == 1, f"no column says the queue is sorted by it: {headers}"
    column = headers.index(sorted_by.inner_text())
    shown = [
        float(row.locator("td").nth(column).inner_text())
        for row in page.locator("#queue tbody tr[data-video]").all()
    ]
    query = "{ moderationQueue(first: 10) { edges { node { effectivePriority } } } }"
    answer = httpx.post(f"{server}/graphql", json={"query": query}, headers=HEADERS).json()
    order = [e["node"]["effectivePriority"] for e in answer["data"]["moderationQueue"]["edges"]]
    assert shown == sorted(shown, reverse=True)
    assert shown == pytest.approx(order[: len(shown)], abs=0.006)  # shown with 2 decimals
    visit.assert_clean()


def test_moderation_queue_video_cells_are_whole_at_1400_px(open_page: Callable[..., Visit]) -> None:
    visit = open_page("/dashboard")  # a 1400x900 viewport
    page = visit.page
    page.wait_for_selector("#queue tbody tr[data-video]", timeout=WAIT_MS)
    cells = page.evaluate(
        """() => {
        const head = [...document.querySelectorAll('#queue thead th')].map(th => th.textContent);
        const i = head.indexOf('Video');
        const panel = document.querySelector('#queue').closest('.panel').getBoundingClientRect();
        return [...document.querySelectorAll('#queue tbody tr[data-video]')].map(tr => {
          const td = tr.children[i], box = td.getBoundingClientRect();
          return {text: td.textContent, scroll: td.scrollWidth, client: td.clientWidth,
                  right: box.right, panelRight: panel.right, id: tr.dataset.video};
        });
    }"""
    )
    assert cells
    for cell in cells:
        assert cell["scroll"] <= cell["client"], cell  # the cell's text is not cut
        assert cell["right"] <= cell["panelRight"], cell  # nor is the cell, by its panel
        assert cell["id"][:8] in cell["text"], cell
    visit.assert_clean()


def _record_views(server: str, video_ids: list[str], count: int) -> None:
    with httpx.Client(base_url=server, headers=HEADERS, timeout=10) as client:
        for i in range(count):
            body = {"viewer_id": str(uuid.uuid4()), "watch_seconds": 3.0}
            r = client.post(f"/v1/videos/{video_ids[i % len(video_ids)]}/views", json=body)
            assert r.status_code == 200, r.text


READ_NOW = """() => {
    const lag = document.getElementById('lag').textContent.split(' · ')
        .map(s => s.trim().split(/\\s+/)).filter(p => p.length === 2);
    return {lag: Object.fromEntries(lag.map(([n, v]) => [n, Number(v.replace(/,/g, ''))])),
            rate: Number(document.getElementById('ingest-rate').textContent.replace(/,/g, ''))};
}"""


def test_lag_and_ingest_rate_say_what_is_true_now_after_traffic_stops(
    open_page: Callable[..., Visit], server: str
) -> None:
    query = "{ videos(first: 5) { edges { node { id } } } }"
    answer = httpx.post(f"{server}/graphql", json={"query": query}, headers=HEADERS).json()
    videos = [e["node"]["id"] for e in answer["data"]["videos"]["edges"]]
    projections = httpx.get(f"{server}/readyz").json()["checks"]["projections"]["lag"]

    visit = open_page("/dashboard")
    page = visit.page
    page.wait_for_function(
        "n => document.getElementById('lag').textContent.split(' · ').length === n",
        arg=len(projections),
        timeout=WAIT_MS,
    )
    # Traffic at a steady pace, as a live stream sends it, for at least 3 s and until the
    # page has shown an ingest rate (bounded: 200 events).
    started = time.monotonic()
    for _ in range(200):
        _record_views(server, videos, 1)
        page.wait_for_timeout(50)  # the pace of the traffic, not a wait for a result
        if time.monotonic() - started > 3 and page.evaluate(READ_NOW)["rate"] > 0:
            break
    else:
        pytest.fail("the page never showed an ingest rate while events arrived")
    stopped = time.monotonic()

    # Traffic stopped: the server goes quiet, then the page must say so (bounded wait).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = httpx.get(f"{server}/readyz").json()["checks"]["projections"]["lag"]
        if not any(ready.values()):
            break
        page.wait_for_timeout(200)
    assert not any(ready.values()), f"the server itself never caught up: {ready}"
    try:
        page.wait_for_function(
            f"() => {{ const now = ({READ_NOW})(); return now.rate === 0 && "
            "Object.keys(now.lag).length > 0 && Object.values(now.lag).every(v => v === 0); }",
            timeout=WAIT_MS,
        )
    except Exception:
        now = page.evaluate(READ_NOW)
        waited = time.monotonic() - stopped
        pytest.fail(f"{waited:.0f} s after the last event, /readyz lag 0; the page: {now}")
    assert set(page.evaluate(READ_NOW)["lag"]) == set(projections)
    visit.assert_clean()
