"""The workload generator: deterministic, realistic in shape, and drivable end to end."""

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.bootstrap import bootstrap
from adapters.settings import Settings
from adapters.workload import (
    DecideCase,
    EngagementBatch,
    PublishVideo,
    RegisterCreator,
    WorkloadConfig,
    drive_application,
    drive_http,
    generate,
)
from commands.engagement import Signal
from domain.video import VideoStatus

SMALL = WorkloadConfig(seed=11, days=2).scale(0.2)


@pytest.fixture(scope="module")
def small():
    return generate(SMALL)


def test_the_same_seed_gives_the_same_commands(small):
    assert generate(SMALL).commands == small.commands
    assert generate(SMALL).truth == small.truth


def test_another_seed_gives_other_commands(small):
    other = generate(WorkloadConfig(seed=12, days=2).scale(0.2))
    assert other.commands != small.commands
    assert {c.creator_id for c in other.commands if isinstance(c, RegisterCreator)}.isdisjoint(
        c.creator_id for c in small.commands if isinstance(c, RegisterCreator)
    )


def test_event_times_never_go_back_and_stay_inside_the_run(small):
    times = []
    for command in small.commands:
        times.append(command.occurred_at)
        if isinstance(command, EngagementBatch):
            assert command.occurred_at == command.signals[0].occurred_at
            assert len(command.signals) <= SMALL.batch_size
            times.extend(s.occurred_at for s in command.signals)
    assert times == sorted(times)
    assert SMALL.start <= times[0] and times[-1] < SMALL.start + timedelta(days=SMALL.days)
    assert all(t.utcoffset() == timedelta(0) for t in times)


def test_bot_bursts_are_in_the_ground_truth_with_tiny_watch_times(small):
    bursts = [b for b in small.truth.bot_bursts if b.kind == "burst"]
    assert len(bursts) == SMALL.bot_bursts
    bots = small.truth.bot_viewer_ids
    for burst in bursts:
        views = [
            s
            for s in small.signals()
            if s.kind == "view" and s.video_id == burst.video_id and s.viewer_id in bots
        ]
        assert len(views) == burst.views
        assert all(s.watch_seconds < 2.0 and not s.completed for s in views)
        assert all(burst.start <= s.occurred_at <= burst.end for s in views)
        assert burst.end - burst.start <= timedelta(minutes=10)


def test_watch_completion_is_consistent_with_the_duration(small):
    published = [c for c in small.commands if isinstance(c, PublishVideo)]
    durations = {c.video_id: c.duration_seconds for c in published}
    views = [s for s in small.signals() if s.kind == "view"]
    assert all(s.completed == (s.watch_seconds >= durations[s.video_id]) for s in views)
    assert 0.1 < sum(s.completed for s in views) / len(views) < 0.6


