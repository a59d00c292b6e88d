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
    # How it partitions when run from Kafka by consumer groups (docs/scaling.md):
    # "video" (per video, creator-level events per creator: the relay's key), "viewer", or
    # "global" (one instance sees every event in global order: the single-process runner).
    # A keyed projection's read model must not depend on the order across keys.
    partition_by: ClassVar[str] = "global"

    @abstractmethod
    def process(self, event: Any, position: int, view: TView) -> None:
        """Apply one event (recorded at `position`) to the view."""
