"""ReelPulse domain model: aggregates and their events. Pure: no I/O, no clock."""

from domain.creator import Creator
from domain.engagement import Engagement
from domain.errors import DomainError, InvalidValue, InvariantViolation, NotFound, VersionConflict
from domain.following import Following
from domain.moderation import ModerationCase
from domain.video import Video

__all__ = [
    "Creator",
    "DomainError",
    "Engagement",
    "Following",
    "InvalidValue",
    "InvariantViolation",
    "ModerationCase",
    "NotFound",
    "VersionConflict",
    "Video",
]
