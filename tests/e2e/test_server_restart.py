"""Through a real `reelpulse serve` process: an idempotent retry after a server restart."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "REELPULSE_DATABASE_URL": f"sqlite:///{db}",
        "REELPULSE_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)  # waiting for the port to open, bounded by the deadline
    proc.kill()
    raise TimeoutError("server did not become ready in 30 s")


def test_idempotency_key_survives_kill_and_restart(tmp_path):
    db = tmp_path / "store.db"
    port = free_port()
    body = {"handle": "restart", "display_name": "R", "region": "DE"}
    headers = {"Idempotency-Key": "register-restart"}
    proc = start_server(db, port)
    try:
        first = httpx.post(f"http://127.0.0.1:{port}/v1/creators", json=body, headers=headers)
        assert first.status_code == 201
    finally:
        proc.send_signal(signal.SIGKILL)  # no graceful shutdown
        proc.wait(10)

    proc = start_server(db, port)
    try:
        again = httpx.post(f"http://127.0.0.1:{port}/v1/creators", json=body, headers=headers)
        assert again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["replayed"] is True
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["head_position"] == 1
    finally:
        proc.terminate()
        proc.wait(10)
