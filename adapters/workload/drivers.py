"""Drivers: apply a generated workload through the applications or through the REST API.

Both tolerate rejections (a correct backend rejects few generated commands, but e.g. a
policy that has not yet removed a video over HTTP lets a few more views in) and count
what happened per item: a batch of n signals counts n items, any other command one.
"""

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from adapters.bootstrap import Container
from adapters.workload.model import (
    AppealCase,
    AutoFlagVideo,
    Command,
    DecideCase,
    DecideComment,
    EngagementBatch,
    PublishVideo,
    RegisterCreator,
    ReportComment,
    ReportVideo,
    ResolveAppeal,
)
from commands.base import CommandResult
from commands.engagement import Signal
from domain.errors import DomainError

Progress = Callable[[int], None]


@dataclass
class DriveStats:
    commands: int = 0
    items: int = 0
    recorded: int = 0
    duplicate: int = 0
    rejected: int = 0
    policy_events: int = 0  # decisions the moderation policy applied (application driver)
    position: int = 0  # the store's head position (or the highest position seen over HTTP)
    seconds: float = 0.0
    rejections: Counter[str] = field(default_factory=Counter)  # by error code

    @property
    def rejected_fraction(self) -> float:
        return self.rejected / self.items if self.items else 0.0

    def count(self, status: str, error: str | None = None) -> None:
        self.items += 1
        if status == "recorded":
            self.recorded += 1
        elif status == "duplicate":
            self.duplicate += 1
        else:
            self.rejected += 1
            self.rejections[error or "unknown"] += 1

    def summary(self) -> str:
        rate = self.items / self.seconds if self.seconds else 0.0
        return (
            f"{self.items} items in {self.commands} commands: {self.recorded} recorded, "
            f"{self.duplicate} duplicate, {self.rejected} rejected; head position "
            f"{self.position}; {self.seconds:.1f} s ({rate:,.0f} items/s)"
        )


def _size(command: Command) -> int:
    return len(command.signals) if isinstance(command, EngagementBatch) else 1


# -- in process ----------------------------------------------------------------------------
def drive_application(
    container: Container, commands: Iterable[Command], progress: Progress | None = None
) -> DriveStats:
    """Apply commands via the applications, running the moderation policy after decisions
    (as the background follower would) so later commands see removed videos."""
    stats, started = DriveStats(), time.perf_counter()
    for command in commands:
        stats.commands += 1
        apply_one(container, command, stats)
        if isinstance(command, DecideCase | ResolveAppeal):
            stats.policy_events += container.run_policies_until_idle()
        if progress is not None:
            progress(_size(command))
    stats.policy_events += container.run_policies_until_idle()
    stats.position = container.head_position
    stats.seconds = time.perf_counter() - started
    return stats


def apply_one(container: Container, command: Command, stats: DriveStats) -> None:
    """Apply one command through the applications, counting its items in `stats`."""
    if isinstance(command, EngagementBatch):
        _ingest(container, command, stats)
        return
    try:
        _apply(container, command)
    except DomainError as e:
        stats.count("rejected", e.code)
    else:
        stats.count("recorded")


def _ingest(container: Container, batch: EngagementBatch, stats: DriveStats) -> None:
    try:
        result = container.engagement.ingest(list(batch.signals))
    except DomainError as e:  # e.g. too many concurrent writers: the batch as a whole failed
        for _ in batch.signals:
            stats.count("rejected", e.code)
        return
    for item in result.items:
        stats.count(item.status, item.error)


def _apply(c: Container, command: Command) -> CommandResult:
    match command:
        case RegisterCreator():
            return c.content.register_creator(
                creator_id=command.creator_id,
                handle=command.handle,
                display_name=command.display_name,
                region=command.region,
                occurred_at=command.occurred_at,
            )
        case PublishVideo():
            return c.content.publish_video(
                video_id=command.video_id,
                creator_id=command.creator_id,
                caption=command.caption,
                hashtags=list(command.hashtags),
                sound_id=command.sound_id,
                duration_seconds=command.duration_seconds,
                occurred_at=command.occurred_at,
            )
        case ReportVideo():
            return c.moderation.report_video(
                command.video_id,
                reporter_id=command.reporter_id,
                reason=command.reason,
                occurred_at=command.occurred_at,
            )
        case AutoFlagVideo():
            return c.moderation.auto_flag_video(
                command.video_id,
                model=command.model,
                score=command.score,
                reasons=list(command.reasons),
                occurred_at=command.occurred_at,
            )
        case DecideCase():
            return c.moderation.decide_case(
                command.case_id,
                moderator_id=command.moderator_id,
                outcome=command.outcome,
                policy=command.policy,
                note=command.note,
                occurred_at=command.occurred_at,
            )
        case AppealCase():
            return c.moderation.appeal_case(
                command.case_id,
                appellant_id=command.appellant_id,
                statement=command.statement,
                occurred_at=command.occurred_at,
            )
        case ResolveAppeal():
            return c.moderation.resolve_appeal(
                command.case_id,
                moderator_id=command.moderator_id,
                resolution=command.resolution,
                note=command.note,
                occurred_at=command.occurred_at,
            )
        case ReportComment():
            return c.moderation.report_comment(
                command.comment_id,
                video_id=command.video_id,
                reporter_id=command.reporter_id,
                reason=command.reason,
                occurred_at=command.occurred_at,
            )
        case DecideComment():
            return c.moderation.decide_comment(
                command.case_id,
                moderator_id=command.moderator_id,
                outcome=command.outcome,
                note=command.note,
                occurred_at=command.occurred_at,
            )
    raise TypeError(f"not a workload command: {command!r}")


