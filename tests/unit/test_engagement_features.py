"""EngagementFeaturesProjection: event-time rates, ratios and follower share."""

import math
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from domain.creator import Creator
from domain.engagement import Engagement
from domain.following import Following
from domain.video import Video
from projections.engagement_features import (
    FAST,
    FAST_TAU,
    EngagementFeaturesProjection,
    add_rate,
    new_record,
    rate_at,
    snapshot,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class LastValues:
    def __init__(self) -> None:
        self.videos: dict = {}
        self.creators: dict = {}

    def video_features(self, video_id, at, features, *args):
        self.videos[video_id] = features(*args)

    def creator_features(self, creator_id, at, features, *args):
        self.creators[creator_id] = features(*args)


def test_rate_decays_in_event_time_and_handles_late_events():
    r = new_record()
    add_rate(r, FAST, FAST_TAU, 0.0)
    add_rate(r, FAST, FAST_TAU, FAST_TAU)
    assert math.isclose(rate_at(r, FAST, FAST_TAU, FAST_TAU), (math.exp(-1) + 1) / FAST_TAU)
    late = new_record()
    add_rate(late, FAST, FAST_TAU, FAST_TAU)
    add_rate(late, FAST, FAST_TAU, 0.0)  # delivered after, happened before: same as in order
    assert math.isclose(
        rate_at(late, FAST, FAST_TAU, FAST_TAU), rate_at(r, FAST, FAST_TAU, FAST_TAU)
    )


def test_video_and_creator_features_from_events():
    creator = Creator.register(
        creator_id=uuid4(), handle="feat", display_name="F", region="US", occurred_at=T0
    )
    video = Video.publish(
        video_id=uuid4(), creator=creator, caption="", hashtags=[], sound_id=None,
        duration_seconds=20, occurred_at=T0,
    )  # fmt: skip
    fan, stranger = uuid4(), uuid4()
    follow = Following.start(viewer_id=fan, creator_id=creator.id, occurred_at=T0)
    follow.follow(occurred_at=T0)
    events = [*video.collect_events(), *follow.collect_events()]
    pairs = {v: Engagement.start(viewer_id=v, video=video, occurred_at=T0) for v in (fan, stranger)}
    for i, viewer in enumerate((fan, stranger, stranger, fan)):
        pair, t = pairs[viewer], T0 + timedelta(minutes=i)
        pair.view(
            video, watch_seconds=20, completed=i % 2 == 0, traffic_source="for_you",
            device="ios", occurred_at=t,
        )  # fmt: skip
        if i == 0:
            pair.like(video, occurred_at=t)
        if i == 1:
            pair.share(video, channel="sms", occurred_at=t)
    for pair in pairs.values():
        events += [x for x in pair.collect_events() if not isinstance(x, Engagement.Started)]
    events.sort(key=lambda e: e.occurred_at)
    out = LastValues()
    projection = EngagementFeaturesProjection()
    for n, e in enumerate(events, start=1):
        projection.process(e, n, out)

    f = out.videos[video.id]
    assert f["views"] == 4
    assert f["completion_rate"] == 0.5 and f["like_rate"] == 0.25 and f["share_rate"] == 0.25
    assert f["follower_share"] == 0.5  # the fan's two views
    assert f["velocity"] > f["baseline_velocity"] > 0 and f["acceleration"] > 0  # a fresh burst
    assert out.creators[creator.id]["views"] == 4

    restored = EngagementFeaturesProjection()
    restored.load_state(projection.dump_state())
    assert snapshot(restored.state.videos[video.id.int], 0) == snapshot(
        projection.state.videos[video.id.int], 0
    )
