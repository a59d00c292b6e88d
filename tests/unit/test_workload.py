"""The workload generator: deterministic, realistic in shape, and drivable end to end."""

from collections import Counter
from datetime import timedelta

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
    assert len(small.truth.bot_bursts) == SMALL.bot_bursts
    bots = small.truth.bot_viewer_ids
    for burst in small.truth.bot_bursts:
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
