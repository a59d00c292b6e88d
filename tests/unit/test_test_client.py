"""Starlette's TestClient runs on httpx2, as Starlette recommends (issue 16): importing it
warns of nothing. With plain httpx it warns "Using `httpx` with `starlette.testclient` is
deprecated; install `httpx2` instead" in every run of the suite."""

import subprocess
import sys


def test_the_test_client_imports_without_a_deprecation_warning():
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "import fastapi.testclient"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
