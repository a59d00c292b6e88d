"""The command line's own messages, read as a user reads them: through a pipe (not a
terminal) on a 40-column screen. URLs, keys and names are never cut; a lost development
key and a port in use each get one plain line that says what to do."""

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from e2e.servers import free_port

NARROW = {"COLUMNS": "40", "LINES": "20"}


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REELPULSE_DEV_API_KEY"}
    env.update(NARROW)
    env.update(REELPULSE_DATABASE_URL=database_url, REELPULSE_LOG_LEVEL="warning", **extra)
    return env


def _cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _serve_and_stop(port: int, env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Start `serve` with its output on pipes, wait until it answers, stop it (SIGTERM);
    return what it printed (stderr and stdout)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)  # not listening yet; bounded by the deadline
        assert proc.poll() is None, f"serve exited early: {proc.communicate()}"
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        return err + out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _whole_on_a_line(text: str, token: str) -> bool:
    """`token` appears on one line, not followed by more of a URL or key."""
    return any(re.search(re.escape(token) + r"(?![\w/.-])", line) for line in text.splitlines())


def test_the_serve_banner_keeps_every_url_and_the_key_whole_in_a_narrow_pipe(tmp_path):
    port = free_port()
    env = _env(f"sqlite:///{tmp_path / 'a-rather-long-directory-name' / 'store.db'}")
    (tmp_path / "a-rather-long-directory-name").mkdir()
    output = _serve_and_stop(port, env)
    base = f"http://127.0.0.1:{port}"
    for path in ("/v1", "/docs", "/dashboard", "/graphql", "/healthz", "/readyz", "/metrics"):
        assert _whole_on_a_line(output, base + path), f"{base + path} cut in:\n{output}"
    assert _whole_on_a_line(output, str(tmp_path / "a-rather-long-directory-name" / "store.db"))
    keys = re.findall(r"dev API key: (rp_\S+)", output)
    assert len(keys) == 1, output
    # The key as printed is the whole key: the server accepts it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        answer = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.post(
                    f"{base}/graphql",
                    json={"query": "{ summary { creators } }"},
                    headers={"X-API-Key": keys[0]},
                    timeout=5,
                )
            except httpx.TransportError:
                time.sleep(0.05)
        assert answer is not None and answer.status_code == 200, answer and answer.text
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_restart_says_how_to_get_a_key_and_an_env_key_is_named_not_printed(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = _serve_and_stop(free_port(), _env(url))
    assert "rp_" in first  # the new key (the banner test checks that it is whole)
    # The key was shown once; the restart says how to get another.
    again = _serve_and_stop(free_port(), _env(url))
    assert "dev API key: rp_" not in again
    assert "reelpulse keys create --role admin" in again, again
    # A key from the environment: the banner names the variable, never its value.
    secret = "rp_envkey_0123456789abcdef0123456789abcdef"
    named = _serve_and_stop(free_port(), _env(url, REELPULSE_DEV_API_KEY=secret))
    assert secret not in named and "envkey" not in named
    assert "REELPULSE_DEV_API_KEY" in named, named


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_a_port_in_use_is_one_plain_line_before_any_banner(tmp_path, server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(
            "serve",
            "--port",
            str(port),
            "--demo",
            env=_env(f"sqlite:///{tmp_path / 'store.db'}", REELPULSE_SERVER=server),
        )
    output = (result.stderr + result.stdout).strip()
    assert result.returncode == 2, output
    assert len(output.splitlines()) == 1, output
    assert f"port {port}" in output and "--port" in output, output
    assert "Errno" not in output and "REST API" not in output
    assert not (tmp_path / "store.db").exists()  # nothing was opened or loaded


def _commands(group, path=()):
    """Every command path of the (typer's vendored) click group, with the command."""
    yield path, group
    if hasattr(group, "commands"):
        for name, command in group.commands.items():
            yield from _commands(command, (*path, name))


def test_help_never_cuts_a_word_name_or_sentence_in_a_narrow_pipe():
    import typer

    from adapters.cli import app

    root = typer.main.get_command(app)
    checked = 0
    for path, command in _commands(root):
        if path not in {(), ("serve",), ("demo",), ("keys", "create"), ("replay",)}:
            continue
        result = _cli(*path, "--help", env=_env("memory://"))
        assert result.returncode == 0, result.stderr
        text = result.stdout
        assert "…" not in text, f"{' '.join(path)} --help cut:\n{text}"
        lines = [" ".join(line.split()) for line in text.splitlines()]
        for param in command.params:
            for opt in param.opts:
                assert any(re.search(re.escape(opt) + r"(?![\w-])", x) for x in lines), (opt, text)
            if getattr(param, "help", None):
                sentence = " ".join(param.help.split())
                assert any(sentence in x for x in lines), (sentence, text)
        checked += 1
    assert checked == 5
