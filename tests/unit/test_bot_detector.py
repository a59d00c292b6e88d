"""BotDetectorProjection: per-minute vectors closed by the event-time watermark, anomaly
scores, one alert per burst, checkpoints."""

import math
import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.creator import Creator
from domain.engagement import Engagement
from domain.video import Video
from projections.alerting import Alert, alert_id
from projections.bot_detector import BotDetectorParams, BotDetectorProjection, BotDetectorView

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PARAMS = BotDetectorParams(window_size=60, seed=7)
RNG_UUID = random.Random(1)


def uid() -> UUID:
    return UUID(int=RNG_UUID.getrandbits(128), version=4)  # reproducible ids for the tests


class RecordingView(BotDetectorView):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def score(self, video_id, minute_at, score, vector, **totals):
        self.calls.append(("score", video_id, minute_at, score, dict(vector), totals))

    def raise_alert(self, alert: Alert) -> None:
        self.calls.append(("alert", alert))

    def scores(self, video_id: UUID | None = None) -> list[tuple]:
        return [c for c in self.calls if c[0] == "score" and video_id in (None, c[1])]

    def alerts(self) -> list[Alert]:
        return [c[1] for c in self.calls if c[0] == "alert"]


def publish(at: datetime, duration: float = 20.0) -> tuple[Video, list]:
    creator = Creator.register(
        creator_id=uid(), handle="c" + uid().hex[:6], display_name="C", region="US",
        occurred_at=at,
    )  # fmt: skip
    video = Video.publish(
        video_id=uid(), creator=creator, caption="x", hashtags=[], sound_id=None,
        duration_seconds=duration, occurred_at=at,
    )  # fmt: skip
    return video, list(video.collect_events())


def view(
    video: Video, at: datetime, viewer: UUID | None = None, *, watch: float = 12.0,
    source: str = "for_you", device: str = "ios", like: bool = False,
) -> list:  # fmt: skip
    e = Engagement.start(viewer_id=viewer or uid(), video=video, occurred_at=at)
    completed = watch >= video.duration_seconds
    e.view(video, watch_seconds=watch, completed=completed, traffic_source=source,
           device=device, occurred_at=at)  # fmt: skip
    if like:
        e.like(video, occurred_at=at)
    return [x for x in e.collect_events() if not isinstance(x, Engagement.Started)]


def run(projection: BotDetectorProjection, events: list, view_: BotDetectorView, start: int = 1):
    for position, e in enumerate(events, start=start):
        projection.process(e, position, view_)


def organic(videos: list[Video], start: datetime, minutes: int, seed: int) -> list:
    """Sparse, ordinary traffic: one or two distinct viewers a minute on random videos."""
    rng, events = random.Random(seed), []
    for m in range(minutes):
        for _ in range(rng.choice((1, 1, 2, 3))):
            video = rng.choice(videos)
            at = start + timedelta(minutes=m, seconds=rng.uniform(0, 59))
            events += view(
                video, at, watch=rng.uniform(3, 25), like=rng.random() < 0.1,
                source=rng.choice(("for_you", "for_you", "following", "search")),
                device=rng.choice(("ios", "android")),
            )  # fmt: skip
    return sorted(events, key=lambda e: e.occurred_at)


def burst(video: Video, start: datetime, minutes: int, per_minute: int, seed: int) -> list:
    """A few bots replaying a video for a second each, all from one device and source."""
    rng, bots = random.Random(seed), [uid() for _ in range(6)]
    events = []
    for _ in range(minutes * per_minute):
        at = start + timedelta(seconds=rng.uniform(0, minutes * 60))
        events += view(video, at, rng.choice(bots), watch=0.5, source="other", device="web")
    return sorted(events, key=lambda e: e.occurred_at)


def scenario(seed: int = 3) -> tuple[Video, list]:
    published = [publish(T0) for _ in range(6)]
    videos = [v for v, _ in published]
    target, target_events = publish(T0 + timedelta(minutes=1))
    events = organic([*videos, target], T0 + timedelta(minutes=2), 240, seed)
    attack = burst(target, T0 + timedelta(minutes=200, seconds=5), 4, 30, seed)
    events = sorted(events + attack, key=lambda e: e.occurred_at)
    return target, [e for _, p in published for e in p] + target_events + events


