"""The engagement write model: the state lean decisions read, kept in memory.

What the engagement rules need: each pair stream's state (`PairState`, `FollowState`),
each video's facts (status, duration, creator, version) and which creators exist. Pairs
are bounded by an LRU (`max_streams`); videos and creators are few and kept.

Coherence with the store (docs/architecture.md, "The write path"):
* pair streams are written only through this model in this process, and every write is
  checked at commit: a stream decided as new must not exist (`StreamsExist`), and the
  versions written must be free (the primary key). A stream this process does not hold
  is decided as new without a read; when the store has it after all, the commit refuses
  the request and names the stream, which `load` reads before the next attempt;
* a request refused for any reason leaves provisional state behind: `refused` forgets
  its streams and refuses every queued request decided on them, under the lock, before
  any other decision can read them;
* videos are read, not written: a decision records the versions it read, the appender
  learns every status change at commit time (`watched`, the topics below) and refuses a
  request whose video changed since; `watched` updates the cached facts first.
"""

import threading
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any
from uuid import UUID

from domain.creator import Creator
from domain.engagement import Engagement
from domain.following import Following
from domain.pairs import FollowState, PairState, VideoFacts, topic_of
from domain.video import Video, VideoStatus

# Video events that change what engagement rules decide (the appender's watched topics).
WATCHED_STATUS = {
    topic_of(Video.Restricted): VideoStatus.RESTRICTED,
    topic_of(Video.Removed): VideoStatus.REMOVED,
    topic_of(Video.Restored): VideoStatus.ACTIVE,
    topic_of(Video.DeletedByCreator): VideoStatus.DELETED,
}
WATCHED_TOPICS = tuple(WATCHED_STATUS)
DEFAULT_MAX_STREAMS = 200_000  # pair states held (about 0.5 KB each)

Stream = PairState | FollowState


class WriteModel:
    def __init__(self, max_streams: int = DEFAULT_MAX_STREAMS) -> None:
        self.lock = threading.RLock()
        self.max_streams = max_streams
        self._streams: dict[UUID, Stream] = {}  # insertion order = least recently used first
        self.videos: dict[UUID, VideoFacts] = {}
        self.creators: set[UUID] = set()
        # The commit of the latest request that wrote each stream, while it may be pending:
        # a decision that reads such a stream reads provisional state (see engagement.py).
        self._pending: dict[UUID, Future[list[int]]] = {}

    # -- pair streams (call with the lock held) --------------------------------------------
    def stream(self, stream_id: UUID) -> Stream | None:
        state = self._streams.pop(stream_id, None)
        if state is not None:
            self._streams[stream_id] = state  # most recently used
        return state

    def put(self, state: Stream) -> None:
        self._streams.pop(state.id, None)
        self._streams[state.id] = state
        while len(self._streams) > self.max_streams:
            del self._streams[next(iter(self._streams))]

    def wrote(self, stream_ids: Iterable[UUID], commit: "Future[list[int]]") -> None:
        """These streams' state is now that of a request committed by `commit`."""
        pending = self._pending
        if len(pending) > self.max_streams:  # drop the settled ones
            self._pending = pending = {s: f for s, f in pending.items() if not f.done()}
        for stream_id in stream_ids:
            pending[stream_id] = commit

    def pending_write(self, stream_id: UUID) -> "Future[list[int]] | None":
        """The unfinished commit whose provisional state this stream holds, if any."""
        commit = self._pending.get(stream_id)
        if commit is None:
            return None
        if commit.done():
            del self._pending[stream_id]
            return None
        return commit

    def forget(self, stream_ids: Iterable[UUID]) -> None:
        for stream_id in stream_ids:
            self._streams.pop(stream_id, None)

    def __len__(self) -> int:
        return len(self._streams)

    # -- what the store says ---------------------------------------------------------------
    def learn(self, aggregates: Iterable[Any]) -> None:
        """Hold what was read from the store (aggregates folded by the library)."""
        with self.lock:
            for aggregate in aggregates:
                if isinstance(aggregate, Engagement):
                    self.put(PairState.from_aggregate(aggregate))
                elif isinstance(aggregate, Following):
                    self.put(FollowState.from_aggregate(aggregate))
                elif isinstance(aggregate, Video):
                    self.videos[aggregate.id] = VideoFacts.of(aggregate)
                elif isinstance(aggregate, Creator):
                    self.creators.add(aggregate.id)

    def watched(self, events: list[tuple[int, UUID, int, str]]) -> None:
        """Video status changes the appender saw committed (by any writer)."""
        with self.lock:
            for _position, video_id, version, topic in events:
                facts = self.videos.get(video_id)
                if facts is not None and version > facts.version:
                    facts.status = WATCHED_STATUS[topic]
                    facts.version = version
