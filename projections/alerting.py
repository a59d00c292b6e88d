"""Alerts: what a rule or model projection raises, and the interface it raises them through.

An alert's id is derived from its rule, subject and window (uuid5), so a projection that
re-applies a batch after a crash, or a rebuild from the first event, writes the same
alerts again instead of new ones. An alert may name an action (`auto_flag`, `escalate`):
the alert-action worker carries it out through a command whose idempotency key is the
alert id, so the action takes effect exactly once however often it is attempted.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

ALERTS_NAMESPACE = UUID("6f1d0b5e-6d55-4a9e-9a53-3f1c2f0c7a10")
SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("auto_flag", "escalate", "flag_comment")


def alert_id(rule: str, subject_type: str, subject_id: str, window: str) -> UUID:
    """The same rule firing on the same subject for the same window is the same alert."""
    return uuid5(ALERTS_NAMESPACE, f"{rule}|{subject_type}|{subject_id}|{window}")


@dataclass(frozen=True)
class Alert:
    rule: str
    source: str  # the projection that raised it
    subject_type: str  # video | creator | hashtag | sound
    subject_id: str
    window: str  # what makes this firing distinct, e.g. the minute or the strike count
    severity: str
    score: float
    summary: str
    raised_at: datetime  # event time
    position: int  # the event that raised it
    details: dict[str, Any] = field(default_factory=dict)
    action: str | None = None  # auto_flag | escalate | flag_comment

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}")
        if self.action is not None and self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}")

    @property
    def id(self) -> UUID:
        return alert_id(self.rule, self.subject_type, self.subject_id, self.window)


class AlertSink(ABC):
    @abstractmethod
    def raise_alert(self, alert: Alert) -> None:
        """Record the alert (idempotent: the same alert id again changes nothing)."""
