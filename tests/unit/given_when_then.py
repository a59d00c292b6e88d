"""Tests as stories: given past events, when a command, then these new events.

`given` rebuilds an aggregate from its past events only, exactly as a repository would, so
a test never depends on state that was not recorded. `when` runs one command and returns
what it recorded. `when_rejected` runs a command that must fail with a given error code
and checks that nothing was recorded.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate

from domain.errors import DomainError

A = TypeVar("A", bound=Aggregate)
Command = Callable[[A], Any]

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """An event time `minutes` after T0 (timezone-aware)."""
    return T0 + timedelta(minutes=minutes)


def history(aggregate: A, *commands: Command[A]) -> list[Aggregate.Event]:
    """Past events: those already pending on `aggregate`, then those of each command."""
    for command in commands:
        command(aggregate)
    return list(aggregate.collect_events())


def given(events: Sequence[Aggregate.Event]) -> Any:
    """An aggregate rebuilt from past events alone (nothing pending)."""
    aggregate = project_aggregate(None, events)
    assert aggregate is not None, "a history must start with a created event"
    assert not aggregate.pending_events
    return aggregate


@dataclass(frozen=True)
class Then:
    result: Any
    events: list[Aggregate.Event]

    @property
    def types(self) -> list[type]:
        return [type(e) for e in self.events]


def when(aggregate: A, command: Command[A]) -> Then:
    """Run one command; return its result and the new events it recorded."""
    result = command(aggregate)
    return Then(result=result, events=list(aggregate.collect_events()))


def when_rejected(
    aggregate: A, command: Command[A], error: type[DomainError], code: str
) -> DomainError:
    """Run a command that must fail with `error` and `code`, recording nothing."""
    with pytest.raises(error) as info:
        command(aggregate)
    assert info.value.code == code, info.value.message
    assert aggregate.collect_events() == [], "a rejected command must record nothing"
    return info.value


def rejected(command: Callable[[], Any], error: type[DomainError], code: str) -> DomainError:
    """A factory (or other call) that must fail with `error` and `code`."""
    with pytest.raises(error) as info:
        command()
    assert info.value.code == code, info.value.message
    return info.value
