"""Domain errors: expected failures are data, each with a stable machine-readable code.

The HTTP and GraphQL adapters map these classes to status codes / error types in one table.
"""

from typing import Any


class DomainError(Exception):
    """Base class for expected domain failures."""

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidValue(DomainError):
    """A value is malformed or out of range (maps to 422)."""

    code = "invalid_value"


class InvariantViolation(DomainError):
    """The command is well-formed but the aggregate's rules forbid it (maps to 409)."""

    code = "invariant_violation"


class NotFound(DomainError):
    """A referenced aggregate or entity does not exist (maps to 404)."""

    code = "not_found"


class VersionConflict(DomainError):
    """The aggregate changed since the client read it (maps to 409)."""

    code = "version_conflict"
