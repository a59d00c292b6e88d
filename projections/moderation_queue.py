"""ModerationQueueProjection: the moderation queue, each case's state and its timeline.

The case state mirrors the ModerationCase aggregate's rules exactly (including a report or
flag reopening a decided or closed case), but is computed from the event log alone, so the
queue never loads an aggregate. Reach is the number of views the case's video received so
far (every video's views are counted, because a case can open on an already viral video).
"""

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.engagement import Engagement
from domain.moderation import PRIORITIES, AppealResolution, CaseStatus, ModerationCase, Outcome
from projections.base import Projection

CASE_EVENTS = (
    ModerationCase.Opened,
    ModerationCase.Reported,
    ModerationCase.AutoFlagged,
    ModerationCase.Escalated,
    ModerationCase.Decided,
    ModerationCase.Appealed,
    ModerationCase.AppealResolved,
)


@dataclass(frozen=True)
class PriorityWeights:
    """Weights of the queue's priority score (replay parameters: change them, rebuild).

    priority_score = reports * log1p(report count)
                   + flag_score * max automated flag score (0..1)
                   + reach * log10(1 + views of the video)
                   + the boost of the case's escalation priority

    Logarithms make the hundredth report or the millionth view count for less than the
    first ones: a report wave or a viral video raises a case, but cannot bury an
    escalation to critical, whose boost outweighs any realistic mix of the other terms.
    """

    reports: float = 1.0
    flag_score: float = 2.0
    reach: float = 0.5
    boost_low: float = -1.0
    boost_normal: float = 0.0
    boost_high: float = 2.0
    boost_critical: float = 5.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not math.isfinite(value):
                raise ValueError(f"priority weight {name} must be a finite number")

    def boost(self, priority: str) -> float:
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        return float(getattr(self, f"boost_{priority}"))

    def score(self, *, reports: int, max_flag_score: float, reach: int, priority: str) -> float:
        return (
            self.reports * math.log1p(reports)
            + self.flag_score * max_flag_score
            + self.reach * math.log10(1 + reach)
            + self.boost(priority)
        )


@dataclass
class CaseState:
    """One row of the queue, as the projection computes it (mutable within a batch)."""

    case_id: UUID
    video_id: UUID
    creator_id: UUID
    status: str
    priority: str
    reports: int
    max_flag_score: float
    reach: int
    priority_score: float
    outcome: str | None
    appealed: bool
    opened_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TimelineRow:
    case_id: UUID
    position: int
    event_type: str  # the event class name, e.g. "Reported"
    occurred_at: datetime
    actor_id: UUID | None  # reporter, moderator or appellant; None for system events
    details: dict[str, Any]  # the event's other fields, JSON-ready


class ModerationView(ABC):
    """Transaction-scoped store of cases, timelines and per-video view counts.

    At flush, an implementation must give every OPEN case whose video received views in
    the batch its new reach through `ModerationQueueProjection.reach_changed`, so a quiet
    case still rises in the queue while its video spreads.
    """

    @abstractmethod
    def get_case(self, case_id: UUID) -> CaseState | None:
        """The case as of the events processed so far (including this batch)."""

    @abstractmethod
    def put_case(self, case: CaseState) -> None: ...

    @abstractmethod
    def add_timeline(self, row: TimelineRow) -> None: ...

    @abstractmethod
    def count_view(self, video_id: UUID) -> None: ...

    @abstractmethod
    def reach(self, video_id: UUID) -> int:
        """Views of the video so far (including this batch)."""


