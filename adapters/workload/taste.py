"""Viewer taste: people watch what they like, not only what everybody watches.

Videos belong to topics: their hashtags, except the ones put on every kind of video
(#fyp, #foryou, #viral). Each viewer has a few interests (one to four topics, the
popular topics more often, the others too) with Pareto strengths: most of a viewer's
interest is in one or two of them.

Views come in sessions: the watcher of a session's first view (drawn as before, heavy
users more often) watches about SESSION_MEAN videos in a row, a swipe apart. A session
is a for-you session with FOR_YOU_SHARE, the for-you share of the traffic sources the
vocabulary uses (78 %); the others keep the global, popularity-only picks (search,
shares, profiles). A for-you pick explores with EXPLORE: a video by popularity alone;
otherwise it picks one of the viewer's topics (by its strength times the popularity
weight the topic holds now) and a video of that topic by popularity. The feed does not
show a video the viewer has seen if it can help it (a few draws). Nothing here tells a
model a viewer's taste: only which videos the viewer watched does, the way a real
platform learns it.

Draws come from this phase's own generator (`random.Random(f"{seed}/taste")`); the main
generator still draws the global pick and the watcher of every view, so the number of
views per slot is unchanged (a session that starts late in an hour may end a few
minutes into the next).
"""

import bisect
import itertools
import random
from typing import TYPE_CHECKING
from uuid import UUID

from adapters.workload.model import PublishVideo
from adapters.workload.vocabulary import _TAGS

if TYPE_CHECKING:  # the generator imports this module
    from adapters.workload.generator import _Simulation

FOR_YOU_SHARE = 0.78  # of sessions: the for-you share of traffic sources (vocabulary)
EXPLORE = 0.2  # of for-you picks: drawn by popularity alone, outside the viewer's interests
TOPIC_FREE = frozenset({"fyp", "foryou", "viral"})  # on every kind of video
TOPICS = tuple(t for t in _TAGS if t not in TOPIC_FREE)
INTERESTS = (1, 4)  # topics per viewer: 1 + Poisson(1), at most 4
STRENGTH_SHAPE = 1.2  # Pareto: one interest usually dominates
RETRIES = 3  # draws to find a video the viewer has not seen
SESSION_MEAN = 6.0  # views in a row by one viewer
SWIPE_SECONDS = (8.0, 45.0)  # from one view of a session to the next


