"""`reelpulse serve` under each HTTP server it offers (REELPULSE_SERVER): the same
answers, and a clean stop on SIGTERM (the container closes, the process exits)."""

import uuid
from pathlib import Path

import httpx
import pytest
from support.auth import HEADERS

from adapters.servers import SERVERS
from e2e.servers import free_port, start_server


@pytest.mark.parametrize("server", SERVERS)
def test_serve_answers_commands_and_stops_on_sigterm(tmp_path: Path, server: str) -> None:
    port = free_port()
    proc = start_server(f"sqlite:///{tmp_path / 'store.db'}", port, timeout=120,
                        REELPULSE_SERVER=server)  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS, timeout=30) as c:
            r = c.post("/v1/creators", json={"handle": "ann", "display_name": "A", "region": "US"})
            assert r.status_code == 201, r.text
            r = c.post("/v1/videos", json={"creator_id": r.json()["id"], "duration_seconds": 9})
            video = r.json()["id"]
            view = {"viewer_id": str(uuid.uuid4()), "watch_seconds": 2}
            r = c.post(f"/v1/videos/{video}/views", json=view, headers={"X-Request-ID": "r-1"})
            assert r.status_code == 200 and r.json()["version"] == 2, r.text
            assert r.headers["x-request-id"] == "r-1"
            assert r.headers["x-consistency-token"] == str(r.json()["position"])
            like = {"type": "like", "viewer_id": view["viewer_id"], "video_id": video}
            r = c.post("/v1/engagement/batch", json={"items": [like]})
            assert r.status_code == 200 and r.json()["recorded"] == 1, r.text
            assert c.get("/v1/videos/nope/views").status_code == 405
            assert c.get("/readyz").status_code in (200, 503)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
