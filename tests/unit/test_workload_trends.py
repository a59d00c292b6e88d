"""The workload's trends phase: new keys appear from nothing; take-offs grow, fizzles stop."""

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from statistics import median

import pytest

from adapters.workload import PublishVideo, WorkloadConfig, generate
from adapters.workload.vocabulary import _TAGS

CONFIG = WorkloadConfig(seed=5, days=2, views_per_day=8_000)


@pytest.fixture(scope="module")
def workload():
    return generate(CONFIG)


def keys_of(command: PublishVideo) -> list[tuple[str, str]]:
    sound = [("sound", command.sound_id)] if command.sound_id else []
    return [("hashtag", t) for t in command.hashtags] + sound


def hourly_views(workload) -> dict[tuple[str, str], Counter]:
    keys = {c.video_id: keys_of(c) for c in workload.commands if isinstance(c, PublishVideo)}
    out: dict[tuple[str, str], Counter] = {}
    for s in workload.signals():
        if s.kind == "view":
            hour = int((s.occurred_at - CONFIG.start) / timedelta(hours=1))
            for key in keys[s.video_id]:
                out.setdefault(key, Counter())[hour] += 1
    return out


def launched(workload) -> set[tuple[str, str]]:
    """Keys the organic vocabulary never uses: new hashtags, sounds from snd-5000 on."""
    keys = {k for c in workload.commands if isinstance(c, PublishVideo) for k in keys_of(c)}
    return {
        (kind, key) for kind, key in keys
        if (kind == "hashtag" and key not in _TAGS) or (kind == "sound" and key >= "snd-5000")
    }  # fmt: skip


def test_half_the_launches_take_off_and_start_from_nothing(workload):
    trends = workload.truth.trend_starts
    assert len(trends) == round(CONFIG.trends_per_day * CONFIG.days / 2)
    assert len(launched(workload)) == round(CONFIG.trends_per_day * CONFIG.days)
    for trend in trends:
        assert trend.start < trend.peak <= CONFIG.end - timedelta(hours=1)
        first = min(
            c.occurred_at for c in workload.commands
            if isinstance(c, PublishVideo) and (trend.kind, trend.key) in keys_of(c)
        )  # fmt: skip
        assert first == trend.start  # nobody used the key before


def test_take_offs_grow_far_past_where_fizzles_stop(workload):
    views = hourly_views(workload)
    trends = {(t.kind, t.key): t for t in workload.truth.trend_starts}
    fizzles = launched(workload) - set(trends)
    assert fizzles
    tops = {key: max(views.get(key, Counter({0: 0})).values()) for key in launched(workload)}
    # Their busiest hours: a fizzle can have a busy evening, most stop at a few views.
    assert median(tops[k] for k in trends) >= 4 * median(tops[k] for k in fizzles)
    for key, trend in trends.items():
        start = int((trend.start - CONFIG.start) / timedelta(hours=1))
        peak = int((trend.peak - CONFIG.start) / timedelta(hours=1))
        early = sum(views[key][h] for h in range(start, start + 2))
        late = sum(views[key][h] for h in range(peak - 2, peak))
        assert late >= 3 * max(early, 1)  # it grew between its start and its peak


def test_no_trends_when_the_config_launches_none():
    quiet = generate(replace(CONFIG, days=1, trends_per_day=0.0))
    assert quiet.truth.trend_starts == () and launched(quiet) == set()
