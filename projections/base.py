"""What every projection is: pure logic from events to calls on a view interface.

A projection never opens a connection or a transaction. The runner (adapters/) reads a
batch of events in global order, opens one read-model transaction, creates the
projection's view for that transaction, calls `process` for each event, then writes the
projection's tracking position in the same transaction and commits: every event takes
effect exactly once, also across crashes (the model is eventsourcing's Projection +
TrackingRecorder, batched so that a transaction carries many events).
"""

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

TView = TypeVar("TView")


class Projection(ABC, Generic[TView]):
    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]  # event topics it reads (filtered in the database)
    version: ClassVar[int] = 1  # bump when the read model's meaning changes (rebuild)

    @abstractmethod
    def process(self, event: Any, position: int, view: TView) -> None:
        """Apply one event (recorded at `position`) to the view."""
