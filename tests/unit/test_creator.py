"""Creator: profile validation, strikes, suspension and reinstatement."""

from uuid import UUID, uuid4

import pytest

from domain.creator import STRIKES_TO_SUSPEND, Creator
from domain.errors import InvalidValue, InvariantViolation
from domain.video import Video

from .given_when_then import T0, at, given, history, rejected, when, when_rejected

CREATOR_ID = UUID("00000000-0000-4000-8000-00000000c0de")
CASE_1, CASE_2, CASE_3, CASE_4 = (UUID(int=n) for n in range(1, 5))


def registered(**overrides: object) -> Creator:
    fields: dict[str, object] = {
        "creator_id": CREATOR_ID,
        "handle": "dance.queen",
        "display_name": "Dance Queen",
        "region": "SE",
        "occurred_at": T0,
    }
    fields.update(overrides)
    return Creator.register(**fields)  # type: ignore[arg-type]


def strike(case_id: UUID, minute: int = 1):
    return lambda c: c.issue_strike(case_id=case_id, reason="spam policy", occurred_at=at(minute))


def withdraw(case_id: UUID, minute: int = 10):
    return lambda c: c.withdraw_strike(case_id=case_id, occurred_at=at(minute))


def suspend(reason: str = "fraud investigation"):
    return lambda c: c.suspend(reason=reason, occurred_at=at(5))


def reinstate(reason: str = "cleared"):
    return lambda c: c.reinstate(reason=reason, occurred_at=at(6))


# -- registration --------------------------------------------------------------------------


def test_register_records_normalised_profile():
    creator = registered(handle=" @Dance.Queen ", display_name="  Dance Queen ", region=" se ")

    [event] = creator.collect_events()

    assert type(event) is Creator.Registered
    assert event.originator_id == CREATOR_ID
    assert (event.handle, event.display_name, event.region) == ("dance.queen", "Dance Queen", "SE")
    assert event.occurred_at == T0


@pytest.mark.parametrize(
    "handle",
    ["a", "x" * 25, "dance queen", "dance-queen", "émilie", "", "@"],
)
def test_handle_must_be_2_to_24_safe_characters(handle):
    rejected(lambda: registered(handle=handle), InvalidValue, "invalid_handle")


@pytest.mark.parametrize("handle", ["ab", "x" * 24, "a.b_c9"])
def test_handle_bounds_are_inclusive(handle):
    assert registered(handle=handle).handle == handle


@pytest.mark.parametrize("region", ["SWE", "S", "", "S1", "12", "S E"])
def test_region_must_be_an_alpha_2_code(region):
    rejected(lambda: registered(region=region), InvalidValue, "invalid_region")


def test_region_must_be_ascii_letters():
    rejected(lambda: registered(region="éé"), InvalidValue, "invalid_region")


@pytest.mark.parametrize(
    ("display_name", "code"),
    [
        ("", "empty_display_name"),
        ("   ", "empty_display_name"),
        ("x" * 81, "display_name_too_long"),
    ],
)
def test_display_name_must_be_1_to_80_characters(display_name, code):
    rejected(lambda: registered(display_name=display_name), InvalidValue, code)


def test_display_name_of_80_characters_is_accepted():
    assert registered(display_name="x" * 80).display_name == "x" * 80


def test_registration_time_must_be_timezone_aware():
    naive = T0.replace(tzinfo=None)
    rejected(lambda: registered(occurred_at=naive), InvalidValue, "naive_event_time")


# -- profile -------------------------------------------------------------------------------


def test_update_profile_records_normalised_values():
    creator = given(history(registered()))

    then = when(
        creator, lambda c: c.update_profile(display_name=" Queen ", region="no", occurred_at=at(1))
    )

    assert then.types == [Creator.ProfileUpdated]
    assert (then.events[0].display_name, then.events[0].region) == ("Queen", "NO")
    assert (creator.display_name, creator.region) == ("Queen", "NO")


