"""A demo that lives: its history ends when it is loaded, so a real command (event time
now) lands beside it; `serve --demo` keeps generated traffic flowing, and stops it."""

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from support.auth import ENV as AUTH_ENV
from support.auth import HEADERS

from adapters.bootstrap import bootstrap
from adapters.readmodel.trending_reader import SqlTrendingReader
from adapters.settings import Settings
from commands.engagement import Signal
from e2e.servers import free_port, wait_until_serving

QUERY = "{ summary { headPosition views } trending(window: HOUR, first: 20) { key views } }"


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    """A store holding the demo (seed 42, one day), loaded by `reelpulse demo` once."""
    directory = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "REELPULSE_DATABASE_URL": f"sqlite:///{directory / 'store.db'}"}
    subprocess.run(
        [sys.executable, "-m", "adapters.cli", "demo", "--days", "1"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return directory


def _copy(demo_store: Path, tmp_path: Path) -> str:
    for f in demo_store.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return f"sqlite:///{tmp_path / 'store.db'}"


def test_after_a_real_command_trending_still_lists_the_demos_videos(demo_store, tmp_path):
    container = bootstrap(Settings(database_url=_copy(demo_store, tmp_path)))
    try:
        demo_head = container.head_position
        # The README's first command, then a new video watched now: event time = now.
        creator = container.content.register_creator(
            handle="newcreator", display_name="New Creator", region="US"
        ).id
        video = uuid4()
        container.content.publish_video(
            video_id=video,
            creator_id=creator,
            caption="new",
            hashtags=[],
            sound_id=None,
            duration_seconds=12.0,
        )
        # Watched by 40 viewers: in the top 100 of the hour whatever hour of the day the
        # demo's history ends at (one view ranked below 100 demo videos at 17:00 UTC).
        container.engagement.ingest(
            [Signal(kind="view", viewer_id=uuid4(), video_id=video) for _ in range(40)]
        )
        assert container.head_position > demo_head
        container.run_projections_until_idle()
        reader = SqlTrendingReader(container.read_engine)
        keys = [i.key for i in reader.trending("video", 60, 100)]
        watermark = reader.watermark()
    finally:
        container.close()
    assert watermark is not None and datetime.now(UTC) - watermark < timedelta(minutes=5)
    assert str(video) in keys  # the real command counts...
    assert len(keys) > 5, f"trending collapsed to {keys}"  # ...beside the demo's videos


def _serve(url: str, tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen, Path]:
    port = free_port()
    log = tmp_path / "serve.log"
    environment = {**os.environ, **AUTH_ENV, "REELPULSE_DATABASE_URL": url, **env}
    environment.setdefault("REELPULSE_LOG_LEVEL", "warning")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), "--demo", *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    wait_until_serving(port, lambda: proc.poll() is None, str(log), 240, proc.kill)
    proc.port = port  # type: ignore[attr-defined]
    return proc, log


def _read(port: int) -> dict:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, headers=HEADERS, timeout=10
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return {
        "head": data["summary"]["headPosition"],
        "views": data["summary"]["views"],
        "trending": [(i["key"], i["views"]) for i in data["trending"]],
    }


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def test_live_traffic_moves_the_head_trending_and_stats_by_itself(demo_store, tmp_path):
    proc, log = _serve(
        _copy(demo_store, tmp_path), tmp_path, REELPULSE_DEMO_LIVE_EVENTS_PER_SECOND="50"
    )
    try:
        first = _read(proc.port)
        deadline, now = time.monotonic() + 60, first
        while time.monotonic() < deadline:
            now = _read(proc.port)
            if (
                now["head"] > first["head"]
                and now["views"] > first["views"]
                and now["trending"] != first["trending"]
            ):
                break
            time.sleep(0.5)  # polling interval; the deadline bounds the wait
        assert now["head"] > first["head"], (first, now)
        assert now["views"] > first["views"], (first, now)
        assert now["trending"] != first["trending"]
        assert len(now["trending"]) > 5  # the demo's videos, not one new item
    finally:
        code = _stop(proc)
    assert code == 0, log.read_text()[-3000:]
    assert "demo live traffic stopped:" in log.read_text()


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--no-live",), {}), ((), {"REELPULSE_DEMO_LIVE_EVENTS_PER_SECOND": "0"})],
    ids=["--no-live", "rate-0"],
)
def test_with_live_traffic_off_nothing_moves(demo_store, tmp_path, args, env):
    # The alert action worker is the other writer in `serve`: the demo's alerts (bot
    # bursts, report spikes) ask for flags and escalations, which it records as the
    # projections raise them, after they have caught up too. This test is about live
    # traffic, so that worker is off (its own tests are in tests/integration).
    env = {**env, "REELPULSE_ALERT_ACTIONS_ENABLED": "false"}
    proc, log = _serve(_copy(demo_store, tmp_path), tmp_path, *args, **env)
    try:
        # Wait until the read models have caught up with the demo, then watch: live
        # traffic at the default pace would add ~60 events within these 3 seconds.
        deadline = time.monotonic() + 120
        while True:
            ready = httpx.get(f"http://127.0.0.1:{proc.port}/readyz", timeout=10).json()
            lags = ready["checks"].get("projections", {}).get("lag", {})
            if lags and max(lags.values()) == 0:
                break
            assert time.monotonic() < deadline, f"projections never caught up: {lags}"
            time.sleep(0.2)  # polling; the deadline bounds the wait
        first = _read(proc.port)
        watch_until = time.monotonic() + 3
        while time.monotonic() < watch_until:
            assert _read(proc.port) == first
            time.sleep(0.25)
    finally:
        code = _stop(proc)
    assert code == 0, log.read_text()[-3000:]
    assert "demo live traffic" not in log.read_text()


def test_stopping_the_stream_ends_its_writes():
    from adapters.workload import drive_application, generate
    from adapters.workload.live import LiveStream, LiveTraffic, demo_config

    container = bootstrap(Settings(database_url="memory://", alert_actions_enabled=False))
    try:
        config = demo_config(7, 1, datetime.now(UTC))
        drive_application(container, generate(config).commands)
        head = container.head_position
        live = LiveTraffic(
            container, LiveStream(config, events_per_second=200, salt="t"), tick=0.05
        )
        live.start()
        deadline = time.monotonic() + 30
        while container.head_position == head and time.monotonic() < deadline:
            time.sleep(0.05)  # polling; the deadline bounds the wait
        assert container.head_position > head, "live traffic wrote nothing"
        stats = live.stop()
        assert not live.running
        stopped_at = container.head_position
        assert stats.recorded > 0 and stats.rejected_fraction < 0.05, stats.rejections
        assert stats.position == container.head_position
        # Ten ticks later: still nothing new (the thread is gone, not just paused).
        watch_until = time.monotonic() + 0.5
        while time.monotonic() < watch_until:
            assert container.head_position == stopped_at
            time.sleep(0.05)
    finally:
        container.close()
