"""Shared machinery for the write side: one event store, results, idempotency, retries.

Every bounded-context application below shares ONE event store (one table, one global
order), so the position returned by any command is comparable with any other: it is the
consistency token that the read side honours.
"""

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    ProcessRecorder,
    Recording,
    StoredEvent,
)

from domain.errors import InvalidValue, NotFound, VersionConflict

if TYPE_CHECKING:
    from commands.appending import Appender

STORE_NAME = "ReelPulse"
MAX_ATTEMPTS = 32  # optimistic-concurrency retries before giving up with a 409
RETRY_BACKOFF_SECONDS = 0.002  # first back-off after a conflict; doubles, jittered
RETRY_BACKOFF_CAP_SECONDS = 0.05
MAX_CLOCK_SKEW = timedelta(minutes=5)  # event times further in the future are rejected


def back_off_after_conflict(attempt: int) -> None:
    """Sleep a jittered, doubling moment so concurrent writers stop colliding in lockstep."""
    ceiling = min(RETRY_BACKOFF_CAP_SECONDS, RETRY_BACKOFF_SECONDS * 2**attempt)
    time.sleep(random.uniform(0, ceiling))


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CommandResult:
    """What every command returns: the aggregate, its new version, the consistency token."""

    id: UUID
    version: int
    position: int
    replayed: bool = False  # True when an Idempotency-Key matched an earlier request
    details: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "version": self.version, "details": dict(self.details)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], position: int) -> "CommandResult":
        return cls(
            id=UUID(data["id"]),
            version=int(data["version"]),
            position=position,
            replayed=True,
            details=dict(data.get("details", {})),
        )


@dataclass(frozen=True)
class Idempotency:
    """A client's Idempotency-Key and a fingerprint of the request it was sent with."""

    key: str
    fingerprint: str


@dataclass(frozen=True)
class IdempotencyRecord:
    """Saved with the events, in the same transaction, so a retry can replay the result."""

    key: str
    fingerprint: str
    result: Mapping[str, Any]


@dataclass(frozen=True)
class StoredIdempotency:
    fingerprint: str
    result: Mapping[str, Any]
    position: int


class EventStoreExtensions(ABC):
    """What ReelPulse's recorders offer beyond eventsourcing's ProcessRecorder.

    Implemented in adapters/ for SQLite and PostgreSQL. `insert_events(...,
    idempotency=IdempotencyRecord)` writes the key row in the events' own transaction.
    """

    @abstractmethod
    def find_idempotency(self, key: str) -> StoredIdempotency | None: ...

    @abstractmethod
    def position_of(self, originator_id: UUID, version: int) -> int | None: ...


class StreamBatchReader(ABC):
    """A recorder that reads many streams in one query (the PostgreSQL bulk path).

    Batch ingest uses it to load every stream a batch touches at once instead of two
    queries per aggregate; recorders without it are read one aggregate at a time.
    """

    @abstractmethod
    def select_streams(
        self,
        originator_ids: Iterable[UUID],
        snapshots: str | None = None,
        timeout: float | None = None,
    ) -> dict[UUID, list[StoredEvent]]:
        """Each stream's stored events by version; with `snapshots` (the snapshot table)
        its latest snapshot and the events after it. `timeout`: the longest wait for a
        connection."""


class IdempotencyKeyReused(InvalidValue):
    code = "idempotency_key_reused"


@dataclass
class SharedStore:
    """The one event store every application of the write side uses."""

    env: dict[str, str]
    factory: InfrastructureFactory[Any]
    recorder: ProcessRecorder
    extensions: EventStoreExtensions
    # The group commit of the lean write path (commands/appending.py); adapters build it.
    appender: "Appender | None" = None
    # Bumped after every commit in this process; followers wait on it instead of polling.
    committed: threading.Condition = field(default_factory=threading.Condition)
    commit_generation: int = 0

    def close(self) -> None:
        """Commit what is queued, stop the group commit, close the connections."""
        if self.appender is not None:
            self.appender.close()
        self.factory.close()

    def notify_committed(self) -> None:
        with self.committed:
            self.commit_generation += 1
            self.committed.notify_all()

    def wait_for_commit(self, seen_generation: int, timeout: float) -> int:
        """Block until a commit newer than `seen_generation` (or timeout); return the newest."""
        with self.committed:
            self.committed.wait_for(lambda: self.commit_generation != seen_generation, timeout)
            return self.commit_generation


@dataclass
class Outcome:
    """What a use case decided: aggregates to save and the result to report."""

    aggregates: Sequence[Aggregate]
    subject: Aggregate
    details: dict[str, str] = field(default_factory=dict)


TAggregate = TypeVar("TAggregate", bound=Aggregate)