@pytest.mark.parametrize(
    ("display_name", "region", "code"),
    [("Queen", "Norway", "invalid_region"), ("", "NO", "empty_display_name")],
)
def test_update_profile_validates_like_registration(display_name, region, code):
    creator = given(history(registered()))

    when_rejected(
        creator,
        lambda c: c.update_profile(display_name=display_name, region=region, occurred_at=at(1)),
        InvalidValue,
        code,
    )


# -- strikes and suspension ----------------------------------------------------------------


def test_a_strike_is_recorded_without_suspending():
    creator = given(history(registered()))

    then = when(creator, strike(CASE_1))

    assert then.result is True
    assert then.types == [Creator.StrikeIssued]
    assert then.events[0].case_id == CASE_1
    assert then.events[0].reason == "spam policy"
    assert creator.active_strikes == 1


def test_two_active_strikes_do_not_suspend():
    creator = given(history(registered(), strike(CASE_1)))

    then = when(creator, strike(CASE_2))

    assert then.types == [Creator.StrikeIssued]
    assert not creator.suspended


def test_third_active_strike_suspends_in_the_same_command():
    assert STRIKES_TO_SUSPEND == 3
    creator = given(history(registered(), strike(CASE_1), strike(CASE_2)))

    then = when(creator, strike(CASE_3, minute=7))

    assert then.types == [Creator.StrikeIssued, Creator.Suspended]
    assert (then.events[1].reason, then.events[1].cause) == ("3 active strikes", "strikes")
    assert then.events[1].occurred_at == at(7)
    assert creator.suspended


def test_a_withdrawn_strike_no_longer_counts_towards_suspension():
    creator = given(history(registered(), strike(CASE_1), strike(CASE_2), withdraw(CASE_1)))

    then = when(creator, strike(CASE_3))

    assert then.types == [Creator.StrikeIssued]
    assert creator.active_strikes == 2


def test_a_strike_for_the_same_case_twice_records_nothing():
    creator = given(history(registered(), strike(CASE_1), strike(CASE_2)))

    then = when(creator, strike(CASE_2))

    assert then.result is False
    assert then.events == []
    assert creator.active_strikes == 2


def test_a_fourth_strike_does_not_suspend_again():
    creator = given(history(registered(), strike(CASE_1), strike(CASE_2), strike(CASE_3)))

    then = when(creator, strike(CASE_4))

    assert then.types == [Creator.StrikeIssued]


def test_a_third_strike_on_a_manually_suspended_creator_does_not_suspend_again():
    creator = given(history(registered(), suspend(), strike(CASE_1), strike(CASE_2)))

    then = when(creator, strike(CASE_3))

    assert then.types == [Creator.StrikeIssued]


def test_a_strike_needs_a_reason_and_an_aware_time():
    creator = given(history(registered()))

    when_rejected(
        creator,
        lambda c: c.issue_strike(case_id=CASE_1, reason=" ", occurred_at=T0),
        InvalidValue,
        "empty_reason",
    )
    when_rejected(
        creator,
        lambda c: c.issue_strike(
            case_id=CASE_1, reason="spam", occurred_at=T0.replace(tzinfo=None)
        ),
        InvalidValue,
        "naive_event_time",
    )


def test_withdrawing_a_strike_below_the_threshold_reinstates():
    creator = given(history(registered(), strike(CASE_1), strike(CASE_2), strike(CASE_3)))

    then = when(creator, withdraw(CASE_2, minute=20))

    assert then.result is True
    assert then.types == [Creator.StrikeWithdrawn, Creator.Reinstated]
    assert then.events[0].case_id == CASE_2
    assert then.events[1].occurred_at == at(20)
    assert not creator.suspended
    assert creator.strike_cases == [CASE_1, CASE_3]


def test_withdrawing_a_strike_that_leaves_three_keeps_the_suspension():
    past = history(registered(), strike(CASE_1), strike(CASE_2), strike(CASE_3), strike(CASE_4))
    creator = given(past)

    then = when(creator, withdraw(CASE_1))

    assert then.types == [Creator.StrikeWithdrawn]
    assert creator.suspended


