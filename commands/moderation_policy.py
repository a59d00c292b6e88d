"""ModerationPolicy: turns moderation decisions into Video and Creator changes.

A process application: it follows the event log, and for each decision saves the
resulting Video/Creator events together with a tracking record of the decision's
position, in one transaction. So every decision takes effect exactly once, also after a
crash, and never inside the HTTP request that recorded the decision.
"""

from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import get_topic

from commands.base import MAX_ATTEMPTS, ReelPulseApplication
from commands.content import SNAPSHOT_INTERVALS
from domain.creator import Creator
from domain.errors import VersionConflict
from domain.moderation import AppealResolution, ModerationCase, Outcome
from domain.video import Video


class ModerationPolicy(ReelPulseApplication, EventSourcedProjection[UUID]):
    snapshotting_intervals = SNAPSHOT_INTERVALS
    tracking_name = "ReelPulse->ModerationPolicy"
    topics = (get_topic(ModerationCase.Decided), get_topic(ModerationCase.AppealResolved))

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        # A concurrent command may have changed the same Video or Creator: the insert then
        # fails as a whole, and we reload and apply the decision again.
        for _attempt in range(MAX_ATTEMPTS):
            try:
                super().process_event(domain_event, tracking)
            except IntegrityError:
                if (
                    self.recorder.max_tracking_id(tracking.application_name) or 0
                ) >= tracking.notification_id:
                    return  # another policy worker already processed this decision
                continue
            return
        raise VersionConflict(f"could not apply decision at position {tracking.notification_id}")

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        """Other events need no reaction."""

    @policy.register
    def _(self, decided: ModerationCase.Decided, processing_event: ProcessingEvent[UUID]) -> None:
        case = self._case(decided.originator_id)
        video = self.repository.get(case.video_id)
        assert isinstance(video, Video)
        changed: list[Aggregate] = []
        if decided.outcome == Outcome.RESTRICT and video.restrict(
            case_id=case.id, occurred_at=decided.occurred_at
        ):
            changed.append(video)
        elif decided.outcome == Outcome.REMOVE:
            if video.remove(case_id=case.id, occurred_at=decided.occurred_at):
                changed.append(video)
            creator = self.repository.get(case.creator_id)
            assert isinstance(creator, Creator)
            if creator.issue_strike(
                case_id=case.id, reason=decided.policy, occurred_at=decided.occurred_at
            ):
                changed.append(creator)
        elif decided.outcome == Outcome.KEEP and video.restore(
            case_id=case.id, occurred_at=decided.occurred_at
        ):
            changed.append(video)  # a reopened case decided "keep" lifts an earlier restriction
        processing_event.collect_events(*changed)

    @policy.register
    def _(
        self, resolved: ModerationCase.AppealResolved, processing_event: ProcessingEvent[UUID]
    ) -> None:
        if resolved.resolution != AppealResolution.OVERTURNED:
            return
        case = self._case(resolved.originator_id)
        changed: list[Aggregate] = []
        video = self.repository.get(case.video_id)
        assert isinstance(video, Video)
        if video.restore(case_id=case.id, occurred_at=resolved.occurred_at):
            changed.append(video)
        creator = self.repository.get(case.creator_id)
        assert isinstance(creator, Creator)
        if creator.withdraw_strike(case_id=case.id, occurred_at=resolved.occurred_at):
            changed.append(creator)
        processing_event.collect_events(*changed)

    def _case(self, case_id: UUID) -> ModerationCase:
        case = self.repository.get(case_id)
        assert isinstance(case, ModerationCase)
        return case
