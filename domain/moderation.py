"""ModerationCase: one case per video, from first report or flag to final appeal ruling."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue, InvariantViolation
from domain.values import check_event_time, check_storable, check_text, derived_id
from domain.video import Video

REPORT_REASONS = frozenset(
    {
        "spam",
        "nudity",
        "violence",
        "hate",
        "harassment",
        "misinformation",
        "self_harm",
        "copyright",
        "minor_safety",
        "other",
    }
)
PRIORITIES = ("low", "normal", "high", "critical")


class CaseStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"
    APPEALED = "appealed"
    CLOSED = "closed"


class Outcome(StrEnum):
    KEEP = "keep"
    RESTRICT = "restrict"
    REMOVE = "remove"


class AppealResolution(StrEnum):
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class ModerationCase(Aggregate):
    class Opened(Aggregate.Created):
        video_id: UUID
        creator_id: UUID
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

    class Escalated(Aggregate.Event):
        priority: str
        occurred_at: datetime

    class Decided(Aggregate.Event):
        moderator_id: UUID
        outcome: str
        policy: str
        note: str
        occurred_at: datetime

    class Appealed(Aggregate.Event):
        appellant_id: UUID
        statement: str
        occurred_at: datetime

    class AppealResolved(Aggregate.Event):
        moderator_id: UUID
        resolution: str
        note: str
        occurred_at: datetime

    @staticmethod
    def create_id(video_id: UUID) -> UUID:
        return derived_id("moderation-case", video_id)

    @event(Opened)
    def __init__(self, video_id: UUID, creator_id: UUID, occurred_at: datetime) -> None:
        self.video_id = video_id
        self.creator_id = creator_id
        self.status = CaseStatus.OPEN
        self.priority = "normal"
        self.report_count = 0
        self.reporters: dict[str, int] = {}  # reporters since the case last (re)opened
        self.max_flag_score = 0.0
        self.last_outcome: str | None = None
        self.appealed = False

    @classmethod
    def open_for(cls, video: Video, *, occurred_at: datetime) -> "ModerationCase":
        video.ensure_accepts_engagement()
        return cls(
            video_id=video.id,
            creator_id=video.creator_id,
            occurred_at=check_event_time(occurred_at),
        )

    # -- commands ------------------------------------------------------------------------
    def report(self, *, reporter_id: UUID, reason: str, occurred_at: datetime) -> None:
        if reason not in REPORT_REASONS:
            raise InvalidValue(
                f"reason must be one of {', '.join(sorted(REPORT_REASONS))}", code="invalid_reason"
            )
        if self.status == CaseStatus.OPEN and str(reporter_id) in self.reporters:
            raise InvariantViolation(
                "reporter already reported this open case", code="already_reported"
            )
        self._reported(
            reporter_id=reporter_id, reason=reason, occurred_at=check_event_time(occurred_at)
        )

    def auto_flag(
        self, *, model: str, score: float, reasons: list[str], occurred_at: datetime
    ) -> None:
        if not 0.0 <= score <= 1.0:
            raise InvalidValue("score must be between 0 and 1", code="invalid_score")
        if len(reasons) > 20:
            raise InvalidValue("at most 20 reasons", code="too_many_reasons")
        self._auto_flagged(
            model=check_text("model", model, max_length=64),
            score=float(score),
            reasons=[check_text("reasons", r, max_length=64) for r in reasons],
            occurred_at=check_event_time(occurred_at),
        )

    def escalate(self, *, priority: str, occurred_at: datetime) -> None:
        if priority not in PRIORITIES:
            raise InvalidValue(
                f"priority must be one of {', '.join(PRIORITIES)}", code="invalid_priority"
            )
        self._ensure_open("escalated")
        if PRIORITIES.index(priority) <= PRIORITIES.index(self.priority):
            raise InvariantViolation(
                f"case is already at priority {self.priority}", code="not_an_escalation"
            )
        self._escalated(priority=priority, occurred_at=check_event_time(occurred_at))

    def decide(
        self, *, moderator_id: UUID, outcome: str, policy: str, note: str, occurred_at: datetime
    ) -> None:
        if outcome not in Outcome.__members__.values():
            raise InvalidValue("outcome must be keep, restrict or remove", code="invalid_outcome")
        self._ensure_open("decided")
        self._decided(
            moderator_id=moderator_id,
            outcome=outcome,
            policy=check_text("policy", policy, max_length=64),
            note=check_storable("note", note, multiline=True).strip()[:2000],
            occurred_at=check_event_time(occurred_at),
        )

    def appeal(self, *, appellant_id: UUID, statement: str, occurred_at: datetime) -> None:
        if appellant_id != self.creator_id:
            raise InvariantViolation(
                "only the video's creator may appeal", code="not_video_creator"
            )
        if self.appealed:
            raise InvariantViolation("this case was already appealed", code="already_appealed")
        if self.status != CaseStatus.DECIDED or self.last_outcome not in (
            Outcome.RESTRICT,
            Outcome.REMOVE,
        ):
            raise InvariantViolation(
                "only a restrict or remove decision can be appealed", code="nothing_to_appeal"
            )
        self._appealed(
            appellant_id=appellant_id,
            statement=check_text("statement", statement, max_length=2000, multiline=True),
            occurred_at=check_event_time(occurred_at),
        )

    def resolve_appeal(
        self, *, moderator_id: UUID, resolution: str, note: str, occurred_at: datetime
    ) -> None:
        if resolution not in AppealResolution.__members__.values():
            raise InvalidValue("resolution must be upheld or overturned", code="invalid_resolution")
        if self.status != CaseStatus.APPEALED:
            raise InvariantViolation("case has no pending appeal", code="no_pending_appeal")
        self._appeal_resolved(
            moderator_id=moderator_id,
            resolution=resolution,
            note=check_storable("note", note, multiline=True).strip()[:2000],
            occurred_at=check_event_time(occurred_at),
        )

    def _ensure_open(self, action: str) -> None:
        if self.status != CaseStatus.OPEN:
            raise InvariantViolation(
                f"only open cases can be {action}; this case is {self.status}", code="case_not_open"
            )

    # -- state changes -------------------------------------------------------------------
    def _reopen_if_settled(self) -> None:
        # New reports or flags after a settled case reopen it for a fresh decision.
        if self.status in (CaseStatus.DECIDED, CaseStatus.CLOSED):
            self.status = CaseStatus.OPEN
            self.reporters = {}

    @event(Reported)
    def _reported(self, reporter_id: UUID, reason: str, occurred_at: datetime) -> None:
        self._reopen_if_settled()
        self.report_count += 1
        self.reporters[str(reporter_id)] = 1

    @event(AutoFlagged)
    def _auto_flagged(
        self, model: str, score: float, reasons: list[str], occurred_at: datetime
    ) -> None:
        self._reopen_if_settled()
        self.max_flag_score = max(self.max_flag_score, score)

    @event(Escalated)
    def _escalated(self, priority: str, occurred_at: datetime) -> None:
        self.priority = priority

    @event(Decided)
    def _decided(
        self, moderator_id: UUID, outcome: str, policy: str, note: str, occurred_at: datetime
    ) -> None:
        self.status = CaseStatus.DECIDED
        self.last_outcome = outcome

    @event(Appealed)
    def _appealed(self, appellant_id: UUID, statement: str, occurred_at: datetime) -> None:
        self.status = CaseStatus.APPEALED
        self.appealed = True

    @event(AppealResolved)
    def _appeal_resolved(
        self, moderator_id: UUID, resolution: str, note: str, occurred_at: datetime
    ) -> None:
        self.status = CaseStatus.CLOSED
        if resolution == AppealResolution.OVERTURNED:
            self.last_outcome = Outcome.KEEP
