"""ModerationCase: reports, flags, escalation, decisions and the one appeal."""

import math
from uuid import UUID

import pytest

from domain.creator import Creator
from domain.errors import InvalidValue, InvariantViolation
from domain.moderation import REPORT_REASONS, CaseStatus, ModerationCase
from domain.video import Video

from .given_when_then import T0, at, given, history, rejected, when, when_rejected

CREATOR_ID = UUID(int=100)
VIDEO_ID = UUID(int=200)
REPORTER_1, REPORTER_2 = UUID(int=601), UUID(int=602)
MODERATOR_ID = UUID(int=700)


def video(*past) -> Video:
    creator = Creator.register(
        creator_id=CREATOR_ID, handle="ann", display_name="Ann", region="SE", occurred_at=T0
    )
    published = Video.publish(
        video_id=VIDEO_ID,
        creator=creator,
        caption="clip",
        hashtags=[],
        sound_id=None,
        duration_seconds=10,
        occurred_at=T0,
    )
    return given(history(published, *past))


def opened() -> ModerationCase:
    return ModerationCase.open_for(video(), occurred_at=at(1))


def report(reporter_id: UUID = REPORTER_1, reason: str = "spam"):
    return lambda c: c.report(reporter_id=reporter_id, reason=reason, occurred_at=at(2))


def flag(score: float = 0.9, reasons: list[str] | None = None, model: str = "nsfw-v3"):
    return lambda c: c.auto_flag(
        model=model,
        score=score,
        reasons=["nudity"] if reasons is None else reasons,
        occurred_at=at(2),
    )


def escalate(priority: str):
    return lambda c: c.escalate(priority=priority, occurred_at=at(3))


def decide(outcome: str, policy: str = "community-guidelines-4.2", note: str = ""):
    return lambda c: c.decide(
        moderator_id=MODERATOR_ID, outcome=outcome, policy=policy, note=note, occurred_at=at(4)
    )


def appeal(appellant_id: UUID = CREATOR_ID, statement: str = "it is a dance tutorial"):
    return lambda c: c.appeal(appellant_id=appellant_id, statement=statement, occurred_at=at(5))


def resolve(resolution: str = "overturned"):
    return lambda c: c.resolve_appeal(
        moderator_id=MODERATOR_ID, resolution=resolution, note="", occurred_at=at(6)
    )


# -- opening -------------------------------------------------------------------------------


def test_a_case_opens_for_a_video_and_its_creator():
    [event] = opened().collect_events()

    assert type(event) is ModerationCase.Opened
    assert event.originator_id == ModerationCase.create_id(VIDEO_ID)
    assert (event.video_id, event.creator_id) == (VIDEO_ID, CREATOR_ID)


def test_no_case_opens_for_a_removed_video():
    removed = video(lambda v: v.remove(case_id=UUID(int=1), occurred_at=at(1)))

    rejected(
        lambda: ModerationCase.open_for(removed, occurred_at=at(2)),
        InvariantViolation,
        "video_unavailable",
    )


# -- reports -------------------------------------------------------------------------------


def test_report_is_recorded():
    case = given(history(opened()))

    then = when(case, report(REPORTER_1, "hate"))

    assert then.types == [ModerationCase.Reported]
    assert (then.events[0].reporter_id, then.events[0].reason) == (REPORTER_1, "hate")
    assert case.report_count == 1


@pytest.mark.parametrize("reason", sorted(REPORT_REASONS))
def test_every_listed_report_reason_is_accepted(reason):
    case = given(history(opened()))

    assert when(case, report(reason=reason)).types == [ModerationCase.Reported]


@pytest.mark.parametrize("reason", ["boring", "SPAM", ""])
def test_report_reason_must_be_listed(reason):
    case = given(history(opened()))

    when_rejected(case, report(reason=reason), InvalidValue, "invalid_reason")


def test_same_reporter_cannot_report_an_open_case_twice():
    case = given(history(opened(), report(REPORTER_1)))

    when_rejected(case, report(REPORTER_1, "hate"), InvariantViolation, "already_reported")


def test_another_reporter_can_report_an_open_case():
    case = given(history(opened(), report(REPORTER_1)))

    assert when(case, report(REPORTER_2)).types == [ModerationCase.Reported]
    assert case.report_count == 2