class ModerationQueueProjection(Projection[ModerationView]):
    name = "moderation"
    partition_by = "video"
    topics = tuple(get_topic(cls) for cls in (*CASE_EVENTS, Engagement.Viewed))

    def __init__(self, weights: PriorityWeights | None = None) -> None:
        self.weights = weights or PriorityWeights()

    def process(self, event: Any, position: int, view: ModerationView) -> None:
        if isinstance(event, Engagement.Viewed):
            view.count_view(event.video_id)
            return
        if not isinstance(event, CASE_EVENTS):
            return
        if isinstance(event, ModerationCase.Opened):
            case = CaseState(
                case_id=event.originator_id,
                video_id=event.video_id,
                creator_id=event.creator_id,
                status=CaseStatus.OPEN.value,
                priority="normal",
                reports=0,
                max_flag_score=0.0,
                reach=0,
                priority_score=0.0,
                outcome=None,
                appealed=False,
                opened_at=event.occurred_at,
                updated_at=event.occurred_at,
            )
        else:
            found = view.get_case(event.originator_id)
            if found is None:  # the log is read in order: Opened always comes first
                raise LookupError(f"moderation case {event.originator_id} was never opened")
            case = found
            apply(case, event)
        case.updated_at = event.occurred_at
        case.reach = view.reach(case.video_id)
        self._rescore(case)
        view.put_case(case)
        actor_id, details = describe(event)
        view.add_timeline(
            TimelineRow(
                case_id=case.case_id,
                position=position,
                event_type=type(event).__name__,
                occurred_at=event.occurred_at,
                actor_id=actor_id,
                details=details,
            )
        )

    def reach_changed(self, case: CaseState, reach: int) -> bool:
        """Called by the view at flush for cases whose video got views in the batch.
        Returns True when the case changed (only open cases track their reach live)."""
        if case.status != CaseStatus.OPEN or case.reach == reach:
            return False
        case.reach = reach
        self._rescore(case)
        return True

    def _rescore(self, case: CaseState) -> None:
        case.priority_score = self.weights.score(
            reports=case.reports,
            max_flag_score=case.max_flag_score,
            reach=case.reach,
            priority=case.priority,
        )


def apply(case: CaseState, event: Any) -> None:
    """The aggregate's state changes (domain/moderation.py), on the read model's row."""
    match event:
        case ModerationCase.Reported():
            _reopen_if_settled(case)
            case.reports += 1
        case ModerationCase.AutoFlagged():
            _reopen_if_settled(case)
            case.max_flag_score = max(case.max_flag_score, event.score)
        case ModerationCase.Escalated():
            case.priority = event.priority
        case ModerationCase.Decided():
            case.status = CaseStatus.DECIDED.value
            case.outcome = event.outcome
        case ModerationCase.Appealed():
            case.status = CaseStatus.APPEALED.value
            case.appealed = True
        case ModerationCase.AppealResolved():
            case.status = CaseStatus.CLOSED.value
            if event.resolution == AppealResolution.OVERTURNED:
                case.outcome = Outcome.KEEP.value


def _reopen_if_settled(case: CaseState) -> None:
    if case.status in (CaseStatus.DECIDED, CaseStatus.CLOSED):
        case.status = CaseStatus.OPEN.value


def describe(event: Any) -> tuple[UUID | None, dict[str, Any]]:
    """The timeline's actor and details (every other field of the event) for one event."""
    match event:
        case ModerationCase.Opened():
            return None, {"video_id": str(event.video_id), "creator_id": str(event.creator_id)}
        case ModerationCase.Reported():
            return event.reporter_id, {"reason": event.reason}
        case ModerationCase.AutoFlagged():
            return None, {
                "model": event.model,
                "score": event.score,
                "reasons": list(event.reasons),
            }
        case ModerationCase.Escalated():
            return None, {"priority": event.priority}
        case ModerationCase.Decided():
            return event.moderator_id, {
                "outcome": event.outcome,
                "policy": event.policy,
                "note": event.note,
            }
        case ModerationCase.Appealed():
            return event.appellant_id, {"statement": event.statement}
        case ModerationCase.AppealResolved():
            return event.moderator_id, {"resolution": event.resolution, "note": event.note}
    raise TypeError(f"not a moderation case event: {type(event).__name__}")