# -- over HTTP -----------------------------------------------------------------------------
class Response(Protocol):
    status_code: int

    def json(self) -> Any: ...


class PostClient(Protocol):
    """The part of httpx.Client (or Starlette's TestClient) that the driver uses."""

    def post(self, url: str, *, json: Any) -> Any: ...


def drive_http(
    client: PostClient, commands: Iterable[Command], progress: Progress | None = None
) -> DriveStats:
    """Send commands to the REST API. The server's policy follower applies decisions in the
    background, so a few signals may reach a video just before its removal takes effect."""
    stats, started = DriveStats(), time.perf_counter()
    for command in commands:
        stats.commands += 1
        path, body = http_request(command)
        response = client.post(path, json=body)
        payload = _json(response)
        if isinstance(command, EngagementBatch) and 200 <= response.status_code < 300:
            for item in payload.get("items", []):
                stats.count(item.get("status", "recorded"), item.get("error"))
        elif 200 <= response.status_code < 300:
            stats.count("recorded")
        else:
            code = _error_code(payload, response.status_code)
            for _ in range(_size(command)):
                stats.count("rejected", code)
        if isinstance(payload.get("position"), int):
            stats.position = max(stats.position, payload["position"])
        if progress is not None:
            progress(_size(command))
    stats.seconds = time.perf_counter() - started
    return stats


def http_request(command: Command) -> tuple[str, dict[str, Any]]:
    """The REST path and JSON body for a command (None fields omitted)."""
    match command:
        case RegisterCreator():
            return "/v1/creators", _body(
                creator_id=command.creator_id,
                handle=command.handle,
                display_name=command.display_name,
                region=command.region,
                occurred_at=command.occurred_at,
            )
        case PublishVideo():
            return "/v1/videos", _body(
                video_id=command.video_id,
                creator_id=command.creator_id,
                caption=command.caption,
                hashtags=list(command.hashtags),
                sound_id=command.sound_id,
                duration_seconds=command.duration_seconds,
                occurred_at=command.occurred_at,
            )
        case EngagementBatch():
            return "/v1/engagement/batch", {"items": [batch_item(s) for s in command.signals]}
        case ReportVideo():
            return f"/v1/videos/{command.video_id}/reports", _body(
                reporter_id=command.reporter_id,
                reason=command.reason,
                occurred_at=command.occurred_at,
            )
        case AutoFlagVideo():
            return f"/v1/videos/{command.video_id}/flags", _body(
                model=command.model,
                score=command.score,
                reasons=list(command.reasons),
                occurred_at=command.occurred_at,
            )
        case DecideCase():
            return f"/v1/cases/{command.case_id}/decision", _body(
                moderator_id=command.moderator_id,
                outcome=command.outcome,
                policy=command.policy,
                note=command.note,
                occurred_at=command.occurred_at,
            )
        case AppealCase():
            return f"/v1/cases/{command.case_id}/appeal", _body(
                appellant_id=command.appellant_id,
                statement=command.statement,
                occurred_at=command.occurred_at,
            )
        case ResolveAppeal():
            return f"/v1/cases/{command.case_id}/appeal-resolution", _body(
                moderator_id=command.moderator_id,
                resolution=command.resolution,
                note=command.note,
                occurred_at=command.occurred_at,
            )
        case ReportComment():
            return f"/v1/comments/{command.comment_id}/reports", _body(
                video_id=command.video_id,
                reporter_id=command.reporter_id,
                reason=command.reason,
                occurred_at=command.occurred_at,
            )
        case DecideComment():
            return f"/v1/comment-cases/{command.case_id}/decision", _body(
                moderator_id=command.moderator_id,
                outcome=command.outcome,
                note=command.note,
                occurred_at=command.occurred_at,
            )
    raise TypeError(f"not a workload command: {command!r}")


# Batch items are validated per type with unknown fields forbidden: send only these.
_ITEM_FIELDS: dict[str, tuple[str, ...]] = {
    "view": ("video_id", "watch_seconds", "completed", "traffic_source", "device"),
    "like": ("video_id",),
    "unlike": ("video_id",),
    "share": ("video_id", "channel"),
    "comment": ("video_id", "text", "comment_id"),
    "delete_comment": ("video_id", "comment_id"),
    "follow": ("creator_id",),
    "unfollow": ("creator_id",),
}


def batch_item(signal: Signal) -> dict[str, Any]:
    fields = ("viewer_id", *_ITEM_FIELDS[signal.kind], "client_event_id", "occurred_at")
    return {"type": signal.kind, **_body(**{name: getattr(signal, name) for name in fields})}


def _body(**fields: Any) -> dict[str, Any]:
    return {name: _jsonable(value) for name, value in fields.items() if value is not None}


def _jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _json(response: Any) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _error_code(payload: dict[str, Any], status: int) -> str:
    error = payload.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return error["code"]
    return f"http_{status}"
