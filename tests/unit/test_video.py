"""Video: publishing rules, hashtag normalisation and moderation status transitions."""

import math
from uuid import UUID

import pytest

from domain.creator import Creator
from domain.errors import InvalidValue, InvariantViolation
from domain.values import MAX_CAPTION_LENGTH, MAX_HASHTAG_LENGTH, MAX_HASHTAGS
from domain.video import MAX_DURATION_SECONDS, Video, VideoStatus

from .given_when_then import T0, at, given, history, rejected, when, when_rejected

CREATOR_ID = UUID(int=100)
VIDEO_ID = UUID(int=200)
CASE_ID = UUID(int=300)


def creator() -> Creator:
    return given(
        history(
            Creator.register(
                creator_id=CREATOR_ID, handle="ann", display_name="Ann", region="SE", occurred_at=T0
            )
        )
    )


def published(**overrides: object) -> Video:
    fields: dict[str, object] = {
        "video_id": VIDEO_ID,
        "creator": creator(),
        "caption": "first dance",
        "hashtags": ["dance"],
        "sound_id": "sound-1",
        "duration_seconds": 10,
        "occurred_at": at(1),
    }
    fields.update(overrides)
    return Video.publish(**fields)  # type: ignore[arg-type]


def hashtags_of(raw: list[str]) -> list[str]:
    [event] = published(hashtags=raw).collect_events()
    return event.hashtags


def restrict(v):
    return v.restrict(case_id=CASE_ID, occurred_at=at(2))


def remove(v):
    return v.remove(case_id=CASE_ID, occurred_at=at(3))


def restore(v):
    return v.restore(case_id=CASE_ID, occurred_at=at(4))


def delete(v):
    return v.delete_by_creator(occurred_at=at(5))


# -- publishing ----------------------------------------------------------------------------


def test_publish_records_the_video_with_its_creator():
    [event] = published(caption="  first dance \n", duration_seconds=12).collect_events()

    assert type(event) is Video.Published
    assert event.originator_id == VIDEO_ID
    assert event.creator_id == CREATOR_ID
    assert event.caption == "first dance"
    assert event.duration_seconds == 12.0
    assert event.sound_id == "sound-1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["#Dance", "DANCE", "dance "], ["dance"]),  # '#', case and whitespace
        (["#Straße"], ["strasse"]),  # case folding, not just lower()
        (["\uff44\uff41\uff4e\uff43\uff45"], ["dance"]),  # NFKC: full-width "dance"
        (["#\ufb01tness"], ["fitness"]),  # NFKC: "fi" ligature
        (["dance-challenge!"], ["dancechallenge"]),  # only word characters
        (["b", "a", "B"], ["b", "a"]),  # de-duplicated, first-seen order kept
        (["日本", "#日本"], ["日本"]),  # unicode word characters are kept
    ],
)
def test_hashtags_are_normalised(raw, expected):
    assert hashtags_of(raw) == expected


@pytest.mark.parametrize("raw", ["#", "  ", "!!!", "#" + "x" * (MAX_HASHTAG_LENGTH + 1)])
def test_hashtag_must_be_1_to_100_word_characters(raw):
    rejected(lambda: published(hashtags=[raw]), InvalidValue, "invalid_hashtag")


def test_hashtag_of_100_characters_is_accepted():
    assert hashtags_of(["#" + "x" * MAX_HASHTAG_LENGTH]) == ["x" * MAX_HASHTAG_LENGTH]


def test_at_most_30_distinct_hashtags():
    assert MAX_HASHTAGS == 30
    thirty = [f"tag{i}" for i in range(30)]

    assert hashtags_of(thirty) == thirty
    rejected(lambda: published(hashtags=[*thirty, "tag30"]), InvalidValue, "too_many_hashtags")


def test_duplicates_do_not_count_towards_the_hashtag_limit():
    thirty = [f"tag{i}" for i in range(30)]

    assert hashtags_of([*thirty, "#TAG0", "Tag1"]) == thirty


def test_caption_length_is_bounded():
    assert MAX_CAPTION_LENGTH == 2200

    assert len(published(caption="x" * 2200).caption) == 2200
    rejected(lambda: published(caption="x" * 2201), InvalidValue, "caption_too_long")


def test_caption_is_measured_after_normalisation():
    # 'e' + combining acute is one character once NFC-composed; padding is stripped.
    decomposed = "e\u0301" * MAX_CAPTION_LENGTH

    video = published(caption=f"  {decomposed}  ")

    assert video.caption == "\u00e9" * MAX_CAPTION_LENGTH


@pytest.mark.parametrize("duration", [0, -1, MAX_DURATION_SECONDS + 0.001, math.nan, math.inf])
def test_duration_must_be_positive_and_at_most_ten_minutes(duration):
    rejected(lambda: published(duration_seconds=duration), InvalidValue, "invalid_duration")


@pytest.mark.parametrize("duration", [0.1, MAX_DURATION_SECONDS])
def test_duration_bounds(duration):
    assert published(duration_seconds=duration).duration_seconds == duration


