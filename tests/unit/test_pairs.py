"""Differential tests: the lean pair states decide exactly what the aggregates decide.

Random signal sequences (valid and invalid values, redelivered client ids, the video
removed and restored in between) go to the Engagement / Following aggregate (the
reference) and to PairState / FollowState. After every step both must agree: nothing
recorded for a redelivery, the same error (type, code, message) for a rejection, and
otherwise the same stored event (topic, version, state bytes through the library's
mapper, with the aggregate's timestamp given to the lean side). At the end both hold the
same attributes, and a state rebuilt from the aggregate's stored events equals them.
"""

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    Mapper,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.eventstore.codec import OrjsonTranscoder
from domain.creator import Creator
from domain.engagement import Engagement
from domain.errors import DomainError
from domain.following import Following
from domain.pairs import FollowState, NewEvent, PairState, VideoFacts
from domain.video import Video

from .given_when_then import T0, at


def mapper() -> Mapper[Any]:
    transcoder = OrjsonTranscoder()
    for t in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(t)
    return Mapper(transcoder=transcoder)


MAPPER = mapper()
VIEWER, CREATOR, VIDEO = UUID(int=400), UUID(int=100), UUID(int=200)
COMMENT_IDS = [UUID(int=500 + i) for i in range(3)]
CLIENT_IDS = [None, None, "c1", "c2", "c3", "x" * 65]


def a_video(duration: float = 10.0) -> Video:
    creator = Creator.register(
        creator_id=CREATOR, handle="ann", display_name="Ann", region="SE", occurred_at=T0
    )
    video = Video.publish(
        video_id=VIDEO, creator=creator, caption="clip", hashtags=[], sound_id=None,
        duration_seconds=duration, occurred_at=T0,
    )  # fmt: skip
    video.collect_events()
    return video


def stored(event: Any) -> tuple[str, int, bytes]:
    s = MAPPER.to_stored_event(event)
    return s.topic, s.originator_version, s.state


def lean_stored(event: NewEvent) -> tuple[str, int, bytes]:
    return event.topic, event.originator_version, MAPPER.transcoder.encode(event.state)


def outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except DomainError as e:
        return ("error", type(e), e.code, e.message)


engagement_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("view"),
            st.sampled_from([0.0, 3.5, 50.0, 50.5, -1.0]),
            st.booleans(),
            st.sampled_from(["for_you", "search", "tiktok"]),
            st.sampled_from(["ios", "fridge"]),
            st.sampled_from(CLIENT_IDS),
        ),
        st.tuples(st.sampled_from(["like", "unlike"]), st.sampled_from(CLIENT_IDS)),
        st.tuples(
            st.just("share"), st.sampled_from(["x", "sms", "pigeon"]), st.sampled_from(CLIENT_IDS)
        ),
        st.tuples(
            st.just("comment"),
            st.sampled_from(COMMENT_IDS),
            st.sampled_from(["nice", "  ", "y" * 2300, " padded "]),
            st.sampled_from(CLIENT_IDS),
        ),
        st.tuples(st.just("delete_comment"), st.sampled_from(COMMENT_IDS)),
        st.tuples(st.sampled_from(["remove", "restore", "restrict", "delete_video"])),
    ),
    max_size=40,
)


def apply_to_both(step: tuple, n: int, video: Video, agg: Engagement, lean: PairState) -> list[Any]:
    """One step on both; returns the events the aggregate recorded."""
    kind, *args = step
    when = at(n)
    if kind in ("remove", "restore", "restrict", "delete_video"):
        case = UUID(int=1)
        {"remove": lambda: video.remove(case_id=case, occurred_at=when),
         "restore": lambda: video.restore(case_id=case, occurred_at=when),
         "restrict": lambda: video.restrict(case_id=case, occurred_at=when),
         "delete_video": lambda: outcome(lambda: video.delete_by_creator(occurred_at=when)),
         }[kind]()  # fmt: skip
        video.collect_events()
        return []
    facts = VideoFacts.of(video)
    if kind == "view":
        ws, done, source, device, cid = args
        a = outcome(lambda: agg.view(video, watch_seconds=ws, completed=done,
                                     traffic_source=source, device=device, occurred_at=when,
                                     client_event_id=cid))  # fmt: skip
        events = agg.collect_events()
        now = events[0].timestamp if events else when
        b = outcome(lambda: lean.view(facts, ws, done, source, device, when, cid, now))
    elif kind in ("like", "unlike"):
        (cid,) = args
        a = outcome(lambda: getattr(agg, kind)(video, occurred_at=when, client_event_id=cid))
        events = agg.collect_events()
        now = events[0].timestamp if events else when
        b = outcome(lambda: getattr(lean, kind)(facts, when, cid, now))
    elif kind == "share":
        channel, cid = args
        a = outcome(
            lambda: agg.share(video, channel=channel, occurred_at=when, client_event_id=cid)
        )
        events = agg.collect_events()
        now = events[0].timestamp if events else when
        b = outcome(lambda: lean.share(facts, channel, when, cid, now))
    elif kind == "comment":
        comment_id, text, cid = args
        a = outcome(lambda: agg.comment(video, comment_id=comment_id, text=text,
                                        occurred_at=when, client_event_id=cid))  # fmt: skip
        events = agg.collect_events()
        now = events[0].timestamp if events else when
        b = outcome(lambda: lean.comment(facts, comment_id, text, when, cid, now))
    else:
        (comment_id,) = args
        a = outcome(lambda: agg.delete_comment(comment_id=comment_id, occurred_at=when))
        events = agg.collect_events()
        now = events[0].timestamp if events else when
        b = outcome(lambda: lean.delete_comment(comment_id, when, now))
    compare(a, b, events)
    return events


