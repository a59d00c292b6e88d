"""Text a read model cannot hold is refused where every door meets: the domain's checks.

Issue 15: a caption with U+0000 was accepted and stopped two projections for good. Every
text field of every command goes through `check_storable` (directly or via check_text /
check_caption / check_client_id); these tests name each field's command and feed it the
characters no read model can hold, and the 4-byte and ordinary characters it must keep.
"""

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.creator import Creator
from domain.errors import InvalidValue
from domain.moderation import ModerationCase
from domain.values import MIN_EVENT_TIME, check_event_time, check_storable
from domain.video import Video

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BAD = ["\x00", "\x01", "\x1b", "\x7f", "\ud800", "\udfff", "\ufffe", "\uffff"]
KEPT = ["😀", "\U0001d518", "é", "中文", "\u200d", "\u00a0"]


@pytest.mark.parametrize("char", BAD)
@pytest.mark.parametrize("multiline", [False, True])
def test_unstorable_characters_are_refused_naming_the_field(char, multiline):
    with pytest.raises(InvalidValue) as e:
        check_storable("caption", f"x{char}y", multiline=multiline)
    assert e.value.code == "invalid_text"
    assert e.value.details["field"] == "caption"
    assert f"U+{ord(char):04X}" in e.value.message


@pytest.mark.parametrize("char", KEPT)
def test_four_byte_and_ordinary_characters_are_kept(char):
    assert check_storable("caption", f"a{char}b") == f"a{char}b"


def test_line_breaks_and_tabs_are_text_only_where_text_has_lines():
    assert check_storable("text", "one\ntwo\tthree\r\n", multiline=True)
    with pytest.raises(InvalidValue):
        check_storable("client_event_id", "a\nb")


@given(st.text())
def test_whatever_is_accepted_encodes_as_utf8_without_nul(text):
    try:
        kept = check_storable("text", text, multiline=True)
    except InvalidValue:
        return
    assert "\x00" not in kept
    kept.encode("utf-8")  # a lone surrogate would raise here


def _creator() -> Creator:
    return Creator.register(
        creator_id=uuid4(), handle="someone", display_name="Some One", region="DE",
        occurred_at=NOW,
    )  # fmt: skip


def test_every_creator_and_video_text_field_refuses_nul():
    with pytest.raises(InvalidValue, match="display_name"):
        Creator.register(creator_id=uuid4(), handle="abc", display_name="a\x00b", region="DE",
                         occurred_at=NOW)  # fmt: skip
    creator = _creator()
    with pytest.raises(InvalidValue, match="display_name"):
        creator.update_profile(display_name="x\x00", region="DE", occurred_at=NOW)
    for field, kwargs in [
        ("caption", {"caption": "x\x00y", "sound_id": None}),
        ("sound_id", {"caption": "", "sound_id": "s\x00"}),
        ("sound_id", {"caption": "", "sound_id": "\ud800"}),
    ]:
        with pytest.raises(InvalidValue) as e:
            Video.publish(video_id=uuid4(), creator=creator, hashtags=[], duration_seconds=5,
                          occurred_at=NOW, **kwargs)  # fmt: skip
        assert e.value.details["field"] == field
    video = Video.publish(video_id=uuid4(), creator=creator, caption="ok 😀", hashtags=["a"],
                          sound_id="s-1", duration_seconds=5, occurred_at=NOW)  # fmt: skip
    with pytest.raises(InvalidValue, match="caption"):
        video.edit_caption(caption="\x00", hashtags=[], occurred_at=NOW)


def test_every_moderation_text_field_refuses_nul():
    creator = _creator()
    video = Video.publish(video_id=uuid4(), creator=creator, caption="", hashtags=[],
                          sound_id=None, duration_seconds=5, occurred_at=NOW)  # fmt: skip
    case = ModerationCase.open_for(video, occurred_at=NOW)
    with pytest.raises(InvalidValue, match="model"):
        case.auto_flag(model="m\x00", score=0.9, reasons=["r"], occurred_at=NOW)
    with pytest.raises(InvalidValue, match="reason"):
        case.auto_flag(model="m", score=0.9, reasons=["r\x00"], occurred_at=NOW)
    with pytest.raises(InvalidValue, match="policy"):
        case.decide(moderator_id=uuid4(), outcome="remove", policy="p\x00", note="",
                    occurred_at=NOW)  # fmt: skip
    with pytest.raises(InvalidValue, match="note"):
        case.decide(moderator_id=uuid4(), outcome="remove", policy="p", note="n\x00",
                    occurred_at=NOW)  # fmt: skip
    case.decide(moderator_id=uuid4(), outcome="remove", policy="p", note="line\nline",
                occurred_at=NOW)  # fmt: skip
    with pytest.raises(InvalidValue, match="statement"):
        case.appeal(appellant_id=creator.id, statement="\ud800", occurred_at=NOW)


def test_event_times_have_a_documented_lower_bound():
    assert check_event_time(MIN_EVENT_TIME) == MIN_EVENT_TIME
    with pytest.raises(InvalidValue) as e:
        check_event_time(datetime(1, 1, 1, tzinfo=UTC))
    assert e.value.code == "event_time_too_early"
