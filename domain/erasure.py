"""Erasure: the log's record that a viewer was forgotten (GDPR art. 17).

The viewer's personal free text is crypto-shredded by deleting the viewer's key
(adapters/erasure); this event tells the projections, at a position in the log, to drop
what they derived from the viewer (model state, rows). Because it is an event, a rebuild
or a replay drops it at the same point, and the result does not depend on when a
projection happened to run. One stream per viewer: forgetting twice records nothing new.
"""

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.values import check_event_time, derived_id


class Erasure(Aggregate):
    class ViewerForgotten(Aggregate.Created):
        viewer_id: UUID
        occurred_at: datetime

    @staticmethod
    def create_id(viewer_id: UUID) -> UUID:
        return derived_id("erasure", viewer_id)

    @event(ViewerForgotten)
    def __init__(self, viewer_id: UUID, occurred_at: datetime) -> None:
        self.viewer_id = viewer_id
        self.forgotten_at = occurred_at

    @classmethod
    def forget_viewer(cls, *, viewer_id: UUID, occurred_at: datetime) -> "Erasure":
        return cls(viewer_id=viewer_id, occurred_at=check_event_time(occurred_at))
