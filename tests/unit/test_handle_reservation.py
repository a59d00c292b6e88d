"""HandleReservation: one stream per normalised handle, created once.

The store's unique (stream, version) is what makes a reservation exclusive across
processes (tests/integration/test_unique_handles.py); here, the rules the aggregate itself
keeps: every spelling of a handle names the same stream, and a held handle is refused.
"""

from uuid import UUID

import pytest

from domain.errors import InvalidValue, InvariantViolation
from domain.handle import HandleReservation

from .given_when_then import T0, at, given, history, rejected

ANA, BOB = UUID(int=1), UUID(int=2)


def reserved(handle: str = "dance.queen", creator_id: UUID = ANA) -> HandleReservation:
    return given(
        history(
            HandleReservation.reserve(
                handle=handle, creator_id=creator_id, occurred_at=T0, held=None
            )
        )
    )


def test_reserving_a_free_handle_records_the_normalised_handle_and_its_creator():
    reservation = HandleReservation.reserve(
        handle=" @Dance.Queen ", creator_id=ANA, occurred_at=T0, held=None
    )

    [event] = reservation.collect_events()

    assert type(event) is HandleReservation.Reserved
    assert event.originator_id == HandleReservation.create_id("dance.queen")
    assert (event.handle, event.creator_id, event.occurred_at) == ("dance.queen", ANA, T0)


@pytest.mark.parametrize(
    "spelling", ["dance.queen", "DANCE.QUEEN", "@Dance.Queen", "  dance.queen\t"]
)
def test_every_spelling_of_a_handle_names_one_stream(spelling):
    assert HandleReservation.create_id(spelling) == HandleReservation.create_id("dance.queen")


def test_different_handles_name_different_streams():
    assert HandleReservation.create_id("dance.queen") != HandleReservation.create_id("dance_queen")


@pytest.mark.parametrize(
    "spelling", ["dance.queen", "Dance.Queen", "@DANCE.queen", " dance.queen "]
)
def test_given_a_reserved_handle_when_another_creator_reserves_it_then_handle_taken(spelling):
    held = reserved("dance.queen", ANA)

    error = rejected(
        lambda: HandleReservation.reserve(
            handle=spelling, creator_id=BOB, occurred_at=at(1), held=held
        ),
        InvariantViolation,
        "handle_taken",
    )

    assert "@dance.queen" in error.message


def test_an_invalid_handle_is_refused_before_anything_else():
    rejected(
        lambda: HandleReservation.reserve(handle="a", creator_id=ANA, occurred_at=T0, held=None),
        InvalidValue,
        "invalid_handle",
    )
    with pytest.raises(InvalidValue):
        HandleReservation.create_id("no spaces")


def test_every_domain_module_with_events_has_a_kafka_family():
    """The outbound relay publishes every stored event to its module's family topic
    (adapters/kafka/relay.py): a module it cannot place stops the relay with a KeyError."""
    import importlib
    import pkgutil

    from eventsourcing.domain import Aggregate

    import domain
    from adapters.kafka.envelope import FAMILIES, FAMILY_OF_MODULE

    with_events = {
        info.name
        for info in pkgutil.iter_modules(domain.__path__, "domain.")
        if any(
            isinstance(value, type) and issubclass(value, Aggregate) and value is not Aggregate
            for value in vars(importlib.import_module(info.name)).values()
            if getattr(value, "__module__", None) == info.name
        )
    }

    assert "domain.handle" in with_events
    assert with_events <= set(FAMILY_OF_MODULE), with_events - set(FAMILY_OF_MODULE)
    assert set(FAMILY_OF_MODULE.values()) <= set(FAMILIES)
