"""Engagement: one viewer's signals on one video."""

import math
from uuid import UUID

import pytest

from domain.creator import Creator
from domain.engagement import (
    DEVICES,
    MAX_REMEMBERED_CLIENT_IDS,
    SHARE_CHANNELS,
    TRAFFIC_SOURCES,
    Engagement,
)
from domain.errors import InvalidValue, InvariantViolation, NotFound
from domain.video import REPLAY_FACTOR, Video

from .given_when_then import T0, at, given, history, rejected, when, when_rejected

CREATOR_ID = UUID(int=100)
VIDEO_ID = UUID(int=200)
OTHER_VIDEO_ID = UUID(int=201)
VIEWER_ID = UUID(int=400)
COMMENT_1, COMMENT_2 = UUID(int=501), UUID(int=502)
DURATION = 10.0

CREATOR = given(
    history(
        Creator.register(
            creator_id=CREATOR_ID, handle="ann", display_name="Ann", region="SE", occurred_at=T0
        )
    )
)


def video(*past, video_id: UUID = VIDEO_ID) -> Video:
    """The video as the engagement command sees it, after its own past events."""
    published = Video.publish(
        video_id=video_id,
        creator=CREATOR,
        caption="clip",
        hashtags=[],
        sound_id=None,
        duration_seconds=DURATION,
        occurred_at=T0,
    )
    return given(history(published, *past))


def removed(v):
    v.remove(case_id=UUID(int=1), occurred_at=at(1))


def restricted(v):
    v.restrict(case_id=UUID(int=1), occurred_at=at(1))


def deleted(v):
    v.delete_by_creator(occurred_at=at(1))


ACTIVE = video()


def started() -> Engagement:
    return Engagement.start(viewer_id=VIEWER_ID, video=ACTIVE, occurred_at=at(2))


def view(watch_seconds: float = 5.0, v: Video = ACTIVE, client_event_id: str | None = None, **kw):
    fields = {
        "completed": False,
        "traffic_source": "for_you",
        "device": "ios",
        "occurred_at": at(3),
    }
    fields.update(kw)
    return lambda e: e.view(
        v, watch_seconds=watch_seconds, client_event_id=client_event_id, **fields
    )


def like(v: Video = ACTIVE, client_event_id: str | None = None, occurred_at=None):
    return lambda e: e.like(v, occurred_at=occurred_at or at(4), client_event_id=client_event_id)


def unlike(v: Video = ACTIVE, client_event_id: str | None = None):
    return lambda e: e.unlike(v, occurred_at=at(5), client_event_id=client_event_id)


def share(channel: str = "whatsapp", v: Video = ACTIVE, client_event_id: str | None = None):
    return lambda e: e.share(v, channel=channel, occurred_at=at(6), client_event_id=client_event_id)


def comment(
    comment_id: UUID = COMMENT_1, text: str = "nice", v: Video = ACTIVE, client_event_id=None
):
    return lambda e: e.comment(
        v, comment_id=comment_id, text=text, occurred_at=at(7), client_event_id=client_event_id
    )


def delete_comment(comment_id: UUID = COMMENT_1):
    return lambda e: e.delete_comment(comment_id=comment_id, occurred_at=at(8))


# -- starting a stream ---------------------------------------------------------------------


def test_start_records_the_pair_and_the_videos_creator():
    [event] = started().collect_events()

    assert type(event) is Engagement.Started
    assert event.originator_id == Engagement.create_id(VIEWER_ID, VIDEO_ID)
    assert (event.viewer_id, event.video_id, event.creator_id) == (VIEWER_ID, VIDEO_ID, CREATOR_ID)


def test_stream_id_is_deterministic_per_viewer_and_video():
    assert Engagement.create_id(VIEWER_ID, VIDEO_ID) == Engagement.create_id(VIEWER_ID, VIDEO_ID)
    assert Engagement.create_id(VIEWER_ID, VIDEO_ID) != Engagement.create_id(
        VIEWER_ID, OTHER_VIDEO_ID
    )
    assert Engagement.create_id(VIEWER_ID, VIDEO_ID) != Engagement.create_id(VIDEO_ID, VIEWER_ID)


@pytest.mark.parametrize("past", [(removed,), (deleted,)])
def test_no_stream_starts_on_a_removed_or_deleted_video(past):
    unavailable = video(*past)

    rejected(
        lambda: Engagement.start(viewer_id=VIEWER_ID, video=unavailable, occurred_at=at(2)),
        InvariantViolation,
        "video_unavailable",
    )


