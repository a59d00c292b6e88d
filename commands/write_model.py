"""The engagement write model: the state lean decisions read, kept in memory.

What the engagement rules need: each pair stream's state (`PairState`, `FollowState`),
each video's facts (status, duration, creator, version) and which creators exist. Pairs
are bounded by an LRU (`max_streams`); videos and creators are few and kept.

Coherence with the store (docs/architecture.md, "The write path"):
* pair streams are written only through this model in this process, and every write is
  checked at commit: a stream decided as new must not exist (`StreamsExist`), and the
  versions written must be free (the primary key);
* a stream the model does not hold is decided as new without a read, unless it may be
  stored: the model dropped it (evicted, or its state turned out provisional) and
  `maybe_stored` says so; those are read (from their latest snapshot) before deciding;
* a stream's state is provisional while the request that wrote it is uncommitted
  (`wrote`). If that request is refused, the state is not the store's: `usable` finds
  the refused commit at the next read and drops the state (to be read again), and the
  appender refuses every request decided on it (`AppendRequest.after`). No write-model
  lock is taken by the appender's thread;
* a stream with an uncommitted write is never evicted (a read from the store would miss
  that write and decide a version that is taken);
* videos are read, not written: a decision records the versions it read, the appender
  learns every status change at commit time (`watched`, the topics below) and refuses a
  request whose video changed since; `watched` updates the cached facts first.
"""

import threading
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any
from uuid import UUID

from commands.appending import refused
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


