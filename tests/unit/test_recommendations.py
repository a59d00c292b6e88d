"""RecommendationsProjection: learning, one list by one score, taste, the bandit, checkpoints."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.creator import Creator
from domain.engagement import Engagement
from domain.erasure import Erasure
from domain.following import Following
from domain.video import Video
from projections import reco_taste
from projections.recommendations import (
    DEFAULT_PARAMS,
    ERASED_VIEWER,
    RecommendationsProjection,
    RecommendationsView,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class RecordingView(RecommendationsView):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def item(self, video_id, at, row, *args):
        self.calls.append(("item", video_id, *row(*args), at))

    def viewer(self, viewer_id, at, row, *args):
        self.calls.append(("viewer", viewer_id, *row(*args), at))

    def seen(self, viewer_id, video_id):
        self.calls.append(("seen", viewer_id, video_id))

    def bandit(self, name, at, row):
        self.calls.append(("bandit", name, *row(), at))

    def metric(self, model, name, samples, value):
        self.calls.append(("metric", model, name, value(), samples))

    def forget_viewer(self, viewer_id):
        self.calls.append(("forget", viewer_id))

    def hashtag(self, name, position, views):
        self.calls.append(("hashtag", name, position, views))

    def shared(self, at, row):
        self.calls.append(("shared", *row(), at))


def creator() -> tuple[Creator, list]:
    c = Creator.register(
        creator_id=uuid4(), handle="c" + uuid4().hex[:6], display_name="C", region="US",
        occurred_at=T0 - timedelta(days=1),
    )  # fmt: skip
    return c, list(c.collect_events())


def publish(c: Creator, at: datetime, hashtags: tuple[str, ...] = ()) -> tuple[Video, list]:
    v = Video.publish(
        video_id=uuid4(), creator=c, caption="x", hashtags=list(hashtags), sound_id=None,
        duration_seconds=20, occurred_at=at,
    )  # fmt: skip
    return v, list(v.collect_events())


def view(video: Video, viewer: UUID, at: datetime, watch: float, like: bool = False) -> list:
    e = Engagement.start(viewer_id=viewer, video=video, occurred_at=at)
    e.view(
        video, watch_seconds=watch, completed=watch >= video.duration_seconds,
        traffic_source="for_you", device="ios", occurred_at=at,
    )  # fmt: skip
    if like:
        e.like(video, occurred_at=at + timedelta(seconds=1))
    return [x for x in e.collect_events() if isinstance(x, Engagement.Viewed | Engagement.Liked)]


def run(projection: RecommendationsProjection, events: list, v: RecommendationsView) -> None:
    for position, e in enumerate(events, start=1):
        projection.process(e, position, v)


def test_learning_moves_scores_the_right_way():
    c, events = creator()
    good, e1 = publish(c, T0)
    bad, e2 = publish(c, T0)
    events += e1 + e2
    for n in range(40):
        at = T0 + timedelta(minutes=n + 1)
        events += view(good, uuid4(), at, watch=20, like=n % 2 == 0)  # completed, liked
        events += view(bad, uuid4(), at, watch=1)  # skipped after a second
    projection = RecommendationsProjection()
    run(projection, events, RecordingView())
    s = projection.state
    g, b = s.video_index[good.id.int], s.video_index[bad.id.int]
    assert s.model.i_biases[g] > 0 > s.model.i_biases[b]
    newcomer = projection._viewer(uuid4())
    assert projection._predict(newcomer, g) > projection._predict(newcomer, b)


def test_progressive_metrics_predict_before_learning_beside_the_baseline():
    c, events = creator()
    video, published = publish(c, T0)
    events += published + view(video, uuid4(), T0 + timedelta(minutes=1), watch=20)
    rec = RecordingView()
    run(RecommendationsProjection(), events, rec)
    metrics = {(m[1], m[2]): (m[3], m[4]) for m in rec.calls if m[0] == "metric"}
    # The first view is predicted by an untrained model (0) and the empty mean (0).
    assert metrics[("recommendations", "mae")] == (1.0, 1)
    assert metrics[("recommendations_baseline", "mae")] == (1.0, 1)


def test_seen_restricted_and_removed_videos_are_not_candidates():
    c, events = creator()
    videos = []
    for n in range(6):
        v, e = publish(c, T0 + timedelta(seconds=n))
        videos.append(v)
        events += e
    me = uuid4()
    events += view(videos[0], me, T0 + timedelta(minutes=1), watch=20)
    for n, v in enumerate(videos[1:], start=2):  # others make every video popular
        events += view(v, uuid4(), T0 + timedelta(minutes=n), watch=20)
    videos[1].restrict(case_id=uuid4(), occurred_at=T0 + timedelta(minutes=20))
    videos[2].remove(case_id=uuid4(), occurred_at=T0 + timedelta(minutes=20))
    videos[3].delete_by_creator(occurred_at=T0 + timedelta(minutes=20))
    events += [e for v in videos[1:4] for e in v.collect_events()]
    follow = Following.start(viewer_id=me, creator_id=c.id, occurred_at=T0)
    follow.follow(occurred_at=T0)
    events += list(follow.collect_events())
    projection = RecommendationsProjection()
    run(projection, events, RecordingView())

    listed = projection.recommend(me, T0 + timedelta(minutes=30))
    assert {r.video_id for r in listed} == {videos[4].id, videos[5].id}
    assert {r.source for r in listed} == {"following"}  # the viewer follows their creator
    videos[2].restore(case_id=uuid4(), occurred_at=T0 + timedelta(minutes=40))
    run(projection, list(videos[2].collect_events()), RecordingView())
    listed = projection.recommend(me, T0 + timedelta(minutes=41))
    assert videos[2].id in {r.video_id for r in listed}


def test_the_list_is_ordered_by_its_one_score():
    events = workload(seed=3)
    projection = RecommendationsProjection()
    run(projection, events, RecordingView())
    s, p = projection.state, projection.params
    at = events[-1].occurred_at
    checked = 0
    for key in s.viewer_ids[:20]:
        listed = projection.recommend(UUID(int=key), at)
        assert 1 <= len(listed) <= p.top_k  # 20 videos: some viewers saw most of them
        scores = [r.score for r in listed]
        assert scores == sorted(scores, reverse=True)
        u = s.viewer_index[key]
        lift, other = projection.taste_of(u)
        followed = s.following.get(u, {})
        for r in listed:  # each score is the formula of its parts, on one scale
            i = s.video_index[r.video_id.int]
            parts = (
                projection._popularity(i, at.timestamp()),
                reco_taste.video_lift(s.video_tags[i], lift, other),
                s.creator_of[i] in followed,
            )
            expected = reco_taste.score(
                *parts, floor=p.popularity_floor, taste_weight=p.taste_weight,
                follow_boost=p.follow_boost,
            )  # fmt: skip
            assert r.score == pytest.approx(expected, rel=1e-12)
            assert r.source == reco_taste.reason(parts[1], parts[2], p.taste_weight)
            checked += 1
    assert checked > 100
    assert {r.source for key in s.viewer_ids for r in projection.recommend(UUID(int=key), at)} == {
        "personal", "trending", "following",
    }  # fmt: skip


def test_a_viewer_with_a_clear_taste_gets_its_topic_ahead_of_popular_videos():
    c, events = creator()
    popular, cooking = [], []
    for _ in range(12):
        v, e = publish(c, T0, ("fyp", "dance"))
        popular.append(v)
        events += e
    for _ in range(12):
        v, e = publish(c, T0, ("fyp", "cooking"))
        cooking.append(v)
        events += e
    at = T0 + timedelta(minutes=1)
    for n, v in enumerate(popular):  # strangers: dance is what everybody watches
        for k in range(6 - n // 4):  # twice as popular as cooking, or more
            events += view(v, uuid4(), at + timedelta(seconds=k), watch=20)
    for v in cooking:
        for k in range(3):
            events += view(v, uuid4(), at + timedelta(seconds=k), watch=20)
    cook = uuid4()
    for v in cooking[:6]:  # the viewer watches cooking, and nothing else
        events += view(v, cook, at + timedelta(seconds=40), watch=20)
    events.sort(key=lambda e: e.occurred_at)
    projection = RecommendationsProjection()
    run(projection, events, RecordingView())
    later = T0 + timedelta(minutes=2)
    mine = projection.recommend(cook, later)
    assert {r.video_id for r in mine[:6]} == {v.id for v in cooking[6:]}  # its topic first
    assert {r.source for r in mine[:6]} == {"personal"}
    assert {r.video_id for r in mine[6:]} <= {v.id for v in popular}
    stranger = projection.recommend(uuid4(), later)  # no taste: the popular ones
    assert [r.video_id for r in stranger[:8]] == [v.id for v in popular[:8]]
    assert {r.source for r in stranger} == {"trending"}
    popularity_only = projection.recommend(cook, later, weight=0.0)
    assert [r.video_id for r in popularity_only[:8]] == [v.id for v in popular[:8]]


def test_a_pickled_state_gives_the_same_lists_and_learns_the_same():
    events = workload(seed=9)
    half = len(events) // 2
    original = RecommendationsProjection()
    run(original, events[:half], RecordingView())
    copy = RecommendationsProjection()
    copy.load_state(original.dump_state())
    at = events[half].occurred_at
    for key in original.state.viewer_ids:
        assert copy.recommend(UUID(int=key), at) == original.recommend(UUID(int=key), at)
    a, b = RecordingView(), RecordingView()
    for position, e in enumerate(events[half:], start=half + 1):
        original.process(e, position, a)
        copy.process(e, position, b)
    assert a.calls == b.calls
    assert copy.dump_state() == original.dump_state()


def test_the_bandit_learns_every_arm_from_every_sampled_view():
    c, events = creator()
    hit, e1 = publish(c, T0)
    miss, e2 = publish(c, T0)
    events += e1 + e2
    projection = RecommendationsProjection(replace(DEFAULT_PARAMS, sample_every=1, top_k=1))
    rec = RecordingView()
    run(projection, events, rec)
    for n in range(3):  # `hit` gets popular: strangers' first views are in every top-1
        run(projection, view(hit, uuid4(), T0 + timedelta(minutes=n + 1), watch=20), rec)
    me = uuid4()
    run(projection, view(miss, me, T0 + timedelta(minutes=10), watch=20), rec)  # not listed
    s = projection.state
    assert s.samples == 4
    arms = projection.bandit_arms()
    assert {a: arms[a]["pulls"] for a in projection.arms} == dict.fromkeys(projection.arms, 4.0)
    # `hit` is listed first for its three views (at first as the older of two unviewed
    # videos), `miss` for none: every arm and the served list hit 3 of 4.
    assert s.hits == {**dict.fromkeys(projection.arms, 3), "served": 3}
    assert {a: arms[a]["reward"] for a in projection.arms} == dict.fromkeys(
        projection.arms, 4 / 6
    )  # Beta(1 + 3, 1 + 1)
    bandits = [call for call in rec.calls if call[0] == "bandit"]
    assert len(bandits) == 4 and bandits[-1][3] == arms


def workload(seed: int) -> list:
    rng = random.Random(seed)
    creators = [creator() for _ in range(4)]
    events = [e for _, es in creators for e in es]
    viewers = [UUID(int=rng.getrandbits(128)) for _ in range(30)]
    videos: list[Video] = []
    for n in range(20):
        tags = ("fyp", ("cats", "cars", "cooking")[n % 3])
        v, e = publish(creators[n % 4][0], T0 + timedelta(minutes=10 * n), tags)
        videos.append(v)
        events += e
    for viewer in viewers[:10]:
        f = Following.start(viewer_id=viewer, creator_id=rng.choice(creators)[0].id, occurred_at=T0)
        f.follow(occurred_at=T0 + timedelta(minutes=1))
        events += list(f.collect_events())
    for n in range(400):
        at = T0 + timedelta(minutes=5 + n)
        v = rng.choice(videos[: 1 + n // 20])
        events += view(v, rng.choice(viewers), at, rng.uniform(0, 25), like=rng.random() < 0.2)
    videos[3].remove(case_id=uuid4(), occurred_at=T0 + timedelta(hours=3))
    events += list(videos[3].collect_events())
    events.sort(key=lambda e: e.occurred_at)
    return events


def test_a_restart_from_the_checkpoint_reproduces_an_uninterrupted_run():
    events = workload(seed=5)
    straight = RecordingView()
    run(RecommendationsProjection(), events, straight)

    resumed = RecordingView()
    first = RecommendationsProjection()
    half = len(events) // 2
    run(first, events[:half], resumed)
    second = RecommendationsProjection()  # a new process: state only from the checkpoint
    second.load_state(first.dump_state())
    for position, e in enumerate(events[half:], start=half + 1):
        second.process(e, position, resumed)

    assert resumed.calls == straight.calls
    kinds = {call[0] for call in straight.calls}
    assert kinds == {"item", "viewer", "seen", "metric", "bandit", "hashtag", "shared"}


def test_a_rebuild_reproduces_every_output():
    events = workload(seed=8)
    a, b = RecordingView(), RecordingView()
    run(RecommendationsProjection(), events, a)
    run(RecommendationsProjection(), events, b)
    assert a.calls == b.calls


def test_a_forgotten_viewer_leaves_the_model_and_a_checkpoint_and_may_start_afresh():
    c, events = creator()
    video, published = publish(c, T0, ("cats",))
    other, published_other = publish(c, T0)
    events += published + published_other
    me, them = uuid4(), uuid4()
    follow = Following.start(viewer_id=me, creator_id=c.id, occurred_at=T0)
    follow.follow(occurred_at=T0)
    events += list(follow.collect_events())
    for n in range(5):
        at = T0 + timedelta(minutes=n + 1)
        events += view(video, me, at, watch=20) + view(video, them, at, watch=20)
    projection = RecommendationsProjection()
    run(projection, events, RecordingView())
    s = projection.state
    u = s.viewer_index[me.int]
    assert u in s.model.u_latents and u in s.seen and u in s.following and u in s.tasted

    erasure = Erasure.forget_viewer(viewer_id=me, occurred_at=T0 + timedelta(hours=1))
    rec = RecordingView()
    run(projection, list(erasure.collect_events()), rec)
    assert [c for c in rec.calls if c[0] != "shared"] == [("forget", me)]
    assert me.int not in s.viewer_index and s.viewer_ids[u] == ERASED_VIEWER.int
    assert u not in s.model.u_latents and u not in s.model.u_biases
    assert u not in s.seen and u not in s.following
    assert u not in s.taste and u not in s.tasted
    assert all(v != u for v, _ in s.follow_pairs.values())
    assert s.viewer_index[them.int] in s.model.u_latents  # others keep theirs

    restored = RecommendationsProjection()
    restored.load_state(projection.dump_state())  # the checkpoint does not bring it back
    assert me.int not in restored.state.viewer_index
    assert ERASED_VIEWER.int not in restored.state.viewer_index
    assert restored.state.viewer_index == s.viewer_index

    later = view(other, me, T0 + timedelta(hours=2), watch=20)  # the same id, a new viewer
    run(restored, later, RecordingView())
    assert restored.state.viewer_index[me.int] != u
    assert restored.state.seen[restored.state.viewer_index[me.int]] == {s.video_index[other.id.int]}