@pytest.mark.parametrize("past", [(removed,), (deleted,)])
@pytest.mark.parametrize(
    "signal",
    [
        lambda v: view(v=v),
        lambda v: like(v=v),
        lambda v: share(v=v),
        lambda v: comment(v=v),
    ],
)
def test_removed_or_deleted_video_accepts_no_new_engagement(past, signal):
    engagement = given(history(started()))

    when_rejected(engagement, signal(video(*past)), InvariantViolation, "video_unavailable")


def test_restricted_video_still_accepts_engagement():
    engagement = given(history(started()))

    then = when(engagement, like(v=video(restricted)))

    assert then.types == [Engagement.Liked]


def test_a_signal_for_another_video_is_a_programming_error():
    engagement = given(history(started()))

    with pytest.raises(ValueError):
        like(v=video(video_id=OTHER_VIDEO_ID))(engagement)
    assert engagement.collect_events() == []


# -- likes ---------------------------------------------------------------------------------


def test_like_is_recorded():
    engagement = given(history(started()))

    then = when(engagement, like(client_event_id="c-1"))

    assert then.result is True
    assert then.types == [Engagement.Liked]
    assert then.events[0].client_event_id == "c-1"
    assert engagement.liked


def test_like_at_most_once():
    engagement = given(history(started(), like()))

    when_rejected(engagement, like(), InvariantViolation, "already_liked")


def test_unlike_what_was_liked():
    engagement = given(history(started(), like()))

    then = when(engagement, unlike())

    assert then.types == [Engagement.Unliked]
    assert not engagement.liked


@pytest.mark.parametrize("past", [(), (like(), unlike())])
def test_unlike_only_what_is_liked(past):
    engagement = given(history(started(), *past))

    when_rejected(engagement, unlike(), InvariantViolation, "not_liked")


def test_like_again_after_unlike():
    engagement = given(history(started(), like(), unlike()))

    assert when(engagement, like()).types == [Engagement.Liked]


# -- views ---------------------------------------------------------------------------------


def test_view_is_recorded():
    engagement = given(history(started()))

    then = when(engagement, view(7.5, completed=True, traffic_source="search", device="web"))

    assert then.types == [Engagement.Viewed]
    event = then.events[0]
    assert (event.watch_seconds, event.completed, event.traffic_source, event.device) == (
        7.5,
        True,
        "search",
        "web",
    )
    assert engagement.views == 1


@pytest.mark.parametrize("watch_seconds", [0.0, DURATION + 1, DURATION * REPLAY_FACTOR])
def test_watch_time_from_zero_to_duration_times_replay_factor(watch_seconds):
    engagement = given(history(started()))

    assert when(engagement, view(watch_seconds)).types == [Engagement.Viewed]


@pytest.mark.parametrize(
    "watch_seconds", [-0.001, DURATION * REPLAY_FACTOR + 0.001, math.nan, math.inf]
)
def test_watch_time_out_of_bounds_is_rejected(watch_seconds):
    engagement = given(history(started()))

    when_rejected(engagement, view(watch_seconds), InvalidValue, "invalid_watch_time")


@pytest.mark.parametrize(
    ("field", "allowed"), [("traffic_source", TRAFFIC_SOURCES), ("device", DEVICES)]
)
def test_view_enums(field, allowed):
    engagement = given(history(started()))

    for value in sorted(allowed):
        assert when(engagement, view(**{field: value})).types == [Engagement.Viewed]
    when_rejected(engagement, view(**{field: "FOR_YOU"}), InvalidValue, f"invalid_{field}")
    when_rejected(engagement, view(**{field: "fridge"}), InvalidValue, f"invalid_{field}")


# -- shares --------------------------------------------------------------------------------


def test_share_channels():
    engagement = given(history(started()))

    for channel in sorted(SHARE_CHANNELS):
        then = when(engagement, share(channel))
        assert then.types == [Engagement.Shared]
        assert then.events[0].channel == channel
    when_rejected(engagement, share("carrier_pigeon"), InvalidValue, "invalid_channel")


# -- comments ------------------------------------------------------------------------------


def test_comment_is_recorded():
    engagement = given(history(started()))

    then = when(engagement, comment(text="  so good  "))

    assert then.types == [Engagement.Commented]
    assert (then.events[0].comment_id, then.events[0].text) == (COMMENT_1, "so good")


@pytest.mark.parametrize(("text", "code"), [(" ", "empty_text"), ("x" * 2201, "text_too_long")])
def test_comment_text_must_be_1_to_2200_characters(text, code):
    engagement = given(history(started()))

    when_rejected(engagement, comment(text=text), InvalidValue, code)


