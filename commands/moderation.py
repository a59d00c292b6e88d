"""Moderation context: reports, automated flags, decisions and appeals (of videos here;
of comments in commands/comment_moderation.py, mixed in).

Decisions only change the case here. Their effects on the Video and the Creator are made
by ModerationPolicy (commands/moderation_policy.py), which follows the event log.
"""

from datetime import datetime
from uuid import UUID

from commands.base import CommandResult, Idempotency, Outcome, ReelPulseApplication
from commands.comment_moderation import CommentModeration
from commands.content import SNAPSHOT_INTERVALS
from domain.moderation import ModerationCase
from domain.video import Video


class ModerationApplication(CommentModeration, ReelPulseApplication):
    snapshotting_intervals = SNAPSHOT_INTERVALS

    def _case_for_video(self, video_id: UUID, when: datetime) -> ModerationCase:
        video = self.load(Video, video_id, what="video")
        case = self.load_or_none(ModerationCase, ModerationCase.create_id(video.id))
        if case is None:
            case = ModerationCase.open_for(video, occurred_at=when)
        else:
            video.ensure_accepts_engagement()
        return case

    def report_video(
        self,
        video_id: UUID,
        *,
        reporter_id: UUID,
        reason: str,
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            when = self.event_time(occurred_at)
            case = self._case_for_video(video_id, when)
            case.report(reporter_id=reporter_id, reason=reason, occurred_at=when)
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency)

    def auto_flag_video(
        self,
        video_id: UUID,
        *,
        model: str,
        score: float,
        reasons: list[str],
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            when = self.event_time(occurred_at)
            case = self._case_for_video(video_id, when)
            case.auto_flag(model=model, score=score, reasons=reasons, occurred_at=when)
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency)

    def escalate_case(
        self,
        case_id: UUID,
        *,
        priority: str,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            case = self.load(ModerationCase, case_id, what="case")
            self.check_version(case, expected_version)
            case.escalate(priority=priority, occurred_at=self.event_time(occurred_at))
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def decide_case(
        self,
        case_id: UUID,
        *,
        moderator_id: UUID,
        outcome: str,
        policy: str,
        note: str = "",
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            case = self.load(ModerationCase, case_id, what="case")
            self.check_version(case, expected_version)
            case.decide(
                moderator_id=moderator_id,
                outcome=outcome,
                policy=policy,
                note=note,
                occurred_at=self.event_time(occurred_at),
            )
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def appeal_case(
        self,
        case_id: UUID,
        *,
        appellant_id: UUID,
        statement: str,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            case = self.load(ModerationCase, case_id, what="case")
            self.check_version(case, expected_version)
            case.appeal(
                appellant_id=appellant_id,
                statement=statement,
                occurred_at=self.event_time(occurred_at),
            )
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def resolve_appeal(
        self,
        case_id: UUID,
        *,
        moderator_id: UUID,
        resolution: str,
        note: str = "",
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            case = self.load(ModerationCase, case_id, what="case")
            self.check_version(case, expected_version)
            case.resolve_appeal(
                moderator_id=moderator_id,
                resolution=resolution,
                note=note,
                occurred_at=self.event_time(occurred_at),
            )
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def get_case(self, case_id: UUID) -> ModerationCase:
        return self.load(ModerationCase, case_id, what="case")