def test_popularity_is_heavy_tailed(small):
    views = Counter(s.video_id for s in small.signals() if s.kind == "view")
    ranked = sorted(views.values(), reverse=True)
    top = ranked[: max(1, len(ranked) // 10)]
    assert sum(top) > 0.5 * sum(ranked)


def test_likes_and_follows_keep_their_invariants(small):
    seen, liked, following = set(), set(), set()
    for s in small.signals():
        if s.client_event_id in seen:
            continue  # a redelivery: the backend records it once
        seen.add(s.client_event_id)
        pair = (s.viewer_id, s.video_id or s.creator_id)
        if s.kind in ("like", "follow"):
            state = liked if s.kind == "like" else following
            assert pair not in state
            state.add(pair)
        elif s.kind in ("unlike", "unfollow"):
            state = liked if s.kind == "unlike" else following
            state.remove(pair)
    assert liked and following


def test_report_waves_end_in_decisions(small):
    decisions = {c.case_id: c for c in small.commands if isinstance(c, DecideCase)}
    assert small.truth.report_waves
    for wave in small.truth.report_waves:
        assert decisions[wave.case_id].outcome == wave.outcome
        assert wave.decided_at > wave.end
    assert small.truth.report_waves[0].final_video_status == "removed"


def test_driving_a_workload_records_events_and_the_policy_removes_videos(small):
    container = bootstrap(Settings(database_url="memory://"))
    try:
        advanced: list[int] = []
        stats = drive_application(container, small.commands, progress=advanced.append)
        assert sum(advanced) == small.items == stats.items
        assert stats.recorded > 0.9 * stats.items
        assert stats.rejected_fraction < 0.01, stats.rejections
        assert stats.duplicate > 0  # redelivered client events are dropped, not stored twice
        assert stats.position == container.head_position > stats.recorded
        for wave in small.truth.report_waves:
            video = container.content.get_video(wave.video_id)
            assert video.status == wave.final_video_status
        assert container.content.get_video(small.truth.report_waves[0].video_id).status == (
            VideoStatus.REMOVED
        )
    finally:
        container.close()


class _RecordingClient:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []

    def post(self, url, *, json):
        self.posts.append((url, json))
        items = json.get("items", [])
        statuses = [{"status": "recorded"} for _ in items]
        return _Response({"position": len(self.posts), "items": statuses})


class _Response:
    status_code = 201

    def __init__(self, payload) -> None:
        self.payload = payload

    def json(self):
        return self.payload


def test_the_http_driver_posts_the_same_commands_as_json(small):
    client = _RecordingClient()
    stats = drive_http(client, small.commands)
    assert len(client.posts) == len(small.commands) and stats.items == small.items
    paths = Counter(
        path.split("/")[2] if path.count("/") == 2 else path.rsplit("/", 1)[1]
        for path, _ in client.posts
    )
    assert {"creators", "videos", "batch", "reports", "decision"} <= set(paths)
    for path, body in client.posts:
        assert None not in body.values()
        for item in body.get("items", []):
            assert None not in item.values()
            assert set(item) >= {"type", "viewer_id", "occurred_at"}
            assert ("watch_seconds" in item) == (item["type"] == "view")
        if path == "/v1/creators":
            assert set(body) == {"creator_id", "handle", "display_name", "region", "occurred_at"}
            assert body["occurred_at"].startswith("2026-03-0")


# -- the demo: a history that ends now, then live traffic on the same model ------------------
NOW = datetime(2026, 12, 6, 15, 41, 7, 250_000, tzinfo=UTC)


def _events(commands) -> list:
    """Every signal and every other command, in order."""
    out = []
    for command in commands:
        out.extend(command.signals if isinstance(command, EngagementBatch) else [command])
    return out


def test_the_demo_history_ends_when_it_is_loaded():
    from adapters.workload.live import demo_config

    config = demo_config(42, 2, NOW)
    times = [e.occurred_at for e in _events(generate(config).commands)]
    assert config.end == NOW.replace(microsecond=0)
    assert NOW - timedelta(days=2, seconds=1) <= times[0]
    assert NOW - timedelta(minutes=30) < times[-1] < NOW  # the last half hour is busy too


def test_the_daily_cycle_follows_the_utc_hour_whenever_the_demo_starts():
    from adapters.workload.live import demo_config

    for now in (NOW, NOW.replace(hour=3)):
        views = Counter(
            e.occurred_at.hour
            for e in _events(generate(demo_config(5, 3, now)).commands)
            if getattr(e, "kind", None) == "view"
        )
        assert sum(views[h] for h in (18, 19, 20, 21, 22)) > 2 * sum(
            views[h] for h in (6, 7, 8, 9, 10)
        ), views


def _live(salt: str, seconds: float, *, rate: float = 20, diurnal: float = 0.0):
    from adapters.workload.live import LiveStream, demo_config

    config = replace(demo_config(42, 1, NOW), diurnal_amplitude=diurnal)
    stream = LiveStream(config, events_per_second=rate, salt=salt)
    end = config.days * 86_400.0
    return config, stream, _events(stream.until(end + seconds))


def test_live_traffic_keeps_its_pace_and_continues_the_history():
    config, stream, events = _live("a", 600)
    assert 0.75 * 20 * 600 < len(events) < 1.25 * 20 * 600
    times = [e.occurred_at for e in events]
    assert times == sorted(times) and config.end <= times[0]
    history = generate(config)
    # The same population: the history's creators, videos and viewers (plus new uploads).
    known_videos = {c.video_id for c in history.commands if isinstance(c, PublishVideo)}
    known_videos |= {e.video_id for e in events if isinstance(e, PublishVideo)}
    assert {e.video_id for e in events if getattr(e, "video_id", None)} <= known_videos
    creators = {c.creator_id for c in history.commands if isinstance(c, RegisterCreator)}
    assert {e.creator_id for e in events if isinstance(e, PublishVideo)} <= creators

    def organic(signals) -> set:  # viewers, not bots (whose views come from "other")
        return {e.viewer_id for e in signals if e.kind == "view" and e.traffic_source != "other"}

    live_viewers = organic(e for e in events if isinstance(e, Signal))
    history_viewers = organic(history.signals()) - history.truth.bot_viewer_ids  # drips too
    assert live_viewers | history_viewers <= set(stream.sim.viewers)
    # Views come in sessions (taste.py): a day of history reaches a part of the population.
    assert len(live_viewers & history_viewers) > 0.1 * len(live_viewers)
    ids = [e.client_event_id for e in events if getattr(e, "client_event_id", None)]
    assert not set(ids) & {s.client_event_id for s in history.signals()}


def test_live_traffic_tells_the_same_stories_as_the_history():
    _, _, events = _live("b", 1800, rate=40)
    kinds = Counter(getattr(e, "kind", type(e).__name__) for e in events)
    for kind in ("view", "like", "share", "comment", "follow", "ReportVideo", "AutoFlagVideo",
                 "PublishVideo"):  # fmt: skip
        assert kinds[kind] > 0, kinds
    bot_views = [e for e in events if getattr(e, "traffic_source", None) == "other"
                 and e.kind == "view" and e.watch_seconds <= 1.5]  # fmt: skip
    assert len(bot_views) > 150  # at least one burst
    # Moderators decide hours after a wave (as in the history), and keep the queue moving.
    _, _, slow = _live("b", 4 * 3600, rate=2)
    assert any(isinstance(e, DecideCase) for e in slow)


def test_the_same_salt_gives_the_same_live_traffic_another_salt_other_traffic():
    assert _live("c", 120)[2] == _live("c", 120)[2]
    assert _live("c", 120)[2] != _live("d", 120)[2]


def test_handles_are_valid_and_unique_across_seeds():
    """Handles are unique in a store (domain/handle.py): two seeds loaded into one store
    must not collide (seeds 1 and 2 shared 9 of 2,000 handles), nor two creators of one."""
    from adapters.workload.model import RegisterCreator, WorkloadConfig
    from domain.values import check_handle

    seen: dict[str, int] = {}
    for seed in (1, 2, 42, 123456):
        workload = generate(WorkloadConfig(seed=seed, creators=2000))
        for command in workload.commands:
            if isinstance(command, RegisterCreator):
                handle = check_handle(command.handle)  # valid: 2-24 of a-z0-9._
                assert handle not in seen, (handle, seed, seen[handle])
                seen[handle] = seed
    assert len(seen) == 4 * 2000