@pytest.mark.parametrize(
    "past",
    [
        (report(REPORTER_1), decide("keep")),
        (report(REPORTER_1), decide("restrict"), appeal(), resolve("upheld")),
    ],
)
def test_a_new_report_reopens_a_settled_case_even_by_an_earlier_reporter(past):
    case = given(history(opened(), *past))

    then = when(case, report(REPORTER_1))

    assert then.types == [ModerationCase.Reported]
    assert case.status == CaseStatus.OPEN
    assert when(case, decide("remove")).types == [ModerationCase.Decided]


def test_reopened_case_again_refuses_a_second_report_by_the_same_reporter():
    case = given(history(opened(), report(REPORTER_1), decide("keep"), report(REPORTER_1)))

    when_rejected(case, report(REPORTER_1), InvariantViolation, "already_reported")


def test_earlier_reporters_may_report_a_reopened_case_again():
    past = history(
        opened(), report(REPORTER_1), report(REPORTER_2), decide("keep"), report(REPORTER_1)
    )
    case = given(past)

    assert when(case, report(REPORTER_2)).types == [ModerationCase.Reported]


def test_a_report_while_appealed_does_not_reopen_the_case():
    case = given(history(opened(), report(), decide("remove"), appeal()))

    when(case, report(REPORTER_2))

    assert case.status == CaseStatus.APPEALED


# -- automated flags -----------------------------------------------------------------------


@pytest.mark.parametrize("score", [0.0, 0.5, 1.0])
def test_flag_score_from_zero_to_one(score):
    case = given(history(opened()))

    then = when(case, flag(score))

    assert then.types == [ModerationCase.AutoFlagged]
    assert then.events[0].score == score
    assert then.events[0].model == "nsfw-v3"


@pytest.mark.parametrize("score", [-0.01, 1.01, math.nan])
def test_flag_score_out_of_bounds_is_rejected(score):
    case = given(history(opened()))

    when_rejected(case, flag(score), InvalidValue, "invalid_score")


def test_flag_has_at_most_20_reasons():
    case = given(history(opened()))

    assert when(case, flag(reasons=[f"r{i}" for i in range(20)])).types == [
        ModerationCase.AutoFlagged
    ]
    when_rejected(
        case, flag(reasons=[f"r{i}" for i in range(21)]), InvalidValue, "too_many_reasons"
    )


def test_flag_needs_a_model_name():
    case = given(history(opened()))

    when_rejected(case, flag(model=" "), InvalidValue, "empty_model")


def test_flag_keeps_the_highest_score():
    case = given(history(opened(), flag(0.7), flag(0.4)))

    assert case.max_flag_score == 0.7


def test_a_flag_reopens_a_decided_case():
    case = given(history(opened(), report(), decide("keep")))

    when(case, flag())

    assert case.status == CaseStatus.OPEN


# -- escalation ----------------------------------------------------------------------------


def test_escalate_upwards():
    case = given(history(opened(), report(), escalate("high")))

    then = when(case, escalate("critical"))

    assert then.types == [ModerationCase.Escalated]
    assert then.events[0].priority == "critical"


@pytest.mark.parametrize(
    ("past", "priority"), [((), "normal"), ((), "low"), ((escalate("high"),), "normal")]
)
def test_escalate_only_upwards(past, priority):
    case = given(history(opened(), report(), *past))

    when_rejected(case, escalate(priority), InvariantViolation, "not_an_escalation")


def test_escalate_only_known_priorities():
    case = given(history(opened(), report()))

    when_rejected(case, escalate("urgent"), InvalidValue, "invalid_priority")


@pytest.mark.parametrize("past", [(decide("keep"),), (decide("remove"), appeal())])
def test_escalate_only_open_cases(past):
    case = given(history(opened(), report(), *past))

    when_rejected(case, escalate("critical"), InvariantViolation, "case_not_open")


# -- decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["keep", "restrict", "remove"])
def test_decide_an_open_case(outcome):
    case = given(history(opened(), report()))

    then = when(case, decide(outcome, policy=" nudity-1 ", note=" explicit "))

    assert then.types == [ModerationCase.Decided]
    event = then.events[0]
    assert (event.moderator_id, event.outcome, event.policy, event.note) == (
        MODERATOR_ID,
        outcome,
        "nudity-1",
        "explicit",
    )
    assert case.status == CaseStatus.DECIDED