def test_a_minute_becomes_one_vector_of_shares_and_log_volume():
    video, events = publish(T0, duration=10.0)
    bot = uid()
    minute = T0 + timedelta(minutes=5)
    events += view(video, minute + timedelta(seconds=1), bot, watch=1.0, source="other",
                   device="web")  # fmt: skip
    events += view(video, minute + timedelta(seconds=2), bot, watch=1.0, source="other",
                   device="web", like=True)  # fmt: skip
    events += view(video, minute + timedelta(seconds=50), watch=10.0, device="ios")
    _, tick = publish(minute + timedelta(minutes=3))  # moves the watermark past the minute
    recording = RecordingView()
    run(BotDetectorProjection(PARAMS), events + tick, recording)

    [(_, video_id, at, score, x, totals)] = recording.scores()
    cap = math.log1p(PARAMS.view_cap)
    assert (video_id, at) == (video.id, minute)
    assert x == {
        "views": math.log1p(3) / cap,
        "viewers": math.log1p(2) / cap,
        "repeat_share": 1 - 2 / 3,
        "watch_fraction": (0.1 + 0.1 + 1.0) / 3,
        "completion_share": 1 / 3,
        "like_share": 1 / 3,
        "other_source_share": 2 / 3,
        "top_device_share": 2 / 3,
    }
    assert score == 0.0  # the first reference window is still filling: nothing to compare
    assert totals == {"minutes": 1, "max_score": 0.0, "max_score_at": minute}


def test_a_minute_closes_only_when_the_watermark_passes_its_end_plus_lateness():
    video, events = publish(T0)
    events += view(video, T0 + timedelta(seconds=30))
    p, recording = BotDetectorProjection(PARAMS), RecordingView()
    run(p, events, recording)
    # 1:59 after the minute's start: still open (60 s of lateness allowed), a late view counts.
    other, more = publish(T0 + timedelta(seconds=119))
    run(p, more + view(video, T0 + timedelta(seconds=45)), recording, start=10)
    assert recording.scores() == []
    run(p, view(other, T0 + timedelta(seconds=120)), recording, start=20)  # closes it
    [closed] = recording.scores()
    assert closed[2] == T0 and closed[4]["views"] == math.log1p(2) / math.log1p(PARAMS.view_cap)
    run(p, view(video, T0 + timedelta(seconds=50)), recording, start=30)  # too late now
    assert p.state.late_events == 1 and len(recording.scores()) == 1
    # Quiet minutes produce nothing: only minutes with activity are vectors.
    run(p, view(video, T0 + timedelta(minutes=30)), recording, start=40)
    assert [c[2] for c in recording.scores()] == [T0, T0 + timedelta(minutes=2)]


def test_a_bot_burst_scores_high_and_raises_one_alert_while_organic_traffic_raises_none():
    target, events = scenario()
    recording = RecordingView()
    run(BotDetectorProjection(PARAMS), events, recording)

    loud = math.log1p(PARAMS.min_views) / math.log1p(PARAMS.view_cap)  # vector["views"]
    burst = [c for c in recording.scores(target.id) if c[4]["other_source_share"] == 1]
    burst_minutes = [c for c in burst if c[4]["views"] >= loud - 1e-12]
    assert len(burst_minutes) >= 4
    # Minutes too quiet to ever alert are not scored (score 0), only learned.
    assert all(c[3] == 0.0 for c in recording.scores() if c[4]["views"] < loud - 1e-12)
    assert min(c[3] for c in burst_minutes) >= PARAMS.threshold
    organic_scores = [c[3] for c in recording.scores() if c[4]["other_source_share"] < 1]
    assert max(organic_scores) < PARAMS.threshold
    [alert] = recording.alerts()  # four anomalous minutes, one burst, one alert
    first = min(c[2] for c in burst_minutes)
    assert (alert.rule, alert.subject_id, alert.action) == (
        "bot_burst",
        str(target.id),
        "auto_flag",
    )
    assert alert.window == first.strftime("%Y-%m-%dT%H:%MZ")
    assert first < alert.raised_at <= first + timedelta(minutes=3)  # event time, not wall clock


def test_alert_ids_are_the_same_on_a_rebuild():
    target, events = scenario(seed=5)
    a, b = RecordingView(), RecordingView()
    run(BotDetectorProjection(PARAMS), events, a)
    run(BotDetectorProjection(PARAMS), events, b)
    assert [x.id for x in a.alerts()] == [x.id for x in b.alerts()] != []
    alert = a.alerts()[0]
    assert alert.id == alert_id("bot_burst", "video", str(target.id), alert.window)
    assert a.calls == b.calls


def test_a_restart_from_the_checkpoint_scores_exactly_like_an_uninterrupted_run():
    _, events = scenario(seed=11)
    straight = RecordingView()
    run(BotDetectorProjection(PARAMS), events, straight)

    resumed = RecordingView()
    first = BotDetectorProjection(PARAMS)
    half = len(events) // 2
    run(first, events[:half], resumed)
    second = BotDetectorProjection(PARAMS)  # a new process: state only from the checkpoint
    second.load_state(first.dump_state())
    run(second, events[half:], resumed, start=half + 1)

    assert resumed.calls == straight.calls
    assert straight.alerts() and any(c[3] > 0 for c in straight.scores())  # the model scored
