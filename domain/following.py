"""Following: one viewer's follow relationship with one creator (one stream per pair)."""

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvariantViolation
from domain.values import check_event_time, derived_id


class Following(Aggregate):
    class Started(Aggregate.Created):
        viewer_id: UUID
        creator_id: UUID
        occurred_at: datetime

    class Followed(Aggregate.Event):
        occurred_at: datetime

    class Unfollowed(Aggregate.Event):
        occurred_at: datetime

    @staticmethod
    def create_id(viewer_id: UUID, creator_id: UUID) -> UUID:
        return derived_id("following", viewer_id, creator_id)

    @event(Started)
    def __init__(self, viewer_id: UUID, creator_id: UUID, occurred_at: datetime) -> None:
        self.viewer_id = viewer_id
        self.creator_id = creator_id
        self.following = False

    @classmethod
    def start(cls, *, viewer_id: UUID, creator_id: UUID, occurred_at: datetime) -> "Following":
        if viewer_id == creator_id:
            raise InvariantViolation("a viewer cannot follow themselves", code="self_follow")
        return cls(viewer_id=viewer_id, creator_id=creator_id, occurred_at=check_event_time(occurred_at))

    def follow(self, *, occurred_at: datetime) -> None:
        if self.following:
            raise InvariantViolation("viewer already follows this creator", code="already_following")
        self._followed(occurred_at=check_event_time(occurred_at))

    def unfollow(self, *, occurred_at: datetime) -> None:
        if not self.following:
            raise InvariantViolation("viewer does not follow this creator", code="not_following")
        self._unfollowed(occurred_at=check_event_time(occurred_at))

    @event(Followed)
    def _followed(self, occurred_at: datetime) -> None:
        self.following = True

    @event(Unfollowed)
    def _unfollowed(self, occurred_at: datetime) -> None:
        self.following = False