@pytest.mark.parametrize("outcome", ["ban", "REMOVE", ""])
def test_decide_only_known_outcomes(outcome):
    case = given(history(opened(), report()))

    when_rejected(case, decide(outcome), InvalidValue, "invalid_outcome")


def test_decision_names_a_policy():
    case = given(history(opened(), report()))

    when_rejected(case, decide("remove", policy=" "), InvalidValue, "empty_policy")


def test_decision_note_is_capped_at_2000_characters():
    case = given(history(opened(), report()))

    then = when(case, decide("keep", note="x" * 2500))

    assert then.events[0].note == "x" * 2000


@pytest.mark.parametrize(
    "past",
    [
        (decide("keep"),),
        (decide("remove"),),
        (decide("remove"), appeal()),
        (decide("remove"), appeal(), resolve("upheld")),
    ],
)
def test_only_open_cases_can_be_decided(past):
    case = given(history(opened(), report(), *past))

    when_rejected(case, decide("remove"), InvariantViolation, "case_not_open")


# -- appeals -------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["restrict", "remove"])
def test_the_creator_appeals_a_restrict_or_remove_decision(outcome):
    case = given(history(opened(), report(), decide(outcome)))

    then = when(case, appeal(statement="  it is art  "))

    assert then.types == [ModerationCase.Appealed]
    assert (then.events[0].appellant_id, then.events[0].statement) == (CREATOR_ID, "it is art")
    assert case.status == CaseStatus.APPEALED


def test_only_the_videos_creator_can_appeal():
    case = given(history(opened(), report(), decide("remove")))

    when_rejected(case, appeal(appellant_id=REPORTER_1), InvariantViolation, "not_video_creator")


@pytest.mark.parametrize("past", [(), (decide("keep"),), (decide("remove"), report(REPORTER_2))])
def test_nothing_to_appeal_without_a_standing_restrict_or_remove_decision(past):
    case = given(history(opened(), report(), *past))

    when_rejected(case, appeal(), InvariantViolation, "nothing_to_appeal")


@pytest.mark.parametrize(
    "past",
    [
        (appeal(),),
        (appeal(), resolve("upheld")),
        (appeal(), resolve("overturned"), report(REPORTER_2), decide("remove")),
    ],
)
def test_a_case_is_appealed_at_most_once(past):
    case = given(history(opened(), report(), decide("remove"), *past))

    when_rejected(case, appeal(), InvariantViolation, "already_appealed")


def test_appeal_needs_a_statement():
    case = given(history(opened(), report(), decide("remove")))

    when_rejected(case, appeal(statement=" "), InvalidValue, "empty_statement")


@pytest.mark.parametrize("resolution", ["upheld", "overturned"])
def test_resolve_a_pending_appeal(resolution):
    case = given(history(opened(), report(), decide("remove"), appeal()))

    then = when(case, resolve(resolution))

    assert then.types == [ModerationCase.AppealResolved]
    assert (then.events[0].moderator_id, then.events[0].resolution) == (MODERATOR_ID, resolution)
    assert case.status == CaseStatus.CLOSED


def test_an_overturned_appeal_turns_the_outcome_into_keep():
    case = given(history(opened(), report(), decide("remove"), appeal(), resolve("overturned")))

    assert case.last_outcome == "keep"


def test_an_upheld_appeal_keeps_the_decision():
    case = given(history(opened(), report(), decide("remove"), appeal(), resolve("upheld")))

    assert case.last_outcome == "remove"


@pytest.mark.parametrize(
    "past",
    [(), (decide("remove"),), (decide("remove"), appeal(), resolve("upheld"))],
)
def test_resolve_only_a_pending_appeal(past):
    case = given(history(opened(), report(), *past))

    when_rejected(case, resolve("overturned"), InvariantViolation, "no_pending_appeal")


def test_resolve_only_known_resolutions():
    case = given(history(opened(), report(), decide("remove"), appeal()))

    when_rejected(case, resolve("partially"), InvalidValue, "invalid_resolution")


def test_event_time_must_be_timezone_aware():
    case = given(history(opened()))

    when_rejected(
        case,
        lambda c: c.report(
            reporter_id=REPORTER_1, reason="spam", occurred_at=T0.replace(tzinfo=None)
        ),
        InvalidValue,
        "naive_event_time",
    )