class MaybeStored:
    """Ids of streams the write model dropped and that may be stored: a Bloom filter over
    the ids' own bits (stream ids are SHA-1 derived, uniform), in two generations of
    `capacity` ids each; when the newer one is full the older is cleared and reused.

    A false positive costs a read that finds nothing; an id older than both generations
    is decided as new again and, if it is stored, refused at commit (`StreamsExist`) and
    read then: slower, never wrong. 2 x 4 MiB; at capacity about 1 in 6,000 unknown ids
    is read needlessly.
    """

    BITS = 1 << 25  # per generation
    MASK = BITS - 1

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._new = bytearray(self.BITS >> 3)
        self._old = bytearray(self.BITS >> 3)
        self._count = 0
        # The generations that hold ids, newest first: a process that dropped nothing
        # (most of the time: drops follow evictions and refusals) checks no bits at all.
        self._filled: tuple[bytearray, ...] = ()

    @classmethod
    def _slots(cls, stream_id: UUID) -> tuple[int, int, int, int]:
        i, m = stream_id.int, cls.MASK  # bits 50-79 hold the UUID's version and variant
        return i & m, (i >> 25) & m, (i >> 80) & m, (i >> 103) & m

    def add(self, stream_id: UUID) -> None:
        if self._count >= self.capacity:
            self._new, self._old = bytearray(self.BITS >> 3), self._new
            self._count = 0
            self._filled = (self._old,)
        bits = self._new
        for s in self._slots(stream_id):
            bits[s >> 3] |= 1 << (s & 7)
        self._count += 1
        filled = self._filled
        if not filled or filled[0] is not bits:
            self._filled = (bits, *filled)

    def __contains__(self, stream_id: UUID) -> bool:
        filled = self._filled
        if not filled:
            return False
        i, m = stream_id.int, self.MASK  # as `_slots`, inline (called for every signal)
        a, b, c, d = i & m, (i >> 25) & m, (i >> 80) & m, (i >> 103) & m
        for bits in filled:
            if (
                bits[a >> 3] >> (a & 7) & 1
                and bits[b >> 3] >> (b & 7) & 1
                and bits[c >> 3] >> (c & 7) & 1
                and bits[d >> 3] >> (d & 7) & 1
            ):
                return True
        return False


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
        self.maybe_stored = MaybeStored(max(1_000, min(1_000_000, 5 * max_streams)))
        self.dropped = 0  # provisional states dropped after a refusal (tests, metrics)

    # -- pair streams (call with the lock held) --------------------------------------------
    def usable(self, stream_id: UUID) -> bool:
        """Whether a decision may use what the model knows of this stream: its state, or
        that it is not stored (absent and not `maybe_stored`). A state left by a refused
        request is dropped here, and the stream must then be read."""
        pending = self._pending
        commit = pending.get(stream_id) if pending else None
        if commit is not None and commit.done():
            del pending[stream_id]
            if refused(commit):
                self._drop(stream_id)
        if stream_id in self._streams:
            return True
        return stream_id not in self.maybe_stored

    def stream(self, stream_id: UUID) -> Stream | None:
        state = self._streams.pop(stream_id, None)
        if state is not None:
            self._streams[stream_id] = state  # most recently used
        return state

    def put(self, state: Stream) -> None:
        """Hold `state` as the most recently used; `trim` bounds the model afterwards (not
        here: a decision's own streams must stay until its request is pending)."""
        streams = self._streams
        streams.pop(state.id, None)
        streams[state.id] = state

    def trim(self) -> None:
        """Drop the least recently used streams beyond `max_streams`, skipping those with
        an uncommitted write (moved to the recent end: they are in use)."""
        streams, pending = self._streams, self._pending
        n = len(streams) - self.max_streams
        if n <= 0:
            return
        keep: list[Stream] = []
        for stream_id in list(streams)[: n + len(pending)]:
            if n == 0:
                break
            state = streams.pop(stream_id)
            commit = pending.get(stream_id)
            if commit is not None and not commit.done():
                keep.append(state)
                continue
            self.maybe_stored.add(stream_id)
            n -= 1
        for state in keep:
            streams[state.id] = state

    def wrote(self, stream_ids: Iterable[UUID], commit: "Future[list[int]]") -> None:
        """These streams' state is now that of a request committed by `commit`."""
        pending = self._pending
        if len(pending) > self.max_streams:  # settle the finished ones
            for stream_id in [s for s, f in pending.items() if f.done()]:
                self.usable(stream_id)
        for stream_id in stream_ids:
            pending[stream_id] = commit

    def pending_write(self, stream_id: UUID) -> "Future[list[int]] | None":
        """The unfinished commit whose provisional state this stream holds, if any (after
        `usable`: a finished one was settled there)."""
        commit = self._pending.get(stream_id)
        if commit is None or commit.done():
            return None
        return commit

    def forget(self, stream_ids: Iterable[UUID]) -> None:
        for stream_id in stream_ids:
            self._drop(stream_id)

    def _drop(self, stream_id: UUID) -> None:
        if self._streams.pop(stream_id, None) is not None:
            self.dropped += 1
        self.maybe_stored.add(stream_id)

    def __len__(self) -> int:
        return len(self._streams)

    # -- what the store says ---------------------------------------------------------------
    def learn(self, aggregates: Iterable[Any]) -> dict[UUID, Stream]:
        """Hold what was read from the store (aggregates folded by the library); returns
        the pair streams' states as read. A pair stream the model holds already keeps its
        state unless the one read is newer and nothing of this process is pending on it
        (the model's may be ahead of the store: uncommitted writes)."""
        read: dict[UUID, Stream] = {}
        with self.lock:
            for aggregate in aggregates:
                if isinstance(aggregate, Engagement):
                    read[aggregate.id] = self._learn(PairState.from_aggregate(aggregate))
                elif isinstance(aggregate, Following):
                    read[aggregate.id] = self._learn(FollowState.from_aggregate(aggregate))
                elif isinstance(aggregate, Video):
                    self.videos[aggregate.id] = VideoFacts.of(aggregate)
                elif isinstance(aggregate, Creator):
                    self.creators.add(aggregate.id)
            self.trim()
        return read

    def _learn(self, state: Stream) -> Stream:
        stream_id = state.id
        self.usable(stream_id)  # settles a finished commit (drops a refused one's state)
        held = self._streams.get(stream_id)
        if held is None or (held.version < state.version and not self.pending_write(stream_id)):
            self.put(state)
        return state

    def watched(self, events: list[tuple[int, UUID, int, str]]) -> None:
        """Video status changes the appender saw committed (by any writer)."""
        with self.lock:
            for _position, video_id, version, topic in events:
                facts = self.videos.get(video_id)
                if facts is not None and version > facts.version:
                    facts.status = WATCHED_STATUS[topic]
                    facts.version = version
