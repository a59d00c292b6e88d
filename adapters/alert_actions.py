"""AlertActionWorker: carries out the actions alerts ask for, each exactly once.

An alert row in rm_alerts may name an action (`escalate` a video's moderation case,
`auto_flag` a video) with `action_status = "pending"`. The worker runs the command
through ModerationApplication with the idempotency key f"alert:{alert_id}" and then
records the outcome in the row. The key is what makes it exactly once: the command's
events and the key are saved in one event-store transaction, so if the worker dies
between the command and `record_action`, or a rebuild of the read model brings the
alert back as pending, the next attempt replays the recorded result instead of
writing a second event.

Outcomes:
- done: the command was recorded (or replayed);
- skipped: the domain refused it as expected (case already decided or at that priority,
  video removed, case or video unknown) -- the reason is kept, no retry;
- failed: an unexpected error; retried after `retry_after`, at most `max_attempts`
  times, then "abandoned". The attempt count is kept in the result text
  ("attempt N: ..."), as rm_alerts has no column for it.

Commands are attributed to the system: their event time is the alert's `raised_at` (the
event time of the event that raised it, so a replayed log gives the same events), and
an action needing an actor uses SYSTEM_ACTOR_ID (ModerationCase.escalate and
auto_flag take none today).

Contract for alerts asking for an action (other projections raise them too):
- escalate: subject_type "video"; details["case_id"] (else the video's derived case id);
  details["priority"] (else "critical" for critical alerts, "high" otherwise).
- auto_flag: subject_type "video"; the flag's model is the alert's source, its score
  details["flag_score"] (else the alert's score), clamped to [0, 1], its reasons
  details["flag_reasons"] (else [rule]).
- flag_comment: subject_type "comment" (the comment id); details["video_id"] (the
  comment's video, required); model, score and reasons as for auto_flag. The command
  opens the comment's case if needed (CommentCase.AutoFlagged).
"""

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.alerts_view import pending_actions, record_action
from adapters.readmodel.times import as_utc
from commands.base import Clock, CommandResult, Idempotency, utc_now
from commands.moderation import ModerationApplication
from domain.errors import DomainError, InvalidValue, VersionConflict
from domain.moderation import ModerationCase

log = logging.getLogger(__name__)

# The actor of commands the system issues on its own (documented in docs/features.md).
SYSTEM_ACTOR_ID = UUID("00000000-0000-4000-8000-00000000a1e7")
_ATTEMPT = re.compile(r"^attempt (\d+):")


@dataclass(frozen=True)
class ActionOutcome:
    alert_id: UUID
    status: str  # done | skipped | failed | abandoned
    result: str


def idempotency_for(row: Any) -> Idempotency:
    """The key is the alert id; the fingerprint names what the action is about, so the
    same alert always matches its earlier attempt (and a clash would be visible)."""
    return Idempotency(
        key=f"alert:{row.alert_id}",
        fingerprint=f"alert-action|{row.action}|{row.subject_type}:{row.subject_id}",
    )


def attempts_of(row: Any) -> int:
    match = _ATTEMPT.match(row.action_result or "") if row.action_status == "failed" else None
    return int(match.group(1)) if match else 0