def compare(a: Any, b: Any, events: list[Any]) -> None:
    if a[0] == "error":
        assert b == a and not events
        return
    assert b[0] == "ok"
    recorded = a[1] is not False  # delete_comment returns None and always records
    if not recorded:
        assert b[1] is None and not events
        return
    [event] = events
    assert lean_stored(b[1]) == stored(event)


@settings(max_examples=300, deadline=None)
@given(engagement_steps)
def test_engagement_pair_decides_like_the_aggregate(steps):
    video = a_video()
    agg = Engagement.start(viewer_id=VIEWER, video=video, occurred_at=T0)
    [started] = agg.collect_events()
    pair_id = Engagement.create_id(VIEWER, VIDEO)
    lean, event = PairState.start(pair_id, VIEWER, VideoFacts.of(video), T0, started.timestamp)
    assert lean_stored(event) == stored(started)
    history = [started]

    for n, step in enumerate(steps, start=1):
        history.extend(apply_to_both(step, n, video, agg, lean))

    assert lean.attributes() == {k: v for k, v in vars(agg).items() if k != "_pending_events"}
    rebuilt = PairState.from_aggregate(project_aggregate(None, [
        MAPPER.to_domain_event(MAPPER.to_stored_event(e)) for e in history
    ]))  # fmt: skip
    assert rebuilt.attributes() == lean.attributes()


def test_redelivery_memory_is_bounded_like_the_aggregate():
    video = a_video(duration=600)
    agg = Engagement.start(viewer_id=VIEWER, video=video, occurred_at=T0)
    [started] = agg.collect_events()
    lean, _ = PairState.start(started.originator_id, VIEWER, VideoFacts.of(video), T0, T0)
    for i in range(300):
        cid = f"id-{i}"
        agg.view(video, watch_seconds=1, completed=False, traffic_source="for_you",
                 device="ios", occurred_at=at(i), client_event_id=cid)  # fmt: skip
        lean.view(VideoFacts.of(video), 1, False, "for_you", "ios", at(i), cid, T0)
    assert lean.client_event_ids == agg.client_event_ids
    assert lean.has_seen("id-299") and not lean.has_seen("id-0")
    assert lean.has_seen("id-44") == agg.has_seen("id-44")


def test_start_on_a_removed_video_is_refused_like_the_aggregate():
    video = a_video()
    video.remove(case_id=UUID(int=1), occurred_at=at(1))
    with pytest.raises(DomainError) as reference:
        Engagement.start(viewer_id=VIEWER, video=video, occurred_at=T0)
    with pytest.raises(DomainError) as lean:
        PairState.start(UUID(int=9), VIEWER, VideoFacts.of(video), T0, T0)
    assert (lean.value.code, lean.value.message) == (reference.value.code, reference.value.message)


follow_steps = st.lists(
    st.tuples(st.sampled_from(["follow", "unfollow"]), st.sampled_from(CLIENT_IDS)), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(follow_steps)
def test_follow_pair_decides_like_the_aggregate(steps):
    agg = Following.start(viewer_id=VIEWER, creator_id=CREATOR, occurred_at=T0)
    [started] = agg.collect_events()
    lean, event = FollowState.start(started.originator_id, VIEWER, CREATOR, T0, started.timestamp)
    assert lean_stored(event) == stored(started)
    for n, (kind, cid) in enumerate(steps, start=1):
        when = T0 + timedelta(minutes=n)
        a = outcome(lambda: getattr(agg, kind)(occurred_at=when, client_event_id=cid))  # noqa: B023
        events = agg.collect_events()
        now = events[0].timestamp if events else when
        b = outcome(lambda: getattr(lean, kind)(when, cid, now))  # noqa: B023
        compare(a, b, events)
    assert lean.attributes() == {k: v for k, v in vars(agg).items() if k != "_pending_events"}


def test_self_follow_is_refused_like_the_aggregate():
    with pytest.raises(DomainError) as reference:
        Following.start(viewer_id=VIEWER, creator_id=VIEWER, occurred_at=T0)
    with pytest.raises(DomainError) as lean:
        FollowState.start(UUID(int=9), VIEWER, VIEWER, T0, T0)
    assert (lean.value.code, lean.value.message) == (reference.value.code, reference.value.message)
