"""Start a real `reelpulse serve` process for end-to-end tests."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from support.artifacts import keep_on_failure
from support.auth import ENV as AUTH_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _register_dev_key(environment: dict[str, str]) -> None:
    """Transitional: until Settings declares `dev_api_key`, store the development key in
    the server's database so that the server accepts it."""
    from adapters.settings import Settings

    key = environment.get("REELPULSE_DEV_API_KEY")
    if not key or "dev_api_key" in Settings.model_fields:
        return
    from adapters.auth.keys import ApiKeyStore
    from adapters.auth.principal import Role
    from adapters.readmodel.db import create_read_engine, read_model_url, upgrade

    engine = create_read_engine(read_model_url(environment["REELPULSE_DATABASE_URL"], None))
    try:
        upgrade(engine)
        ApiKeyStore(engine).register(key, Role.ADMIN, label="development (tests)")
    finally:
        engine.dispose()


def start_server(
    database_url: str, port: int, *args: str, timeout: float = 30, **env: str
) -> subprocess.Popen:
    environment = {
        **os.environ,
        "REELPULSE_DATABASE_URL": database_url,
        "REELPULSE_LOG_LEVEL": "warning",
        **AUTH_ENV,  # the development admin key tests send (tests/support/auth.py)
        **env,
    }
    _register_dev_key(environment)
    # stderr goes to a file, not a pipe: a chatty server must never block on a full pipe.
    log = tempfile.NamedTemporaryFile(prefix="reelpulse-serve-", suffix=".log", delete=False)  # noqa: SIM115 (outlives this function)
    keep_on_failure(log.name)  # deleted after the test unless it fails
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), *args],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    wait_until_serving(port, lambda: proc.poll() is None, log.name, timeout, proc.kill)
    return proc


def wait_until_serving(
    port: int, alive: Callable[[], bool], log: str, timeout: float, kill: Callable[[], None]
) -> None:
    """Poll /healthz until the server answers; a server that exits fails with its log's
    tail, one that is not ready within `timeout` is killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"server exited: {Path(log).read_text()[-4000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)  # the port is not open yet; bounded by the deadline
    kill()
    raise TimeoutError(f"server did not become ready in {timeout:.0f} s")
