"""The live dashboard in a real browser (Debian's chromium, driven by Playwright).

Against a `reelpulse serve --demo` process: the trending lists and the moderation queue
render real numbers, a command sent through the REST API shows up on the page without a
reload (subscriptions), and a screenshot is saved to test-artifacts/dashboard.png.
"""

import shutil
from pathlib import Path

import httpx
import pytest
from support.auth import DEV_API_KEY, HEADERS

from e2e.servers import free_port, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test installs it)",
)


def test_dashboard_renders_live_data_and_updates_without_reload(tmp_path):
    from playwright.sync_api import sync_playwright

    port = free_port()
    proc = start_server(f"sqlite:///{tmp_path / 'store.db'}", port, "--demo", timeout=240)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            # the key a user types once into the page's key form, kept in localStorage
            page.add_init_script(f"localStorage.setItem('reelpulse.apiKey', '{DEV_API_KEY}')")
            page.goto(f"{base}/dashboard")
            page.wait_for_selector("#trend-video li", timeout=60_000)
            page.wait_for_selector("#queue tbody tr[data-video]", timeout=60_000)
            first = page.locator("#trend-video li .num").first.inner_text()
            assert first.endswith("views") and int(first.split()[0].replace(",", "")) > 0
            assert page.locator("#trend-hashtag li").count() > 0
            assert page.locator("#queue tbody tr[data-video]").count() > 0
            creators = int(page.locator("[data-k=creators]").inner_text().replace(",", ""))
            assert creators > 0

            r = httpx.post(
                f"{base}/v1/creators",
                json={"handle": "dashboard.test", "display_name": "Dashboard", "region": "US"},
                headers=HEADERS,
            )
            assert r.status_code == 201
            page.wait_for_function(
                "n => Number(document.querySelector('[data-k=creators]').textContent"
                ".replace(/,/g, '')) === n",
                arg=creators + 1,
                timeout=30_000,
            )  # pushed by the summary subscription: no reload

            page.locator("#trend-video li").first.click()
            page.wait_for_selector("#detail-stats .card", timeout=10_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            browser.close()
        assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    finally:
        proc.terminate()
        proc.wait(10)
