"""CommentCase: reports, model flags and the one decision on a reported comment."""

import math
from uuid import UUID

import pytest

from domain.comment_moderation import COMMENT_REPORT_REASONS, CommentCase, CommentCaseStatus
from domain.creator import Creator
from domain.errors import InvalidValue, InvariantViolation
from domain.video import Video

from .given_when_then import T0, at, given, history, rejected, when, when_rejected

CREATOR_ID = UUID(int=100)
VIDEO_ID, OTHER_VIDEO = UUID(int=200), UUID(int=201)
COMMENT_ID = UUID(int=300)
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


def opened() -> CommentCase:
    return CommentCase.open_for(COMMENT_ID, video(), occurred_at=at(1))


def report(reporter_id: UUID = REPORTER_1, reason: str = "harassment"):
    return lambda c: c.report(reporter_id=reporter_id, reason=reason, occurred_at=at(2))


def flag(score: float = 0.9, reasons: list[str] | None = None):
    return lambda c: c.auto_flag(
        model="comment_moderation",
        score=score,
        reasons=["toxicity"] if reasons is None else reasons,
        occurred_at=at(3),
    )


def decide(outcome: str = "remove", note: str = ""):
    return lambda c: c.decide(
        moderator_id=MODERATOR_ID, outcome=outcome, note=note, occurred_at=at(4)
    )


# -- opening -------------------------------------------------------------------------------


def test_a_case_opens_for_a_comment_on_its_video_with_a_derived_id():
    [event] = opened().collect_events()

    assert type(event) is CommentCase.Opened
    assert event.originator_id == CommentCase.create_id(COMMENT_ID)
    assert (event.comment_id, event.video_id) == (COMMENT_ID, VIDEO_ID)
    assert CommentCase.create_id(COMMENT_ID) != CommentCase.create_id(UUID(int=301))


def test_no_case_opens_for_a_comment_of_a_removed_video():
    removed = video(lambda v: v.remove(case_id=UUID(int=1), occurred_at=at(1)))

    rejected(
        lambda: CommentCase.open_for(COMMENT_ID, removed, occurred_at=at(2)),
        InvariantViolation,
        "video_unavailable",
    )


def test_the_case_refuses_another_video_for_its_comment():
    case = given(history(opened()))

    with pytest.raises(InvalidValue) as info:
        case.ensure_on_video(OTHER_VIDEO)
    assert info.value.code == "comment_video_mismatch"
    case.ensure_on_video(VIDEO_ID)  # its own video is fine


# -- reports -------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", sorted(COMMENT_REPORT_REASONS))
def test_every_listed_report_reason_is_recorded(reason):
    case = given(history(opened()))

    then = when(case, report(REPORTER_1, reason))

    assert then.types == [CommentCase.Reported]
    assert (then.events[0].reporter_id, then.events[0].reason) == (REPORTER_1, reason)


@pytest.mark.parametrize("reason", ["rude", "SPAM", "", "nudity"])
def test_report_reason_must_be_listed(reason):
    case = given(history(opened()))

    when_rejected(case, report(reason=reason), InvalidValue, "invalid_reason")


def test_a_reporter_reports_a_comment_once_but_others_may_too():
    case = given(history(opened(), report(REPORTER_1)))

    when_rejected(case, report(REPORTER_1, "spam"), InvariantViolation, "already_reported")
    assert when(case, report(REPORTER_2)).types == [CommentCase.Reported]


# -- flags ---------------------------------------------------------------------------------


@pytest.mark.parametrize("score", [0.0, 0.73, 1.0])
def test_a_model_flag_is_recorded_with_its_score_and_reasons(score):
    case = given(history(opened()))

    then = when(case, flag(score, ["toxicity", "link"]))

    assert then.types == [CommentCase.AutoFlagged]
    e = then.events[0]
    assert (e.model, e.score, e.reasons) == ("comment_moderation", score, ["toxicity", "link"])


@pytest.mark.parametrize("score", [-0.01, 1.01, math.nan])
def test_flag_score_out_of_bounds_is_rejected(score):
    case = given(history(opened()))

    when_rejected(case, flag(score), InvalidValue, "invalid_score")


def test_flag_has_at_most_20_reasons_each_non_empty():
    case = given(history(opened()))

    when_rejected(
        case, flag(reasons=[f"r{i}" for i in range(21)]), InvalidValue, "too_many_reasons"
    )
    when_rejected(case, flag(reasons=["  "]), InvalidValue, "empty_reasons")


# -- decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["remove", "keep"])
def test_a_moderator_decides_a_reported_comment(outcome):
    case = given(history(opened(), report(), flag()))

    then = when(case, decide(outcome, note="  second-person insult  "))

    assert then.types == [CommentCase.Decided]
    assert (then.events[0].outcome, then.events[0].note) == (outcome, "second-person insult")
    assert case.status == CommentCaseStatus.DECIDED


@pytest.mark.parametrize("outcome", ["restrict", "REMOVE", ""])
def test_comment_outcomes_are_keep_or_remove(outcome):
    case = given(history(opened(), report()))

    when_rejected(case, decide(outcome), InvalidValue, "invalid_outcome")


@pytest.mark.parametrize("command", [report(REPORTER_2), flag(), decide("keep")])
def test_a_decided_case_takes_no_more_reports_flags_or_decisions(command):
    case = given(history(opened(), report(), decide("remove")))

    when_rejected(case, command, InvariantViolation, "case_not_open")
