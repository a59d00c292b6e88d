"""Findings of the review of the projection quarantine and unique handles."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

import domain.creator
from adapters.bootstrap import Container, bootstrap
from adapters.settings import Settings
from domain.creator import Creator
from domain.errors import InvariantViolation

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def containers(tmp_path: Path) -> Iterator[Callable[[], Container]]:
    built: list[Container] = []

    def build() -> Container:
        url = f"sqlite:///{tmp_path}/store.db"
        c = bootstrap(Settings(database_url=url, projections_in_process=False), clock=lambda: NOW)
        built.append(c)
        return c

    yield build
    for c in reversed(built):
        c.close()


def test_the_handle_backfill_takes_a_creator_registered_before_the_event_time_bound(
    containers, monkeypatch
):
    """Event times before 2000-01-01 were accepted until today (check_event_time had no
    lower bound): an older store may hold such a Creator.Registered. The backfill must
    reserve its handle, not refuse it with event_time_too_early (which made serve fail
    at startup and every registration answer 422)."""
    old = containers()
    with monkeypatch.context() as m:  # what the code before the bound accepted
        m.setattr(domain.creator, "check_event_time", lambda t: t)
        creator = Creator.register(
            creator_id=uuid4(), handle="old.timer", display_name="Old", region="SE",
            occurred_at=datetime(1999, 12, 31, tzinfo=UTC),
        )  # fmt: skip
        old.content.save(creator)
    upgraded = containers()

    assert upgraded.content.reserve_existing_handles() == 1
    with pytest.raises(InvariantViolation) as taken:
        upgraded.content.register_creator(handle="Old.Timer", display_name="N", region="SE")
    assert taken.value.code == "handle_taken"