def test_comment_id_of_a_live_comment_cannot_be_reused():
    engagement = given(history(started(), comment(COMMENT_1)))

    when_rejected(engagement, comment(COMMENT_1), InvariantViolation, "duplicate_comment")


def test_comment_id_of_a_deleted_comment_cannot_be_reused():
    engagement = given(history(started(), comment(COMMENT_1), delete_comment(COMMENT_1)))

    when_rejected(engagement, comment(COMMENT_1), InvariantViolation, "duplicate_comment")


def test_delete_own_comment():
    engagement = given(history(started(), comment(COMMENT_1), comment(COMMENT_2)))

    then = when(engagement, delete_comment(COMMENT_1))

    assert then.types == [Engagement.CommentDeleted]
    assert then.events[0].comment_id == COMMENT_1
    assert engagement.comments == [COMMENT_2]


@pytest.mark.parametrize(
    "past", [(), (comment(COMMENT_2),), (comment(COMMENT_1), delete_comment())]
)
def test_delete_comment_needs_a_live_comment(past):
    engagement = given(history(started(), *past))

    when_rejected(engagement, delete_comment(COMMENT_1), NotFound, "comment_not_found")


# -- redelivery (client event ids) ---------------------------------------------------------


@pytest.mark.parametrize(
    "signal",
    [
        lambda cid: view(client_event_id=cid),
        lambda cid: like(client_event_id=cid),
        lambda cid: share(client_event_id=cid),
        lambda cid: comment(COMMENT_2, client_event_id=cid),
    ],
)
def test_a_redelivered_client_event_is_dropped(signal):
    engagement = given(history(started(), comment(COMMENT_1, client_event_id="dup")))

    then = when(engagement, signal("dup"))

    assert then.result is False
    assert then.events == []


def test_a_redelivered_like_is_dropped_not_rejected():
    engagement = given(history(started(), like(client_event_id="c-1")))

    then = when(engagement, like(client_event_id="c-1"))

    assert (then.result, then.events) == (False, [])


def test_a_redelivered_unlike_is_dropped():
    engagement = given(history(started(), like(), unlike(client_event_id="c-2")))

    then = when(engagement, unlike(client_event_id="c-2"))

    assert (then.result, then.events) == (False, [])


def test_a_redelivery_after_removal_is_still_just_dropped():
    engagement = given(history(started(), like(client_event_id="c-1")))

    then = when(engagement, like(v=video(removed), client_event_id="c-1"))

    assert (then.result, then.events) == (False, [])


def test_signals_without_client_event_id_are_not_deduplicated():
    engagement = given(history(started(), view()))

    assert when(engagement, view()).types == [Engagement.Viewed]
    assert engagement.views == 2


def test_only_the_most_recent_client_event_ids_are_remembered():
    recent = [view(client_event_id=f"v-{i}") for i in range(MAX_REMEMBERED_CLIENT_IDS + 1)]
    engagement = given(history(started(), *recent))

    assert len(engagement.client_event_ids) == MAX_REMEMBERED_CLIENT_IDS
    assert not engagement.has_seen("v-0")
    assert engagement.has_seen(f"v-{MAX_REMEMBERED_CLIENT_IDS}")


@pytest.mark.parametrize("client_event_id", ["", "x" * 65])
def test_client_event_id_must_be_1_to_64_characters(client_event_id):
    engagement = given(history(started()))

    when_rejected(
        engagement, like(client_event_id=client_event_id), InvalidValue, "invalid_client_event_id"
    )


# -- event time ----------------------------------------------------------------------------


NAIVE = T0.replace(tzinfo=None)


@pytest.mark.parametrize(
    "signal",
    [
        view(occurred_at=NAIVE),
        like(occurred_at=NAIVE),
        lambda e: e.share(ACTIVE, channel="sms", occurred_at=NAIVE),
        lambda e: e.comment(ACTIVE, comment_id=COMMENT_2, text="hi", occurred_at=NAIVE),
        lambda e: e.delete_comment(comment_id=COMMENT_1, occurred_at=NAIVE),
    ],
)
def test_event_time_must_be_timezone_aware(signal):
    engagement = given(history(started(), comment(COMMENT_1)))

    when_rejected(engagement, signal, InvalidValue, "naive_event_time")


def test_start_time_must_be_timezone_aware():
    rejected(
        lambda: Engagement.start(viewer_id=VIEWER_ID, video=ACTIVE, occurred_at=NAIVE),
        InvalidValue,
        "naive_event_time",
    )


def test_unlike_time_must_be_timezone_aware():
    engagement = given(history(started(), like()))

    when_rejected(
        engagement, lambda e: e.unlike(ACTIVE, occurred_at=NAIVE), InvalidValue, "naive_event_time"
    )
