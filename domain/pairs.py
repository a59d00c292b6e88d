"""Lean write models of the pair streams: Engagement and Following on plain state.

The aggregates (engagement.py, following.py) are the reference. Building one per signal
costs the library's event machinery (event objects, the `@event` decorator, mutate) for
objects that are thrown away after one decision; at engagement rates that is most of the
write path. These classes hold exactly the aggregates' attributes, check the very same
rule functions (`view_fields`, `follow_fields`, ...: one definition of every rule, in
the aggregate's module) and record what they decide as data: a `NewEvent` with the
stored state in the library's field order, for the codec to encode. They never read the
clock: `now` (the library's recording timestamp) comes from the caller.

`tests/unit/test_pairs.py` feeds random signal sequences to both versions and asserts
the same events (topic, version, fields), the same errors and the same final state.
Reading a stream back goes through the aggregate (`from_aggregate`): the library's fold
stays the only way stored events become state.
"""

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from domain.engagement import (
    MAX_REMEMBERED_CLIENT_IDS,
    Engagement,
    check_video,
    comment_fields,
    delete_comment_fields,
    like_fields,
    share_fields,
    unlike_fields,
    view_fields,
)
from domain.following import Following, follow_fields, start_fields, unfollow_fields
from domain.values import check_event_time
from domain.video import REPLAY_FACTOR, Video, ensure_accepts_engagement


def topic_of(cls: type) -> str:
    """The library's topic of a class (eventsourcing.utils.get_topic, for unregistered
    classes): module and qualified name."""
    return f"{cls.__module__}:{cls.__qualname__}"


ENGAGEMENT = topic_of(Engagement)
FOLLOWING = topic_of(Following)
STARTED = topic_of(Engagement.Started)
VIEWED = topic_of(Engagement.Viewed)
LIKED = topic_of(Engagement.Liked)
UNLIKED = topic_of(Engagement.Unliked)
SHARED = topic_of(Engagement.Shared)
COMMENTED = topic_of(Engagement.Commented)
COMMENT_DELETED = topic_of(Engagement.CommentDeleted)
FOLLOW_STARTED = topic_of(Following.Started)
FOLLOWED = topic_of(Following.Followed)
UNFOLLOWED = topic_of(Following.Unfollowed)


_new = tuple.__new__


class NewEvent(NamedTuple):
    """An event decided by a lean write model, not stored yet: what the library's mapper
    would store (the state without originator id and version, class_version included)."""

    topic: str
    originator_id: UUID
    originator_version: int
    state: dict[str, Any]


class VideoFacts:
    """What engagement rules read of a video (the Video aggregate's `VideoLike` part)."""

    __slots__ = ("creator_id", "duration_seconds", "id", "status", "version")

    def __init__(
        self, id: UUID, creator_id: UUID, status: str, duration_seconds: float, version: int
    ) -> None:
        self.id = id
        self.creator_id = creator_id
        self.status = status
        self.duration_seconds = duration_seconds
        self.version = version

    @classmethod
    def of(cls, video: Video) -> "VideoFacts":
        return cls(video.id, video.creator_id, video.status, video.duration_seconds, video.version)

    @property
    def max_watch_seconds(self) -> float:
        return self.duration_seconds * REPLAY_FACTOR

    def ensure_accepts_engagement(self) -> None:
        ensure_accepts_engagement(self.status)


class _Pair:
    """What both pair streams share: identity, version, timestamps, redelivery memory."""

    __slots__ = (
        "client_event_ids", "created_on", "id", "modified_on", "position", "seen", "version",
    )  # fmt: skip

    def __init__(self, stream_id: UUID, now: datetime) -> None:
        self.id = stream_id
        self.version = 0
        self.position = 0  # the global position of the latest event, when known
        self.created_on = now
        self.modified_on = now
        self.client_event_ids: list[str] = []
        self.seen: set[str] = set()  # the same ids as a set: `has_seen` in O(1)

    def has_seen(self, client_event_id: str | None) -> bool:
        return client_event_id is not None and client_event_id in self.seen

    def _remember(self, client_event_id: str | None) -> None:
        if client_event_id is not None:
            self.client_event_ids.append(client_event_id)
            self.seen.add(client_event_id)
            if len(self.client_event_ids) > MAX_REMEMBERED_CLIENT_IDS:
                self.seen.discard(self.client_event_ids.pop(0))

    def _record(self, topic: str, state: dict[str, Any]) -> NewEvent:
        self.version += 1
        self.modified_on = state["timestamp"]
        # NewEvent(...) without the namedtuple's Python-level __new__ (ten times slower).
        return _new(NewEvent, (topic, self.id, self.version, state))

    def _load(self, aggregate: Any) -> None:
        self.version = aggregate.version
        self.created_on = aggregate.created_on
        self.modified_on = aggregate.modified_on
        self.client_event_ids = list(aggregate.client_event_ids)
        self.seen = set(self.client_event_ids)


