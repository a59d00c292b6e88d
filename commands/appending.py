"""The write side's port to group commit: append requests and why one can be refused.

A command decided against the in-memory write model becomes an `AppendRequest`: its
encoded events, its idempotency row, and what the decision assumed without reading the
store (streams it believes new, the versions of streams it only read). An `Appender`
(adapters/eventstore/committer.py) commits many requests in one transaction and checks
those assumptions there, under the events table lock, per request: a request whose
assumption no longer holds is refused with one of the errors below and never fails its
neighbours. The caller fixes its view of the store (re-reads the streams named) and
decides again.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

from commands.base import IdempotencyRecord

Watched = tuple[int, UUID, int, str]  # position, stream id, version, topic


class EncodedEvent(NamedTuple):
    """An event as stored: the fields of the library's StoredEvent (what its recorders
    write), as a tuple: a frozen dataclass costs twice as much to build, per event."""

    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


@dataclass(eq=False)
class AppendRequest:
    """One command's write. `events` are stored in order, all or none, with the idempotency
    row in the same transaction.

    `new_streams`: streams whose first event (version 1) is in `events`, decided without
    reading the store: the appender refuses the request if any of them exists.
    `reads`: streams the decision read but does not write (a video), with the version it
    saw: refused if the appender knows a newer version of any of them.
    `depends_on`, `after`: see below; a request refused for any reason refuses every later
    one that `touched` its written streams.
    """

    events: Sequence[EncodedEvent | StoredEvent]
    idempotency: IdempotencyRecord | None = None
    new_streams: Collection[UUID] = ()
    reads: Mapping[UUID, int] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic(); nothing is stored once it passed
    # Streams the decision read while an earlier request that writes them was still
    # uncommitted (its answers for them rest on that request's provisional state), and
    # those requests' commits: if one is refused, so is this one (also when it was refused
    # before this one was submitted).
    depends_on: frozenset[UUID] = frozenset()
    after: tuple["Future[list[int]]", ...] = ()

    @cached_property
    def streams(self) -> frozenset[UUID]:
        """The streams it writes."""
        return frozenset(e.originator_id for e in self.events)  # type: ignore[misc]

    @cached_property
    def touched(self) -> frozenset[UUID]:
        """The streams it writes or whose provisional state its decision used."""
        return self.streams | self.depends_on


class AppendRefused(IntegrityError):
    """A request was not stored because an assumption of its decision did not hold."""


class StreamsExist(AppendRefused):
    """Streams decided as new exist in the store (read them, decide again)."""

    def __init__(self, stream_ids: Collection[UUID]) -> None:
        super().__init__(f"{len(stream_ids)} stream(s) decided as new already exist")
        self.stream_ids = frozenset(stream_ids)


class ReadsChanged(AppendRefused):
    """Streams the decision read changed since (the write model has the new state)."""

    def __init__(self, stream_ids: Collection[UUID]) -> None:
        super().__init__(f"{len(stream_ids)} stream(s) read by the decision changed")
        self.stream_ids = frozenset(stream_ids)


class IdempotencyKeyTaken(AppendRefused):
    """The request's Idempotency-Key is stored already: replay the stored result."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} is already used")
        self.key = key


class DependsOnRefused(AppendRefused):
    """An earlier request on one of the same streams was refused, and this one was decided
    on its provisional state."""


class CommitExpired(Exception):
    """The request's deadline passed before it was committed: nothing was stored."""


def refused(commit: "Future[list[int]]") -> bool:
    """Whether a request's commit has ended without storing it (refused, failed or
    cancelled); False while it is pending."""
    return commit.done() and (commit.cancelled() or commit.exception() is not None)


class Appender(ABC):
    """Commits append requests, many per transaction; results arrive as futures."""

    @abstractmethod
    def add_watch_listener(self, listener: Callable[[list[Watched]], None]) -> None:
        """`listener(events)` learns every watched event the appender sees committed, as
        (position, stream id, version, topic), before the requests its checks refused
        hear of it."""

    @abstractmethod
    def close(self) -> None:
        """Commit what is queued and stop."""

    @abstractmethod
    def submit(self, request: AppendRequest) -> "Future[list[int]]":
        """Queue `request`; the future gives its events' notification ids (positions), in
        order, or raises an AppendRefused, CommitExpired or a database error. A request
        refused for any reason refuses, at once, every queued or later-submitted request
        decided on it (`touched`, `after`): `DependsOnRefused`."""
