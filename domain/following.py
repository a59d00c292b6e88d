"""Following: one viewer's follow relationship with one creator (one stream per pair)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.engagement import MAX_REMEMBERED_CLIENT_IDS, check_client_id
from domain.errors import InvariantViolation
from domain.values import check_event_time, derived_id


class Following(Aggregate):
    class Started(Aggregate.Created):
        viewer_id: UUID
        creator_id: UUID
        occurred_at: datetime

    # v2 of both added `client_event_id` (redelivery dedup); v1 events had none.
    class Followed(Aggregate.Event):
        class_version = 2
        client_event_id: str | None
        occurred_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["client_event_id"] = None

    class Unfollowed(Aggregate.Event):
        class_version = 2
        client_event_id: str | None
        occurred_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["client_event_id"] = None

    @staticmethod
    def create_id(viewer_id: UUID, creator_id: UUID) -> UUID:
        return derived_id("following", viewer_id, creator_id)

    @event(Started)
    def __init__(self, viewer_id: UUID, creator_id: UUID, occurred_at: datetime) -> None:
        self.viewer_id = viewer_id
        self.creator_id = creator_id
        self.following = False
        self.client_event_ids: list[str] = []

    @classmethod
    def start(cls, *, viewer_id: UUID, creator_id: UUID, occurred_at: datetime) -> "Following":
        return cls(**start_fields(viewer_id, creator_id, occurred_at))

    def has_seen(self, client_event_id: str | None) -> bool:
        """True when this client event was already recorded (a redelivery)."""
        return client_event_id is not None and client_event_id in self.client_event_ids

    def follow(self, *, occurred_at: datetime, client_event_id: str | None = None) -> bool:
        """Follow the creator. Returns False for a redelivered client event (nothing recorded)."""
        if self.has_seen(client_event_id):
            return False
        self._followed(**follow_fields(self.following, client_event_id, occurred_at))
        return True

    def unfollow(self, *, occurred_at: datetime, client_event_id: str | None = None) -> bool:
        """Unfollow the creator. Returns False for a redelivered client event."""
        if self.has_seen(client_event_id):
            return False
        self._unfollowed(**unfollow_fields(self.following, client_event_id, occurred_at))
        return True

    def _remember(self, client_event_id: str | None) -> None:
        if client_event_id is not None:
            self.client_event_ids.append(client_event_id)
            del self.client_event_ids[:-MAX_REMEMBERED_CLIENT_IDS]

    @event(Followed)
    def _followed(self, client_event_id: str | None, occurred_at: datetime) -> None:
        self.following = True
        self._remember(client_event_id)

    @event(Unfollowed)
    def _unfollowed(self, client_event_id: str | None, occurred_at: datetime) -> None:
        self.following = False
        self._remember(client_event_id)


# -- the rules, shared with the lean write model (domain/pairs.py) ---------------------------
def start_fields(viewer_id: UUID, creator_id: UUID, occurred_at: datetime) -> dict[str, Any]:
    if viewer_id == creator_id:
        raise InvariantViolation("a viewer cannot follow themselves", code="self_follow")
    return {
        "viewer_id": viewer_id,
        "creator_id": creator_id,
        "occurred_at": check_event_time(occurred_at),
    }


def follow_fields(
    following: bool, client_event_id: str | None, occurred_at: datetime
) -> dict[str, Any]:
    if following:
        raise InvariantViolation("viewer already follows this creator", code="already_following")
    return {
        "client_event_id": check_client_id(client_event_id),
        "occurred_at": check_event_time(occurred_at),
    }


def unfollow_fields(
    following: bool, client_event_id: str | None, occurred_at: datetime
) -> dict[str, Any]:
    if not following:
        raise InvariantViolation("viewer does not follow this creator", code="not_following")
    return {
        "client_event_id": check_client_id(client_event_id),
        "occurred_at": check_event_time(occurred_at),
    }