class PairState(_Pair):
    """An Engagement stream (one viewer, one video) as plain state."""

    __slots__ = (
        "comments",
        "creator_id",
        "deleted_comments",
        "liked",
        "video_id",
        "viewer_id",
        "views",
    )

    def __init__(
        self, stream_id: UUID, viewer_id: UUID, video_id: UUID, creator_id: UUID, now: datetime
    ) -> None:
        super().__init__(stream_id, now)
        self.viewer_id = viewer_id
        self.video_id = video_id
        self.creator_id = creator_id
        self.liked = False
        self.views = 0
        self.comments: list[UUID] = []
        self.deleted_comments: list[UUID] = []

    @classmethod
    def start(
        cls,
        stream_id: UUID,
        viewer_id: UUID,
        video: VideoFacts,
        occurred_at: datetime,
        now: datetime,
    ) -> tuple["PairState", NewEvent]:
        """`Engagement.start`: a new stream and its Started event."""
        video.ensure_accepts_engagement()
        state = {
            "timestamp": now,
            "originator_topic": ENGAGEMENT,
            "viewer_id": viewer_id,
            "video_id": video.id,
            "creator_id": video.creator_id,
            "occurred_at": check_event_time(occurred_at),
        }
        pair = cls(stream_id, viewer_id, video.id, video.creator_id, now)
        return pair, pair._record(STARTED, state)

    @classmethod
    def from_aggregate(cls, aggregate: Engagement) -> "PairState":
        pair = cls(
            aggregate.id, aggregate.viewer_id, aggregate.video_id, aggregate.creator_id,
            aggregate.created_on,
        )  # fmt: skip
        pair._load(aggregate)
        pair.liked = aggregate.liked
        pair.views = aggregate.views
        pair.comments = list(aggregate.comments)
        pair.deleted_comments = list(aggregate.deleted_comments)
        return pair

    def attributes(self) -> dict[str, Any]:
        """The Engagement aggregate's attributes for this state (tests compare them)."""
        return {
            "_id": self.id, "_version": self.version, "_created_on": self.created_on,
            "_modified_on": self.modified_on, "viewer_id": self.viewer_id,
            "video_id": self.video_id, "creator_id": self.creator_id, "liked": self.liked,
            "views": self.views, "comments": list(self.comments),
            "deleted_comments": list(self.deleted_comments),
            "client_event_ids": list(self.client_event_ids),
        }  # fmt: skip

    # -- decisions: the aggregate's commands, same order of checks -------------------------
    def view(
        self,
        video: VideoFacts,
        watch_seconds: float,
        completed: bool,
        traffic_source: str,
        device: str,
        occurred_at: datetime,
        client_event_id: str | None,
        now: datetime,
    ) -> NewEvent | None:
        """A view, or None for a redelivered client event (nothing recorded)."""
        if self.has_seen(client_event_id):
            return None
        check_video(self.video_id, video)
        fields = view_fields(
            video, watch_seconds, completed, traffic_source, device, client_event_id, occurred_at
        )
        self.views += 1
        return self._pair_event(VIEWED, fields, now)

    def like(
        self, video: VideoFacts, occurred_at: datetime, client_event_id: str | None, now: datetime
    ) -> NewEvent | None:
        if self.has_seen(client_event_id):
            return None
        check_video(self.video_id, video)
        fields = like_fields(self.liked, client_event_id, occurred_at)
        self.liked = True
        return self._pair_event(LIKED, fields, now)

    def unlike(
        self, video: VideoFacts, occurred_at: datetime, client_event_id: str | None, now: datetime
    ) -> NewEvent | None:
        if self.has_seen(client_event_id):
            return None
        check_video(self.video_id, video)
        fields = unlike_fields(self.liked, client_event_id, occurred_at)
        self.liked = False
        return self._pair_event(UNLIKED, fields, now)

    def share(
        self,
        video: VideoFacts,
        channel: str,
        occurred_at: datetime,
        client_event_id: str | None,
        now: datetime,
    ) -> NewEvent | None:
        if self.has_seen(client_event_id):
            return None
        check_video(self.video_id, video)
        fields = share_fields(channel, client_event_id, occurred_at)
        return self._pair_event(SHARED, fields, now)

    def comment(
        self,
        video: VideoFacts,
        comment_id: UUID,
        text: str,
        occurred_at: datetime,
        client_event_id: str | None,
        now: datetime,
    ) -> NewEvent | None:
        if self.has_seen(client_event_id):
            return None
        check_video(self.video_id, video)
        fields = comment_fields(
            self.comments, self.deleted_comments, comment_id, text, client_event_id, occurred_at
        )
        self.comments.append(comment_id)
        return self._pair_event(COMMENTED, fields, now)

    def delete_comment(self, comment_id: UUID, occurred_at: datetime, now: datetime) -> NewEvent:
        fields = delete_comment_fields(self.comments, comment_id, occurred_at)
        self.comments.remove(comment_id)
        self.deleted_comments.append(comment_id)
        return self._record(
            COMMENT_DELETED,
            {"timestamp": now, "video_id": self.video_id, "viewer_id": self.viewer_id, **fields},
        )

    def _pair_event(self, topic: str, fields: dict[str, Any], now: datetime) -> NewEvent:
        self._remember(fields["client_event_id"])
        state = {"timestamp": now, "video_id": self.video_id, "viewer_id": self.viewer_id}
        state.update(fields)
        return self._record(topic, state)