class AlertActionWorker:
    """Same conventions as FollowingWorker: a daemon thread, `run_until_idle`, errors
    recorded in `last_error` and retried after a back-off. It is woken by `notify`
    (wire it to projection commits that changed "alerts") and polls otherwise, for
    alerts written by projections in another process."""

    thread_name = "alert-actions"

    def __init__(
        self,
        moderation: ModerationApplication,
        engine: sa.Engine,
        *,
        poll_seconds: float = 2.0,
        batch_size: int = 100,
        max_attempts: int = 5,
        retry_after: timedelta = timedelta(seconds=30),
        clock: Clock = utc_now,
    ) -> None:
        self.moderation = moderation
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_after = retry_after
        self.clock = clock
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._actions: dict[str, Callable[[Any], CommandResult]] = {
            "escalate": self._escalate,
            "auto_flag": self._auto_flag,
            "flag_comment": self._flag_comment,
        }

    # -- one pass -------------------------------------------------------------------------
    def run_until_idle(self) -> int:
        """Act on every due alert once; return how many were acted on. An alert that
        fails is not retried within the same call (its back-off starts now)."""
        done: set[UUID] = set()
        while not self._stop.is_set():
            with self.engine.connect() as conn:
                rows = pending_actions(
                    conn,
                    self.batch_size,
                    retry_failed_before=self.clock() - self.retry_after,
                )
            rows = [r for r in rows if r.alert_id not in done]
            if not rows:
                break
            for row in rows:
                outcome = self.act(row)
                with self.engine.begin() as conn:
                    record_action(conn, row.alert_id, outcome.status, outcome.result)
                done.add(row.alert_id)
        return len(done)

    def act(self, row: Any) -> ActionOutcome:
        """Run the alert's command; classify the outcome (never raises for a command)."""
        action = self._actions.get(row.action)
        if action is None:
            return ActionOutcome(row.alert_id, "skipped", f"unknown action {row.action!r}")
        try:
            result = action(row)
        except VersionConflict as e:  # contention, not a refusal: try again later
            return self._failure(row, f"version_conflict: {e}")
        except DomainError as e:
            return ActionOutcome(row.alert_id, "skipped", f"{e.code}: {e.message}")
        except Exception as e:
            log.exception("alert action %s of alert %s failed", row.action, row.alert_id)
            return self._failure(row, f"{type(e).__name__}: {e}")
        how = "replayed" if result.replayed else "recorded"
        return ActionOutcome(
            row.alert_id,
            "done",
            f"{how}: {row.action} of {result.id} (version {result.version}, "
            f"position {result.position})",
        )

    def _failure(self, row: Any, message: str) -> ActionOutcome:
        attempt = attempts_of(row) + 1
        status = "failed" if attempt < self.max_attempts else "abandoned"
        return ActionOutcome(row.alert_id, status, f"attempt {attempt}: {message}")

    # -- the actions ----------------------------------------------------------------------
    def _escalate(self, row: Any) -> CommandResult:
        details = row.details or {}
        case_id = (
            UUID(details["case_id"])
            if "case_id" in details
            else ModerationCase.create_id(_video_id(row))
        )
        priority = details.get("priority") or ("critical" if row.severity == "critical" else "high")
        return self.moderation.escalate_case(
            case_id,
            priority=priority,
            occurred_at=as_utc(row.raised_at),
            idempotency=idempotency_for(row),
        )

    def _auto_flag(self, row: Any) -> CommandResult:
        details = row.details or {}
        score = min(1.0, max(0.0, float(details.get("flag_score", row.score))))
        reasons = [str(r) for r in details.get("flag_reasons") or [row.rule]]
        return self.moderation.auto_flag_video(
            _video_id(row),
            model=row.source,
            score=score,
            reasons=reasons,
            occurred_at=as_utc(row.raised_at),
            idempotency=idempotency_for(row),
        )

    def _flag_comment(self, row: Any) -> CommandResult:
        details = row.details or {}
        if row.subject_type != "comment" or "video_id" not in details:
            raise InvalidValue(  # malformed: retrying cannot help, so it is skipped
                "a flag_comment alert must be about a comment and name its video_id",
                code="not_a_comment_alert",
            )
        score = min(1.0, max(0.0, float(details.get("flag_score", row.score))))
        reasons = [str(r) for r in details.get("flag_reasons") or [row.rule]]
        return self.moderation.flag_comment(
            UUID(row.subject_id),
            video_id=UUID(details["video_id"]),
            model=row.source,
            score=score,
            reasons=reasons,
            occurred_at=as_utc(row.raised_at),
            idempotency=idempotency_for(row),
        )

    # -- thread ---------------------------------------------------------------------------
    def notify(self, name: str = "", position: int = 0, changed: set[str] | None = None) -> None:
        """Wake the worker (signature of a projection runner's on_commit callback)."""
        if changed is None or "alerts" in changed:
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_until_idle()
                self.last_error = None
            except Exception as e:  # e.g. the read model is unreachable: nothing is lost,
                self.last_error = f"{type(e).__name__}: {e}"  # the rows stay pending
                log.exception("%s failed; retrying", self.thread_name)
                self._stop.wait(1.0)
                continue
            self._wake.wait(self.poll_seconds)


def _video_id(row: Any) -> UUID:
    if row.subject_type != "video":
        raise InvalidValue(  # a malformed alert: retrying cannot help, so it is skipped
            f"a {row.action} alert must be about a video, not a {row.subject_type}",
            code="not_a_video_alert",
        )
    return UUID(row.subject_id)
