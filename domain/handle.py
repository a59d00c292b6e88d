"""HandleReservation: one creator per handle, enforced by the event store itself.

A handle is unique after normalisation (domain.values.check_handle: case-folded, '@' and
surrounding spaces dropped). Each normalised handle has one stream, whose id is derived
from the handle, and a registration creates it (version 1) in the same transaction as the
creator's `Registered` event. Two registrations of one handle, in any processes, both try
to write version 1 of the same stream: the store's unique (stream, version) lets exactly
one commit, and the other, deciding again, finds the handle reserved (`handle_taken`).
No read model is consulted, so a lagging projection cannot let a duplicate through.

Handles never change (Creator.update_profile changes display name and region only), so a
reservation is never released; docs/architecture.md, "Unique handles".
"""

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvariantViolation
from domain.values import check_event_time, check_handle, derived_id


class HandleReservation(Aggregate):
    class Reserved(Aggregate.Created):
        handle: str
        creator_id: UUID
        occurred_at: datetime

    @staticmethod
    def create_id(handle: str) -> UUID:
        """The stream of a handle, the same for every spelling check_handle accepts."""
        return derived_id("handle", check_handle(handle))

    @event(Reserved)
    def __init__(self, handle: str, creator_id: UUID, occurred_at: datetime) -> None:
        self.handle = handle
        self.creator_id = creator_id
        self.reserved_at = occurred_at

    @classmethod
    def reserve(
        cls,
        *,
        handle: str,
        creator_id: UUID,
        occurred_at: datetime,
        held: "HandleReservation | None",
    ) -> "HandleReservation":
        """Reserve `handle` for `creator_id`; `held` is the handle's stream as stored (None
        when nobody holds it). A handle already held is refused, whoever holds it: a
        creator registers once (a second registration is `creator_exists` before this)."""
        handle = check_handle(handle)
        if held is not None:
            raise InvariantViolation(
                f"handle @{handle} is already taken", code="handle_taken", handle=handle
            )
        return cls(handle=handle, creator_id=creator_id, occurred_at=check_event_time(occurred_at))
