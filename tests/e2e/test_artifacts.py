"""Tests leave nothing behind (issue 16): a test that starts a real server and passes
leaves no file in the temp directory; one that fails keeps its server log and says where.

Each case runs pytest in a subprocess on a two-line test of its own, with TMPDIR set to
an empty directory of this test's and the artifact hooks loaded (`-p support.artifacts`,
the same hooks tests/conftest.py uses), so what is left there is what the run left.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASE = """
from e2e.servers import free_port, start_server


def test_with_a_server(tmp_path):
    proc = start_server(f"sqlite:///{{tmp_path}}/store.db", free_port(), timeout=60)
    proc.terminate()
    proc.wait(30)
    assert {verdict}
"""


def _run(tmp_path: Path, verdict: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    temp = tmp_path / "temp"
    temp.mkdir()
    case = tmp_path / "case" / "test_case.py"
    case.parent.mkdir()
    case.write_text(CASE.format(verdict=verdict))
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "support.artifacts", "--rootdir", str(case.parent), "-o", "addopts=", str(case)],
        cwd=case.parent, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    left = sorted(p.name for p in temp.iterdir() if p.name.startswith("reelpulse-"))
    return done, left


def test_a_passing_test_leaves_no_server_log(tmp_path: Path):
    done, left = _run(tmp_path, "True")
    assert done.returncode == 0, done.stdout + done.stderr
    assert left == [], left


def test_a_failing_test_keeps_its_server_log_and_names_it(tmp_path: Path):
    done, left = _run(tmp_path, "False")
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(left) == 1 and left[0].startswith("reelpulse-serve-"), left
    assert "kept for this failure" in done.stdout and left[0] in done.stdout, done.stdout