@pytest.mark.parametrize("sound_id", ["", "s" * 65])
def test_sound_id_must_be_1_to_64_characters(sound_id):
    rejected(lambda: published(sound_id=sound_id), InvalidValue, "invalid_sound_id")


@pytest.mark.parametrize("sound_id", [None, "s" * 64])
def test_sound_id_is_optional(sound_id):
    assert published(sound_id=sound_id).sound_id == sound_id


def test_publish_time_must_be_timezone_aware():
    naive = at(1).replace(tzinfo=None)
    rejected(lambda: published(occurred_at=naive), InvalidValue, "naive_event_time")


def test_a_suspended_creator_cannot_publish():
    suspended = creator()
    suspended.suspend(reason="fraud", occurred_at=T0)

    rejected(lambda: published(creator=suspended), InvariantViolation, "creator_suspended")


# -- engagement availability ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("past", "status"),
    [((), VideoStatus.ACTIVE), ((restrict,), VideoStatus.RESTRICTED)],
)
def test_active_and_restricted_videos_accept_engagement(past, status):
    video = given(history(published(), *past))

    assert video.status == status
    video.ensure_accepts_engagement()
    assert video.accepts_engagement


@pytest.mark.parametrize(
    ("past", "status"),
    [((remove,), VideoStatus.REMOVED), ((delete,), VideoStatus.DELETED)],
)
def test_removed_and_deleted_videos_accept_no_new_engagement(past, status):
    video = given(history(published(), *past))

    assert video.status == status
    assert not video.accepts_engagement
    rejected(video.ensure_accepts_engagement, InvariantViolation, "video_unavailable")


def test_watch_time_limit_is_duration_times_replay_factor():
    video = given(history(published(duration_seconds=12)))

    assert video.max_watch_seconds == 60.0


# -- moderation transitions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("past", "command", "event_type", "status"),
    [
        ((), restrict, Video.Restricted, VideoStatus.RESTRICTED),
        ((), remove, Video.Removed, VideoStatus.REMOVED),
        ((restrict,), remove, Video.Removed, VideoStatus.REMOVED),
        ((restrict,), restore, Video.Restored, VideoStatus.ACTIVE),
        ((remove,), restore, Video.Restored, VideoStatus.ACTIVE),
        ((restrict,), delete, Video.DeletedByCreator, VideoStatus.DELETED),
        ((remove,), delete, Video.DeletedByCreator, VideoStatus.DELETED),
    ],
)
def test_moderation_transitions(past, command, event_type, status):
    video = given(history(published(), *past))

    then = when(video, command)

    assert then.types == [event_type]
    assert video.status == status
    if event_type is not Video.DeletedByCreator:
        assert then.result is True
        assert then.events[0].case_id == CASE_ID


@pytest.mark.parametrize(
    ("past", "command"),
    [
        ((restrict,), restrict),  # already restricted
        ((remove,), restrict),  # a removed video is not "less removed" by a restriction
        ((delete,), restrict),
        ((remove,), remove),  # already removed
        ((delete,), remove),
        ((), restore),  # nothing to restore
        ((delete,), restore),  # moderation never brings back a creator's deleted video
    ],
)
def test_moderation_transition_that_changes_nothing_returns_false(past, command):
    video = given(history(published(), *past))
    status = video.status

    then = when(video, command)

    assert then.result is False
    assert then.events == []
    assert video.status == status


def test_moderation_times_must_be_timezone_aware():
    video = given(history(published()))

    when_rejected(
        video,
        lambda v: v.remove(case_id=CASE_ID, occurred_at=T0.replace(tzinfo=None)),
        InvalidValue,
        "naive_event_time",
    )


def test_delete_twice_is_rejected():
    video = given(history(published(), delete))

    when_rejected(video, delete, InvariantViolation, "already_deleted")


# -- caption edits -------------------------------------------------------------------------


@pytest.mark.parametrize("past", [(), (restrict,)])
def test_edit_caption_records_normalised_caption_and_hashtags(past):
    video = given(history(published(), *past))

    then = when(
        video,
        lambda v: v.edit_caption(caption=" new ", hashtags=["#New", "new"], occurred_at=at(9)),
    )

    assert then.types == [Video.CaptionEdited]
    assert (then.events[0].caption, then.events[0].hashtags) == ("new", ["new"])
    assert (video.caption, video.hashtags) == ("new", ["new"])


@pytest.mark.parametrize("past", [(remove,), (delete,)])
def test_removed_or_deleted_video_cannot_be_edited(past):
    video = given(history(published(), *past))

    when_rejected(
        video,
        lambda v: v.edit_caption(caption="new", hashtags=[], occurred_at=at(9)),
        InvariantViolation,
        "video_unavailable",
    )


def test_edit_caption_validates_like_publish():
    video = given(history(published()))

    when_rejected(
        video,
        lambda v: v.edit_caption(caption="x" * 2201, hashtags=[], occurred_at=at(9)),
        InvalidValue,
        "caption_too_long",
    )
    when_rejected(
        video,
        lambda v: v.edit_caption(caption="x", hashtags=["#"], occurred_at=at(9)),
        InvalidValue,
        "invalid_hashtag",
    )