class FollowState(_Pair):
    """A Following stream (one viewer, one creator) as plain state."""

    __slots__ = ("creator_id", "following", "viewer_id")

    def __init__(self, stream_id: UUID, viewer_id: UUID, creator_id: UUID, now: datetime) -> None:
        super().__init__(stream_id, now)
        self.viewer_id = viewer_id
        self.creator_id = creator_id
        self.following = False

    @classmethod
    def start(
        cls,
        stream_id: UUID,
        viewer_id: UUID,
        creator_id: UUID,
        occurred_at: datetime,
        now: datetime,
    ) -> tuple["FollowState", NewEvent]:
        """`Following.start`: a new stream and its Started event."""
        fields = start_fields(viewer_id, creator_id, occurred_at)
        pair = cls(stream_id, viewer_id, creator_id, now)
        state = {"timestamp": now, "originator_topic": FOLLOWING, **fields}
        return pair, pair._record(FOLLOW_STARTED, state)

    @classmethod
    def from_aggregate(cls, aggregate: Following) -> "FollowState":
        pair = cls(aggregate.id, aggregate.viewer_id, aggregate.creator_id, aggregate.created_on)
        pair._load(aggregate)
        pair.following = aggregate.following
        return pair

    def attributes(self) -> dict[str, Any]:
        """The Following aggregate's attributes for this state (tests compare them)."""
        return {
            "_id": self.id, "_version": self.version, "_created_on": self.created_on,
            "_modified_on": self.modified_on, "viewer_id": self.viewer_id,
            "creator_id": self.creator_id, "following": self.following,
            "client_event_ids": list(self.client_event_ids),
        }  # fmt: skip

    def follow(
        self, occurred_at: datetime, client_event_id: str | None, now: datetime
    ) -> NewEvent | None:
        if self.has_seen(client_event_id):
            return None
        fields = follow_fields(self.following, client_event_id, occurred_at)
        self.following = True
        return self._versioned(FOLLOWED, Following.Followed.class_version, fields, now)

    def unfollow(
        self, occurred_at: datetime, client_event_id: str | None, now: datetime
    ) -> NewEvent | None:
        if self.has_seen(client_event_id):
            return None
        fields = unfollow_fields(self.following, client_event_id, occurred_at)
        self.following = False
        return self._versioned(UNFOLLOWED, Following.Unfollowed.class_version, fields, now)

    def _versioned(
        self, topic: str, class_version: int, fields: dict[str, Any], now: datetime
    ) -> NewEvent:
        self._remember(fields["client_event_id"])
        # The mapper stores a class_version above 1 after the fields (persistence.Mapper).
        return self._record(topic, {"timestamp": now, **fields, "class_version": class_version})