class Taste:
    """Interests per viewer and topics per video, and the for-you pick (phase state)."""

    def __init__(self, sim: "_Simulation") -> None:
        self.sim = sim
        self.rng = random.Random(f"{sim.config.seed}/taste")
        self.topics_of: list[tuple[str, ...]] = []
        self._new_videos()
        # Popular topics are chosen more often (as the square root of their video share).
        counts = {t: 1 for t in TOPICS}
        for topics in self.topics_of:
            for t in topics:
                counts[t] += 1
        self.topic_cum = list(itertools.accumulate(counts[t] ** 0.5 for t in TOPICS))
        self.interests = {v: self._interests() for v in sim.viewers}
        self.seen: dict[UUID, set[int]] = {}

    def _new_videos(self) -> None:
        """Topics of the videos published since last asked (trend phases and live traffic
        publish videos too), from what their publication said."""
        videos = self.sim.videos[len(self.topics_of) :]
        if not videos:
            return
        by_id: dict[UUID, tuple[str, ...]] = {}
        for _t, _seq, cls, kwargs in self.sim.items:
            if cls is PublishVideo:
                tags = (h for h in kwargs["hashtags"] if h in TOPICS)
                by_id[kwargs["video_id"]] = tuple(dict.fromkeys(tags))
        self.topics_of += [by_id.get(v.id, ()) for v in videos]

    def _interests(self) -> dict[str, float]:
        rng = self.rng
        n = min(INTERESTS[1], INTERESTS[0] + _poisson1(rng))
        chosen: dict[str, float] = {}
        while len(chosen) < n:
            t = TOPICS[bisect.bisect(self.topic_cum, rng.random() * self.topic_cum[-1])]
            chosen.setdefault(t, rng.paretovariate(STRENGTH_SHAPE))
        total = sum(chosen.values())
        return {t: s / total for t, s in chosen.items()}

    def views(
        self, picks: list[int], watchers: list[UUID], slot: tuple[list[int], list[float]],
        t0: float, length: float,
    ) -> list[tuple[UUID, int, float]]:  # fmt: skip
        """The slot's views as (viewer, video, time), in sessions: the watcher of a
        session's first view watches SESSION_MEAN videos on average in a row, from the
        for-you feed (FOR_YOU_SHARE of sessions) or from the global picks."""
        self._new_videos()
        rng, feed = self.rng, _Slot(self, *slot)
        out: list[tuple[UUID, int, float]] = []
        left, viewer, for_you, t = 0, watchers[0], False, t0
        for video, watcher in zip(picks, watchers, strict=True):
            if left == 0:  # a new session
                viewer, t = watcher, t0 + rng.uniform(0.0, length)
                for_you = viewer in self.interests and rng.random() < FOR_YOU_SHARE
                left = 1 + int(rng.expovariate(1.0 / SESSION_MEAN))  # about geometric
            else:
                t += rng.uniform(*SWIPE_SECONDS)
            if for_you:
                video = self._for_you(viewer, feed)
            self.seen.setdefault(viewer, set()).add(video)
            out.append((viewer, video, t))
            left -= 1
        return out

    def _for_you(self, viewer: UUID, slot: "_Slot") -> int:
        rng, interests = self.rng, self.interests[viewer]
        # The topics' shares of the feed: the viewer's strengths, weighed by how much of
        # the slot's popularity each topic holds now (a topic with nothing out is skipped).
        topical = [(t, s * slot.topic(t)[1]) for t, s in interests.items()]
        mass = sum(w for _, w in topical)
        parts: list[tuple[str | None, float]] = [(None, EXPLORE if mass else 1.0)]
        parts += [(t, (1.0 - EXPLORE) * w / mass) for t, w in topical if w > 0.0]
        cum = list(itertools.accumulate(w for _, w in parts))
        seen = self.seen.get(viewer, ())
        video = -1
        for _ in range(RETRIES):
            topic = parts[bisect.bisect(cum, rng.random() * cum[-1])][0]
            videos, total, vcum = slot.pool(topic)
            video = videos[bisect.bisect(vcum, rng.random() * total)]
            if video not in seen:
                break
        return video


class _Slot:
    """One hour's eligible videos and their weights, by topic (computed when asked)."""

    def __init__(self, taste: Taste, eligible: list[int], cum: list[float]) -> None:
        self.taste, self.eligible, self.cum = taste, eligible, cum
        self.total = cum[-1]
        self.topics: dict[str, tuple[list[int], float, list[float]]] = {}

    def pool(self, topic: str | None) -> tuple[list[int], float, list[float]]:
        if topic is None:
            return self.eligible, self.total, self.cum
        videos, total, vcum = self.topic(topic)
        return videos, total or self.total, vcum  # an empty topic: the whole slot

    def topic(self, topic: str) -> tuple[list[int], float, list[float]]:
        found = self.topics.get(topic)
        if found is None:
            videos, vcum, total, previous = [], [], 0.0, 0.0
            topics_of = self.taste.topics_of
            for i, c in zip(self.eligible, self.cum, strict=True):
                if topic in topics_of[i]:
                    total += c - previous
                    videos.append(i)
                    vcum.append(total)
                previous = c
            if not videos:  # nothing of the topic out yet: the feed shows the rest
                videos, total, vcum = self.eligible, 0.0, self.cum
            found = self.topics[topic] = (videos, total, vcum)
        return found


def _poisson1(rng: random.Random) -> int:
    """A Poisson(1) draw (Knuth's method)."""
    k, p, limit = 0, rng.random(), 0.36787944117144233
    while p > limit:
        k += 1
        p *= rng.random()
    return k
