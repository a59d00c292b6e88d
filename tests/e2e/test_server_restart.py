"""Through a real `reelpulse serve` process: an idempotent retry after a server restart."""

import signal

import httpx
from support.auth import HEADERS

from e2e.servers import free_port, start_server


def test_idempotency_key_survives_kill_and_restart(tmp_path):
    db = tmp_path / "store.db"
    port = free_port()
    body = {"handle": "restart", "display_name": "R", "region": "DE"}
    headers = {"Idempotency-Key": "register-restart", **HEADERS}
    proc = start_server(f"sqlite:///{db}", port)
    try:
        first = httpx.post(f"http://127.0.0.1:{port}/v1/creators", json=body, headers=headers)
        assert first.status_code == 201
    finally:
        proc.send_signal(signal.SIGKILL)  # no graceful shutdown
        proc.wait(10)

    proc = start_server(f"sqlite:///{db}", port)
    try:
        again = httpx.post(f"http://127.0.0.1:{port}/v1/creators", json=body, headers=headers)
        assert again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["replayed"] is True
        assert (
            httpx.get(f"http://127.0.0.1:{port}/readyz").json()["checks"]["event_store"][
                "head_position"
            ]
            == 2  # the creator and its handle's reservation
        )
    finally:
        proc.terminate()
        proc.wait(10)