class ReelPulseApplication(Application[UUID]):
    """Base for the bounded-context applications: shared store, clock, command runner."""

    name = STORE_NAME
    snapshotting_intervals: Any = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = STORE_NAME  # one store: every context reads and writes the same log

    def __init__(self, store: SharedStore, *, clock: Clock = utc_now) -> None:
        self._store = store
        self.clock = clock
        super().__init__(env=store.env)

    # Infrastructure comes from the shared store, never from os.environ.
    def construct_env(self, name: str, env: Any = None) -> Any:
        from eventsourcing.utils import Environment

        return Environment(name, dict(env or {}))

    def construct_factory(self, env: Any) -> InfrastructureFactory[Any]:
        return self._store.factory

    def construct_recorder(self) -> ProcessRecorder:
        return self._store.recorder

    def close(self) -> None:
        self.closing.set()  # the shared factory is closed by its owner, not by each app

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        self._store.notify_committed()

    # -- helpers for use cases -----------------------------------------------------------
    def event_time(self, occurred_at: datetime | None) -> datetime:
        now = self.clock()
        if occurred_at is None:
            return now
        if occurred_at.tzinfo is None:
            raise InvalidValue("event time must carry a timezone", code="naive_event_time")
        if occurred_at - now > MAX_CLOCK_SKEW:
            raise InvalidValue("event time is in the future", code="event_time_in_future")
        return occurred_at

    def load(self, cls: type[TAggregate], aggregate_id: UUID, *, what: str) -> TAggregate:
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{what} {aggregate_id} not found", code=f"{what}_not_found") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"{what} {aggregate_id} not found", code=f"{what}_not_found")
        return aggregate

    def load_or_none(self, cls: type[TAggregate], aggregate_id: UUID) -> TAggregate | None:
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    @staticmethod
    def check_version(aggregate: Aggregate, expected_version: int | None) -> None:
        if expected_version is not None and aggregate.version != expected_version:
            raise VersionConflict(
                f"expected version {expected_version} but the aggregate is at "
                f"version {aggregate.version}",
                expected=expected_version,
                actual=aggregate.version,
            )

    def execute(
        self,
        decide: Callable[[], Outcome],
        *,
        idempotency: Idempotency | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Run a use case: load -> decide -> save, retrying on concurrent writes.

        `decide` reloads what it needs on every attempt, so a retry re-checks the
        invariants against the winner's events. With `expected_version` the client asked
        for optimistic concurrency, so a conflict is reported instead of retried.
        """
        replay = self._replay(idempotency)
        if replay is not None:
            return replay
        for _attempt in range(MAX_ATTEMPTS):
            outcome = decide()
            pending = [a for a in outcome.aggregates if a.pending_events]
            if not pending:
                return self._result_without_changes(outcome)
            result_json = {
                "id": str(outcome.subject.id),
                "version": outcome.subject.version,
                "details": outcome.details,
            }
            kwargs: dict[str, Any] = {}
            if idempotency is not None:
                kwargs["idempotency"] = IdempotencyRecord(
                    idempotency.key, idempotency.fingerprint, result_json
                )
            try:
                recordings = self.save(*pending, **kwargs)
            except IntegrityError:
                replay = self._replay(idempotency)
                if replay is not None:
                    return replay  # a concurrent retry with the same key won
                if expected_version is not None:
                    raise VersionConflict(
                        "the aggregate was changed concurrently", expected=expected_version
                    ) from None
                back_off_after_conflict(_attempt)
                continue
            return CommandResult(
                id=outcome.subject.id,
                version=outcome.subject.version,
                position=max(r.notification.id for r in recordings),
                details=outcome.details,
            )
        raise VersionConflict("too many concurrent writers on this aggregate; retry later")

    def _replay(self, idempotency: Idempotency | None) -> CommandResult | None:
        if idempotency is None:
            return None
        stored = self._store.extensions.find_idempotency(idempotency.key)
        if stored is None:
            return None
        if stored.fingerprint != idempotency.fingerprint or "id" not in stored.result:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different request"
            )
        return CommandResult.from_json(stored.result, stored.position)

    def _result_without_changes(self, outcome: Outcome) -> CommandResult:
        subject = outcome.subject
        position = self._store.extensions.position_of(subject.id, subject.version) or 0
        return CommandResult(
            id=subject.id, version=subject.version, position=position, details=outcome.details
        )


__all__ = [
    "STORE_NAME",
    "Clock",
    "CommandResult",
    "EventStoreExtensions",
    "Idempotency",
    "IdempotencyKeyReused",
    "IdempotencyRecord",
    "Outcome",
    "ReelPulseApplication",
    "SharedStore",
    "StoredIdempotency",
    "StreamBatchReader",
    "utc_now",
]
