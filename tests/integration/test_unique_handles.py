"""A handle belongs to one creator (issue 16, "The domain"), on every backend.

Stories: a second registration of a handle, however it is spelled, is refused with 409
`handle_taken` over REST; registrations of one handle racing from two write models (two
containers, as two processes would be, each with its own connections) on one database
let exactly one through; an idempotent retry still replays its 201; and a store written
before reservations existed gets its handles reserved before the first new registration.
"""

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings
from domain.creator import Creator
from domain.errors import InvariantViolation

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
THREADS = 8  # four per write model
ROUNDS = 5
SPELLINGS = ["Dance.Queen", "@dance.queen", "  DANCE.QUEEN  ", "@Dance.queen "]
# Spellings of one handle that a round number can follow ("dance.queen3" and so on).
RACE_SPELLINGS = ["Dance.Queen", "@dance.queen", "  DANCE.QUEEN", "@Dance.queen"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database that several containers share: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def containers(db_url: str) -> Iterator[Callable[[], Container]]:
    built: list[Container] = []

    def build() -> Container:
        c = bootstrap(
            Settings(database_url=db_url, projections_in_process=False), clock=lambda: NOW
        )
        built.append(c)
        return c

    yield build
    for c in reversed(built):
        c.close()


@pytest.fixture
def client(containers: Callable[[], Container]) -> Iterator[TestClient]:
    with TestClient(create_app(containers(), run_background=False), headers=HEADERS) as client:
        yield client


def register(client: TestClient, handle: str, **headers: str) -> Any:
    return client.post(
        "/v1/creators",
        json={"handle": handle, "display_name": "Dance Queen", "region": "SE"},
        headers=headers,
    )


def topics(container: Container) -> list[str]:
    return [n.topic for n in container.store.recorder.select_notifications(start=1, limit=10_000)]


REGISTERED = get_topic(Creator.Registered)


# -- sequential, over REST ------------------------------------------------------------------
@pytest.mark.parametrize("again", SPELLINGS)
def test_a_second_registration_of_a_handle_is_409_handle_taken(client, again):
    first = register(client, "dance.queen")
    assert first.status_code == 201, first.text

    second = register(client, again)

    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "handle_taken"
    assert "@dance.queen" in second.json()["error"]["message"]


def test_a_refused_registration_records_nothing_and_other_handles_stay_free(client, containers):
    assert register(client, "dance.queen").status_code == 201
    container = containers()
    head = container.head_position

    assert register(client, "DANCE.QUEEN").status_code == 409
    assert container.head_position == head
    assert register(client, "dance_queen").status_code == 201  # another handle
    assert register(client, "dance.queen2").status_code == 201
    assert topics(container).count(REGISTERED) == 3


def test_an_idempotent_retry_still_replays_201(client):
    first = register(client, "dance.queen", **{"Idempotency-Key": "register-dq"})
    assert first.status_code == 201, first.text

    again = register(client, "dance.queen", **{"Idempotency-Key": "register-dq"})

    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["position"] == first.json()["position"]
    assert again.json()["replayed"] is True
    other = register(client, "Dance.Queen", **{"Idempotency-Key": "another-key"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "handle_taken"


# -- concurrent, from two write models on one database ---------------------------------------
def test_racing_registrations_from_two_write_models_let_exactly_one_through(containers):
    writers = [containers(), containers()]
    barrier = threading.Barrier(THREADS, timeout=60)
    outcomes: dict[int, list[UUID | str]] = {r: [] for r in range(ROUNDS)}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        writer = writers[thread % 2]
        for round_ in range(ROUNDS):
            barrier.wait()
            spelling = f"{RACE_SPELLINGS[thread % len(RACE_SPELLINGS)]}{round_}"
            try:
                outcome: UUID | str = writer.content.register_creator(
                    handle=spelling, display_name="Dance Queen", region="SE"
                ).id
            except InvariantViolation as e:
                outcome = e.code
            except BaseException as e:  # anything else fails the test below
                with lock:
                    errors.append(e)
                continue
            with lock:
                outcomes[round_].append(outcome)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    for round_, results in outcomes.items():
        winners = [r for r in results if isinstance(r, UUID)]
        assert len(winners) == 1, (round_, results)
        assert sorted(r for r in results if not isinstance(r, UUID)) == ["handle_taken"] * (
            THREADS - 1
        )
    assert topics(writers[0]).count(REGISTERED) == ROUNDS


# -- a store written before reservations existed ---------------------------------------------
def registered_the_old_way(container: Container, handle: str, at: datetime = NOW) -> UUID:
    """What register_creator recorded before handles were reserved: the creator alone."""
    creator = Creator.register(
        creator_id=uuid4(), handle=handle, display_name="Old", region="SE", occurred_at=at
    )
    container.content.save(creator)
    return creator.id


def test_handles_registered_before_reservations_are_reserved_before_a_new_registration(
    containers,
):
    old = containers()
    first = registered_the_old_way(old, "dance.queen")
    registered_the_old_way(old, "Dance.Queen")  # a duplicate the old code let through
    registered_the_old_way(old, "bob")
    old.close()
    upgraded = containers()

    with pytest.raises(InvariantViolation) as taken:
        upgraded.content.register_creator(handle="@DANCE.queen", display_name="New", region="SE")
    assert taken.value.code == "handle_taken"
    with pytest.raises(InvariantViolation):
        upgraded.content.register_creator(handle="bob", display_name="New", region="SE")
    assert upgraded.content.register_creator(handle="carol", display_name="C", region="SE")

    from domain.handle import HandleReservation

    held = upgraded.content.repository.get(HandleReservation.create_id("dance.queen"))
    assert held.creator_id == first  # the earliest registration keeps the handle


def test_the_backfill_runs_once_per_store(containers):
    old = containers()
    registered_the_old_way(old, "dance.queen")
    first, second = containers(), containers()

    assert first.content.reserve_existing_handles() == 1
    assert second.content.reserve_existing_handles() == 0  # the store says it is done
    assert first.content.reserve_existing_handles() == 0
    registered_the_old_way(old, "late.writer")  # an old writer left running: not covered
    assert containers().content.reserve_existing_handles() == 0


def test_concurrent_backfills_from_two_write_models_agree(containers):
    old = containers()
    for i in range(20):
        registered_the_old_way(old, f"creator{i}")
    writers = [containers(), containers()]
    barrier = threading.Barrier(2, timeout=30)
    reserved: list[int] = []

    def work(writer: Container) -> None:
        barrier.wait()
        reserved.append(writer.content.reserve_existing_handles())

    threads = [threading.Thread(target=work, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(reserved) == 20  # each handle reserved once, by one of them
    for i in range(20):
        with pytest.raises(InvariantViolation):
            writers[i % 2].content.register_creator(
                handle=f"Creator{i}", display_name="C", region="SE"
            )
