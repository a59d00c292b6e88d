"""README's examples work as written (issue 16, "README and docs"), against a real server.

Every ```bash block of README.md that runs curl is run, in README order, in one bash
(`set -euo pipefail`, so a failing curl or jq stops it) against a fresh `reelpulse serve`;
the only changes: the server's port for 8000 and the test's key for the `export KEY=rp_…`
line the reader fills in. No answer may be an error (REST `{"error": ...}`, GraphQL
`{"errors": [...]}`). Every ```python block (the WebSocket subscription) is run with the
project's interpreter and must print what it received. The examples must cover every
command family: creators, videos, engagement (single, batch, NDJSON), moderation.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.auth import DEV_API_KEY

from .servers import free_port, start_server

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```(?P<lang>bash|python)\n(?P<code>.*?)^```", re.DOTALL | re.MULTILINE)
# What the command examples must show, one per command family (a route, and for NDJSON
# its content type).
FAMILIES = {
    "creators: register": r"/v1/creators\b(?!/)",
    "creators: profile": r"PATCH\b.*/v1/creators/",
    "videos: publish": r"/v1/videos\b(?!/)",
    "videos: edit": r"PATCH\b.*/v1/videos/",
    "engagement: view": r"/views\b",
    "engagement: like": r"/likes\b",
    "engagement: share": r"/shares\b",
    "engagement: comment": r"/comments\b",
    "engagement: follow": r"/followers\b",
    "engagement: batch": r"/v1/engagement/batch\b",
    "engagement: NDJSON batch": r"application/x-ndjson",
    "moderation: report": r"/reports\b",
    "moderation: flag": r"/flags\b",
    "moderation: decision": r"/decision\b",
    "moderation: appeal": r"/appeal\b",
}


def blocks(lang: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [m["code"] for m in _BLOCK.finditer(text) if m["lang"] == lang]


def curl_blocks() -> list[str]:
    return [code for code in blocks("bash") if re.search(r"^\s*[^#\n]*\bcurl\b", code, re.M)]


def localised(code: str, port: int) -> str:
    code = re.sub(r"^export KEY=.*$", "# (KEY set by the test)", code, flags=re.MULTILINE)
    return re.sub(r"(localhost|127\.0\.0\.1):8000", f"127.0.0.1:{port}", code)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if shutil.which("curl") is None or shutil.which("jq") is None:
        pytest.skip("README's examples use curl and jq")
    port = free_port()
    db = tmp_path_factory.mktemp("readme") / "store.db"
    proc = start_server(f"sqlite:///{db}", port, timeout=60)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def answers(output: str) -> list[object]:
    """Every JSON value curl printed (answers may follow each other on one line)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := _next_json(output, at)) >= 0:
        try:
            value, at = decoder.raw_decode(output, at)
        except ValueError:
            at += 1
            continue
        values.append(value)
    return values


def _next_json(text: str, at: int) -> int:
    found = [i for i in (text.find("{", at), text.find("[", at)) if i >= 0]
    return min(found) if found else -1


def errors_in(output: str) -> list[object]:
    """The answers that are errors (REST `{"error"}`, GraphQL `{"errors"}`)."""
    return [
        value
        for value in answers(output)
        if isinstance(value, dict) and ("error" in value or value.get("errors"))
    ]


def test_the_examples_cover_every_command_family():
    examples = "\n".join(curl_blocks())
    missing = {family for family, shown in FAMILIES.items() if not re.search(shown, examples)}
    assert not missing, f"README shows no example for {sorted(missing)}"


def test_the_curl_examples_run_against_a_real_server(server):
    script = "\n".join(localised(code, server) for code in curl_blocks())
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "KEY": DEV_API_KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert errors_in(done.stdout) == [], done.stdout
    positions = [a for a in answers(done.stdout) if isinstance(a, dict) and "position" in a]
    # Every command answered: all but the three whose ids are kept in variables, plus
    # the Quickstart's registration.
    assert len(positions) >= len(FAMILIES) - 3 + 1, done.stdout


def test_the_websocket_subscription_example_runs(server):
    [snippet] = [code for code in blocks("python") if "graphql-transport-ws" in code]
    done = subprocess.run(
        [sys.executable, "-c", localised(snippet, server)],
        env={**os.environ, "KEY": DEV_API_KEY},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    received = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["type"] for r in received] == ["connection_ack", "next"], done.stdout
    assert "errors" not in received[1]["payload"], done.stdout
    assert set(received[1]["payload"]["data"]["summary"]) == {"creators", "videos", "views"}
    assert "4403" in done.stdout  # the same subscription without a key is refused
