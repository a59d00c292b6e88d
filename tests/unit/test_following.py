"""Following: one viewer's follow relationship with one creator."""

from uuid import UUID

import pytest

from domain.errors import InvalidValue, InvariantViolation
from domain.following import Following

from .given_when_then import T0, at, given, history, rejected, when, when_rejected

VIEWER_ID = UUID(int=400)
CREATOR_ID = UUID(int=100)


def started() -> Following:
    return Following.start(viewer_id=VIEWER_ID, creator_id=CREATOR_ID, occurred_at=T0)


def follow(f):
    return f.follow(occurred_at=at(1))


def unfollow(f):
    return f.unfollow(occurred_at=at(2))


def test_start_records_the_pair_not_yet_following():
    relationship = started()

    [event] = relationship.collect_events()

    assert type(event) is Following.Started
    assert (event.viewer_id, event.creator_id) == (VIEWER_ID, CREATOR_ID)
    assert not relationship.following


def test_stream_id_is_deterministic_and_directed():
    assert Following.create_id(VIEWER_ID, CREATOR_ID) == Following.create_id(VIEWER_ID, CREATOR_ID)
    assert Following.create_id(VIEWER_ID, CREATOR_ID) != Following.create_id(CREATOR_ID, VIEWER_ID)


def test_cannot_follow_self():
    rejected(
        lambda: Following.start(viewer_id=VIEWER_ID, creator_id=VIEWER_ID, occurred_at=T0),
        InvariantViolation,
        "self_follow",
    )


def test_follow():
    relationship = given(history(started()))

    then = when(relationship, lambda f: f.follow(occurred_at=at(1), client_event_id="c-1"))

    assert then.result is True
    assert then.types == [Following.Followed]
    assert then.events[0].client_event_id == "c-1"
    assert then.events[0].occurred_at == at(1)
    assert relationship.following


def test_cannot_follow_twice():
    relationship = given(history(started(), follow))

    when_rejected(relationship, follow, InvariantViolation, "already_following")


def test_unfollow():
    relationship = given(history(started(), follow))

    then = when(relationship, unfollow)

    assert then.types == [Following.Unfollowed]
    assert not relationship.following


@pytest.mark.parametrize("past", [(), (follow, unfollow)])
def test_cannot_unfollow_when_not_following(past):
    relationship = given(history(started(), *past))

    when_rejected(relationship, unfollow, InvariantViolation, "not_following")


def test_follow_again_after_unfollow():
    relationship = given(history(started(), follow, unfollow))

    assert when(relationship, follow).types == [Following.Followed]


@pytest.mark.parametrize(
    ("past", "command"),
    [
        ((), lambda f: f.follow(occurred_at=at(3), client_event_id="c-1")),
        ((unfollow,), lambda f: f.follow(occurred_at=at(3), client_event_id="c-1")),
        ((), lambda f: f.unfollow(occurred_at=at(3), client_event_id="c-1")),
    ],
)
def test_a_redelivered_client_event_is_dropped(past, command):
    # Redelivered, not rejected: even where following again would be allowed (or where
    # unfollowing now would be), the same client event is recorded once.
    relationship = given(
        history(started(), lambda f: f.follow(occurred_at=at(1), client_event_id="c-1"), *past)
    )

    then = when(relationship, command)

    assert (then.result, then.events) == (False, [])


def test_signals_without_client_event_id_are_not_deduplicated():
    past = history(
        started(), lambda f: f.follow(occurred_at=at(1), client_event_id="c-1"), unfollow
    )
    relationship = given(past)

    assert when(relationship, follow).result is True


def test_event_time_must_be_timezone_aware():
    naive = T0.replace(tzinfo=None)
    rejected(
        lambda: Following.start(viewer_id=VIEWER_ID, creator_id=CREATOR_ID, occurred_at=naive),
        InvalidValue,
        "naive_event_time",
    )
    relationship = given(history(started()))
    when_rejected(
        relationship, lambda f: f.follow(occurred_at=naive), InvalidValue, "naive_event_time"
    )
