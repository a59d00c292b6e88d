"""CommentCase: one case per comment, from the first report or model flag to a decision.

The case names its comment and video but holds no copy of the comment's text: the text
lives in Engagement.Commented, where it is personal data that `forget` can erase
(adapters/erasure/fields.py); read models and the classifier join it by comment id.
A decision is final for the comment (remove hides it, keep clears it): later reports or
flags are refused, so a moderator's ruling is not reopened by a model that disagrees.
"""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue, InvariantViolation
from domain.values import check_event_time, check_storable, check_text, derived_id
from domain.video import Video

COMMENT_REPORT_REASONS = frozenset(
    {"spam", "scam", "harassment", "hate", "violence", "self_harm", "other"}
)
MAX_FLAG_REASONS = 20


class CommentCaseStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"


class CommentOutcome(StrEnum):
    KEEP = "keep"
    REMOVE = "remove"


class CommentCase(Aggregate):
    class Opened(Aggregate.Created):
        comment_id: UUID
        video_id: UUID
        occurred_at: datetime

    class Reported(Aggregate.Event):
        reporter_id: UUID
        reason: str
        occurred_at: datetime

    class AutoFlagged(Aggregate.Event):
        model: str
        score: float
        reasons: list[str]
        occurred_at: datetime

    class Decided(Aggregate.Event):
        moderator_id: UUID
        outcome: str
        note: str
        occurred_at: datetime

    @staticmethod
    def create_id(comment_id: UUID) -> UUID:
        return derived_id("comment-case", comment_id)

    @event(Opened)
    def __init__(self, comment_id: UUID, video_id: UUID, occurred_at: datetime) -> None:
        self.comment_id = comment_id
        self.video_id = video_id
        self.status = CommentCaseStatus.OPEN
        self.reporters: dict[str, int] = {}  # a dict, as snapshots transcode no sets
        self.flags = 0
        self.outcome: str | None = None

    @classmethod
    def open_for(cls, comment_id: UUID, video: Video, *, occurred_at: datetime) -> "CommentCase":
        video.ensure_accepts_engagement()  # a removed video's comments are hidden with it
        return cls(
            comment_id=comment_id, video_id=video.id, occurred_at=check_event_time(occurred_at)
        )

    # -- commands ------------------------------------------------------------------------
    def ensure_on_video(self, video_id: UUID) -> None:
        if video_id != self.video_id:
            raise InvalidValue(
                f"comment {self.comment_id} is on video {self.video_id}, not {video_id}",
                code="comment_video_mismatch",
            )

    def report(self, *, reporter_id: UUID, reason: str, occurred_at: datetime) -> None:
        if reason not in COMMENT_REPORT_REASONS:
            raise InvalidValue(
                f"reason must be one of {', '.join(sorted(COMMENT_REPORT_REASONS))}",
                code="invalid_reason",
            )
        self._ensure_open("reported")
        if str(reporter_id) in self.reporters:
            raise InvariantViolation(
                "reporter already reported this comment", code="already_reported"
            )
        self._reported(
            reporter_id=reporter_id, reason=reason, occurred_at=check_event_time(occurred_at)
        )

    def auto_flag(
        self, *, model: str, score: float, reasons: list[str], occurred_at: datetime
    ) -> None:
        if not 0.0 <= score <= 1.0:
            raise InvalidValue("score must be between 0 and 1", code="invalid_score")
        if len(reasons) > MAX_FLAG_REASONS:
            raise InvalidValue(f"at most {MAX_FLAG_REASONS} reasons", code="too_many_reasons")
        self._ensure_open("flagged")
        self._auto_flagged(
            model=check_text("model", model, max_length=64),
            score=float(score),
            reasons=[check_text("reasons", r, max_length=64) for r in reasons],
            occurred_at=check_event_time(occurred_at),
        )

    def decide(self, *, moderator_id: UUID, outcome: str, note: str, occurred_at: datetime) -> None:
        if outcome not in CommentOutcome.__members__.values():
            raise InvalidValue("outcome must be keep or remove", code="invalid_outcome")
        self._ensure_open("decided")
        self._decided(
            moderator_id=moderator_id,
            outcome=outcome,
            note=check_storable("note", note, multiline=True).strip()[:2000],
            occurred_at=check_event_time(occurred_at),
        )

    def _ensure_open(self, action: str) -> None:
        if self.status != CommentCaseStatus.OPEN:
            raise InvariantViolation(
                f"only open comment cases can be {action}; this one was decided ({self.outcome})",
                code="case_not_open",
            )

    # -- state changes -------------------------------------------------------------------
    @event(Reported)
    def _reported(self, reporter_id: UUID, reason: str, occurred_at: datetime) -> None:
        self.reporters[str(reporter_id)] = 1

    @event(AutoFlagged)
    def _auto_flagged(
        self, model: str, score: float, reasons: list[str], occurred_at: datetime
    ) -> None:
        self.flags += 1

    @event(Decided)
    def _decided(self, moderator_id: UUID, outcome: str, note: str, occurred_at: datetime) -> None:
        self.status = CommentCaseStatus.DECIDED
        self.outcome = outcome
