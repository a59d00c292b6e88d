"""Comment moderation use cases: viewers report comments, a model flags them, moderators
decide. Part of the moderation context: ModerationApplication mixes these in, so the
alert-action worker and the HTTP routes reach them through the one application.

A comment is named by its id and its video: the case is opened on the first report or
flag for the comment (its id derived from the comment id), after checking that the video
exists and still accepts engagement. The comment's text is not copied into the case
(see domain/comment_moderation.py).
"""

from datetime import datetime
from uuid import UUID

from commands.base import CommandResult, Idempotency, Outcome, ReelPulseApplication
from domain.comment_moderation import CommentCase
from domain.video import Video


class CommentModeration(ReelPulseApplication):
    def _case_for_comment(self, comment_id: UUID, video_id: UUID, when: datetime) -> CommentCase:
        video = self.load(Video, video_id, what="video")
        case = self.load_or_none(CommentCase, CommentCase.create_id(comment_id))
        if case is None:
            return CommentCase.open_for(comment_id, video, occurred_at=when)
        case.ensure_on_video(video.id)
        return case

    def report_comment(
        self,
        comment_id: UUID,
        *,
        video_id: UUID,
        reporter_id: UUID,
        reason: str,
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            when = self.event_time(occurred_at)
            case = self._case_for_comment(comment_id, video_id, when)
            case.report(reporter_id=reporter_id, reason=reason, occurred_at=when)
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency)

    def flag_comment(
        self,
        comment_id: UUID,
        *,
        video_id: UUID,
        model: str,
        score: float,
        reasons: list[str],
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """A classifier flags a comment (the system acts: no actor). Callers that may
        repeat themselves (the alert-action worker) pass an idempotency key."""

        def decide() -> Outcome:
            when = self.event_time(occurred_at)
            case = self._case_for_comment(comment_id, video_id, when)
            case.auto_flag(model=model, score=score, reasons=reasons, occurred_at=when)
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency)

    def decide_comment(
        self,
        case_id: UUID,
        *,
        moderator_id: UUID,
        outcome: str,
        note: str = "",
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        def decide() -> Outcome:
            case = self.load(CommentCase, case_id, what="comment_case")
            self.check_version(case, expected_version)
            case.decide(
                moderator_id=moderator_id,
                outcome=outcome,
                note=note,
                occurred_at=self.event_time(occurred_at),
            )
            return Outcome([case], case)

        return self.execute(decide, idempotency=idempotency, expected_version=expected_version)

    def get_comment_case(self, case_id: UUID) -> CommentCase:
        return self.load(CommentCase, case_id, what="comment_case")