def test_withdrawing_a_strike_of_an_active_creator_only_withdraws():
    creator = given(history(registered(), strike(CASE_1)))

    then = when(creator, withdraw(CASE_1))

    assert then.types == [Creator.StrikeWithdrawn]
    assert creator.active_strikes == 0


def test_withdrawing_a_strike_after_a_manual_reinstatement_only_withdraws():
    past = history(registered(), strike(CASE_1), strike(CASE_2), strike(CASE_3), reinstate())
    creator = given(past)

    then = when(creator, withdraw(CASE_1))

    assert then.types == [Creator.StrikeWithdrawn]
    assert not creator.suspended


def test_withdrawing_an_unknown_strike_records_nothing():
    creator = given(history(registered(), strike(CASE_1), withdraw(CASE_1)))

    then = when(creator, withdraw(CASE_1))

    assert then.result is False
    assert then.events == []


@pytest.mark.parametrize(
    "past",
    [
        (strike(CASE_1), suspend("fraud investigation")),
        # Strikes reached three while suspended by hand: the suspension is still manual.
        (suspend("fraud investigation"), strike(CASE_1), strike(CASE_2), strike(CASE_3)),
    ],
)
def test_withdrawing_a_strike_does_not_lift_a_manual_suspension(past):
    creator = given(history(registered(), *past))

    then = when(creator, withdraw(CASE_1))

    assert then.types == [Creator.StrikeWithdrawn]
    assert creator.suspended


def test_a_creator_reinstated_by_hand_is_suspended_again_by_a_further_strike():
    past = history(registered(), strike(CASE_1), strike(CASE_2), strike(CASE_3), reinstate())
    creator = given(past)

    then = when(creator, strike(CASE_4))

    assert then.types == [Creator.StrikeIssued, Creator.Suspended]
    assert then.events[1].cause == "strikes"


def test_suspend_records_the_reason():
    creator = given(history(registered()))

    then = when(creator, suspend(" fraud investigation "))

    assert then.types == [Creator.Suspended]
    assert (then.events[0].reason, then.events[0].cause) == ("fraud investigation", "manual")


def test_cannot_suspend_a_suspended_creator():
    creator = given(history(registered(), suspend()))

    when_rejected(creator, suspend(), InvariantViolation, "already_suspended")


def test_cannot_suspend_without_a_reason():
    creator = given(history(registered()))

    when_rejected(creator, suspend(""), InvalidValue, "empty_reason")


def test_reinstate_lifts_a_suspension():
    creator = given(history(registered(), strike(CASE_1), strike(CASE_2), strike(CASE_3)))

    then = when(creator, reinstate())

    assert then.types == [Creator.Reinstated]
    assert then.events[0].reason == "cleared"
    assert not creator.suspended


def test_cannot_reinstate_a_creator_that_is_not_suspended():
    creator = given(history(registered(), suspend(), reinstate()))

    when_rejected(creator, reinstate(), InvariantViolation, "not_suspended")


# -- publishing ----------------------------------------------------------------------------


def publish(creator: Creator) -> Video:
    return Video.publish(
        video_id=uuid4(),
        creator=creator,
        caption="hi",
        hashtags=[],
        sound_id=None,
        duration_seconds=10,
        occurred_at=at(30),
    )


def test_a_creator_suspended_by_strikes_cannot_publish():
    creator = given(history(registered(), strike(CASE_1), strike(CASE_2), strike(CASE_3)))

    rejected(lambda: publish(creator), InvariantViolation, "creator_suspended")


def test_a_creator_suspended_by_hand_cannot_publish():
    creator = given(history(registered(), suspend()))

    rejected(creator.ensure_can_publish, InvariantViolation, "creator_suspended")


def test_a_reinstated_creator_can_publish_again():
    past = history(registered(), strike(CASE_1), strike(CASE_2), strike(CASE_3), withdraw(CASE_3))
    creator = given(past)

    video = publish(creator)

    assert video.creator_id == CREATOR_ID
