"""The event store: eventsourcing's SQLite/PostgreSQL recorders plus ReelPulse extensions."""

from adapters.eventstore.factory import open_shared_store

__all__ = ["open_shared_store"]
