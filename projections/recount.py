"""Recount: the core counters recomputed straight from the event history.

Independent of the projections' code paths (no batching, no deltas, no lookups in read
models), so comparing its result with the read models catches lost or doubled events.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.creator import Creator
from domain.engagement import Engagement
from domain.following import Following
from domain.video import Video

VIDEO_COUNTERS = ("views", "unique_viewers", "likes", "shares", "comments", "completions")
CREATOR_COUNTERS = ("followers", "videos", "strikes", "views")


@dataclass
class Counts:
    videos: dict[UUID, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    creators: dict[UUID, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    events: int = 0


def recount(events: Iterable[Any]) -> Counts:
    counts = Counts()
    viewers: set[tuple[UUID, UUID]] = set()
    follow_pairs: dict[UUID, UUID] = {}
    creator_of: dict[UUID, UUID] = {}
    for e in events:
        counts.events += 1
        match e:
            case Creator.Registered():
                counts.creators[e.originator_id]["videos"] += 0
            case Video.Published():
                creator_of[e.originator_id] = e.creator_id
                counts.creators[e.creator_id]["videos"] += 1
                counts.videos[e.originator_id]["views"] += 0
            case Engagement.Viewed():
                v = counts.videos[e.video_id]
                v["views"] += 1
                v["completions"] += int(e.completed)
                if (e.video_id, e.viewer_id) not in viewers:
                    viewers.add((e.video_id, e.viewer_id))
                    v["unique_viewers"] += 1
                counts.creators[creator_of[e.video_id]]["views"] += 1
            case Engagement.Liked():
                counts.videos[e.video_id]["likes"] += 1
            case Engagement.Unliked():
                counts.videos[e.video_id]["likes"] -= 1
            case Engagement.Shared():
                counts.videos[e.video_id]["shares"] += 1
            case Engagement.Commented():
                counts.videos[e.video_id]["comments"] += 1
            case Engagement.CommentDeleted():
                counts.videos[e.video_id]["comments"] -= 1
            case Following.Started():
                follow_pairs[e.originator_id] = e.creator_id
            case Following.Followed():
                counts.creators[follow_pairs[e.originator_id]]["followers"] += 1
            case Following.Unfollowed():
                counts.creators[follow_pairs[e.originator_id]]["followers"] -= 1
            case Creator.StrikeIssued():
                counts.creators[e.originator_id]["strikes"] += 1
            case Creator.StrikeWithdrawn():
                counts.creators[e.originator_id]["strikes"] -= 1
    return counts
