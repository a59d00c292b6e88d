"""Who is calling: a role, and for creators the creator id they act as."""

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    INGEST = "ingest"  # the platform's backend: engagement signals, reports, flags
    CREATOR = "creator"  # one creator: their profile, videos and appeals only
    MODERATOR = "moderator"  # cases and decisions; may see viewer identities
    ANALYST = "analyst"  # read-only aggregates, never viewer identities
    ADMIN = "admin"  # everything, including rebuilds, replay and erasure


ALL_ROLES: tuple[Role, ...] = tuple(Role)


@dataclass(frozen=True)
class Principal:
    role: Role
    key_id: str  # the API key id, or "jwt:<sub>" for bearer tokens: the rate-limit bucket
    subject_id: UUID | None = None  # the creator id, for role creator
    label: str = ""

    def owns(self, creator_id: UUID | None) -> bool:
        """True when this caller may act as `creator_id` (admins act for anyone)."""
        if self.role is Role.ADMIN:
            return True
        return (
            self.role is Role.CREATOR and creator_id is not None and creator_id == self.subject_id
        )


class AuthError(Exception):
    """401 (no or bad credentials) or 403 (a role or object the caller may not use)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def unauthenticated(
    message: str = "credentials required: X-API-Key or Authorization: Bearer",
) -> AuthError:
    return AuthError(401, "unauthenticated", message)


def forbidden(message: str) -> AuthError:
    return AuthError(403, "forbidden", message)
