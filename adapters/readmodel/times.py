"""Datetimes in and out of read-model tables."""

from datetime import UTC, datetime


def as_utc(at: datetime) -> datetime:
    """An aware UTC datetime. Timezone columns come back naive from SQLite (they were stored
    in UTC) and aware from PostgreSQL; event times arrive aware in any zone."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
