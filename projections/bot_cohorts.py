"""The bot detector's second stage: cohorts of new, narrow accounts on one video.

Bots that imitate people (human-like watch times, devices and sources, a few views a
minute spread over hours) look like any popular video minute by minute. What a view
farm cannot hide is who its accounts are, arriving together:
- fresh: first seen less than `fresh_hours` ago;
- narrow: at least half of the account's views so far went to the video, judged once
  its first session is over (`settle_minutes`: a real newcomer's first minutes are a
  burst of swipes whose first video is, for a moment, all it has seen) and withdrawn as
  soon as its views spread;
- asocial: an account that comments or shares is a person (farms sell views and likes),
  and is never flagged again.
One such account is no evidence (many real newcomers watch a video or two and go);
many of them on one video, far beyond what the platform shows at that time, are.

So every `slot_minutes` of event time, for each candidate video of the trailing window
(`window_slots` slots, at least `min_flagged` flagged accounts), the stage counts its
views `n` and its flagged accounts `k`, estimates the platform's flagged accounts per
view `p = K / N` over the same window, and scores the video by the binomial z-score
(k - n p) / sqrt(n p (1 - p)). Per view, not per distinct viewer: a popular video's
distinct viewers lean towards light (hence new) users, as heavy users count once however
often they come back, which would make every popular video look like a cohort. `p` is
estimated robustly: candidate videos far above it (campaigns themselves, which would
otherwise inflate it and hide each other) are left out until the estimate settles. A
young video (published less than `young_hours` ago) is compared with young videos (the
feed tries new videos on samples of viewers, new ones among them), leaning on the
others' share while there are few. Real counts are overdispersed (sessions, shares,
tastes), so the bar for z is an empirical one, far above a binomial test's.

A second count sharpens it: `r`, the flagged accounts that came back to the video (two
views or more), scored the same way against the platform's rate of them; a video's
score is the stronger of the two. Greedy farms (paid per view) give themselves away by
repeats, careful ones (an account used about once) by the cohort.

Cost: this runs on every view, so per view it is a few dict operations (views counted
per slot and video; fresh accounts, a minority, tracked per account); the totals N, K,
R are kept as views and (video, account) pairs enter the window and leave it (per slot,
dropped whole), so no slot needs a pass over every video: only candidates are scored.
Everything is plain ints, sets and dicts keyed by `UUID.int` (pickled with the
position); accounts leave the fresh table once older than `fresh_hours`. The set of
accounts ever seen grows with the audience, as any "first seen" needs.

Cold start: a detector that starts with the stream cannot tell a new account from an
old one during its first `fresh_hours` (everyone is "first seen" then), so accounts
first seen in that time are taken as established; no account is new until then, and no
video is scored until a whole window has passed since.
"""

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

OUTLIER_ROUNDS = 8  # the share's estimate settles in two or three
YOUNG_PRIOR_VIEWS = 20  # young videos' shares lean on the others' by this many views


@dataclass(frozen=True)
class CohortParams:
    fresh_hours: float = 6.0  # an account is new this long after its first event
    slot_minutes: int = 10  # how often videos are scored
    window_slots: int = 18  # over the trailing three hours
    z_threshold: float = 13.0  # z at which a video is anomalous (counts are overdispersed)
    min_flagged: int = 8  # fewer flagged accounts on a video: never scored, never alerts
    outlier_z: float = 3.0  # videos above this are left out of the platform's share
    share_floor: float = 0.02  # the platform's share is never taken below this
    young_hours: float = 4.0  # videos published this recently are compared among themselves
    settle_minutes: float = 30.0  # an account's first session: flagged only after it


@dataclass(frozen=True)
class CohortScore:
    video: int  # UUID.int
    slot: int  # the slot that closed (slots since the epoch)
    views: int  # views of the video in the window
    flagged: int  # distinct new-and-narrow accounts among its viewers
    share: float  # the platform's flagged accounts per view over the window (robust)
    z_flagged: float
    repeated: int  # of whom came back to it (two views or more)
    repeat_share: float
    z_repeated: float

    @property
    def z(self) -> float:
        """The stronger of the two pieces of evidence."""
        return max(self.z_flagged, self.z_repeated)

    @property
    def features(self) -> dict[str, float]:
        return {"views": float(self.views), "flagged": float(self.flagged),
                "share": self.share, "z_flagged": self.z_flagged,
                "repeated": float(self.repeated), "repeat_share": self.repeat_share,
                "z_repeated": self.z_repeated}  # fmt: skip


FLAGGED, REPEATED = 0, 1  # the state's account tables


@dataclass
class CohortState:
    seen: set[int] = field(default_factory=set)  # every account ever seen
    started: float | None = None  # the first view's time (epoch s)
    # account -> [first seen (epoch s), its views, {video: [its views of it, latest slot]},
    # social (it commented or shared), settled (its first session is over)]
    fresh: dict[int, list[Any]] = field(default_factory=dict)
    arrivals: deque[tuple[float, int]] = field(default_factory=deque)  # (first seen, account)
    settling: deque[tuple[float, int]] = field(default_factory=deque)  # ... not yet settled
    views: dict[int, dict[int, int]] = field(default_factory=dict)  # slot -> video -> views
    window_views: int = 0  # views in `views`
    video_views: dict[int, int] = field(default_factory=dict)  # video -> views in `views`
    oldest: int | None = None  # the window's first slot (older slots are gone)
    # Per table (FLAGGED, REPEATED): video -> account -> slot of its latest such view in
    # the window; how many entries each table holds; and per slot, the entries (table,
    # video, account) that leave with it unless seen again since.
    tables: tuple[dict[int, dict[int, int]], ...] = field(default_factory=lambda: ({}, {}))
    totals: list[int] = field(default_factory=lambda: [0, 0])
    expiry: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    candidates: set[int] = field(default_factory=set)  # videos with min_flagged flagged
    young: dict[int, float] = field(default_factory=dict)  # video -> published (epoch s)
    next_slot: int | None = None  # the next slot to close
    due_at: float = -math.inf  # ... once the watermark reaches this (close_due is cheap)


class CohortStage:
    """Pure logic over a `CohortState`; the projection owns (and pickles) the state."""

    def __init__(self, params: CohortParams, lateness_seconds: float) -> None:
        self.params = params
        self.slot_seconds = 60.0 * params.slot_minutes
        self.fresh_seconds = 3600.0 * params.fresh_hours
        self.young_seconds = 3600.0 * params.young_hours
        self.settle_seconds = 60.0 * params.settle_minutes
        self.lateness = lateness_seconds

    def published(self, s: CohortState, video: int, t: float) -> None:
        s.young[video] = t  # young until young_hours later (see _forget)

    def social(self, s: CohortState, account: int) -> None:
        """The account commented or shared: people do that, view farms do not (their
        customers buy views and likes). It is no longer flagged on anything."""
        f = s.fresh.get(account)
        if f is None or f[3]:
            return
        f[3] = True
        if f[4]:
            for video in f[2]:
                self._unmark(s, video, account)

    def view(self, s: CohortState, video: int, viewer: int, t: float) -> None:
        slot = int(t // self.slot_seconds)
        if s.oldest is not None and slot < s.oldest:
            return  # so late that its slot has left the window already
        counts = s.views.get(slot)
        if counts is None:
            counts = s.views[slot] = {}
        counts[video] = counts.get(video, 0) + 1
        s.window_views += 1
        s.video_views[video] = s.video_views.get(video, 0) + 1
        f = s.fresh.get(viewer)
        if f is None:
            if viewer in s.seen:
                return  # most views: an account seen before, hours ago
            s.seen.add(viewer)
            if s.started is None:
                s.started = t
            if t < s.started + self.fresh_seconds:
                return  # first seen while the stream is young: no telling it is new
            f = s.fresh[viewer] = [t, 0, {}, False, False]
            s.arrivals.append((t, viewer))
            s.settling.append((t, viewer))
        elif t - f[0] > self.fresh_seconds or f[3]:
            return  # no longer new, or known to be a person
        f[1] += 1
        total, counts = f[1], f[2]
        seen = counts.get(video)
        if seen is None:
            seen = counts[video] = [0, slot]
        seen[0] += 1
        seen[1] = max(seen[1], slot)
        here = seen[0]
        if not f[4]:
            return  # flagged once settled (see _settle), not in its first session
        # Narrow on a video: at least half of the account's views so far. A view of
        # another video can end that for the videos before: their flags are withdrawn
        # (a real newcomer's session spreads over many videos; a farm account's does not).
        for other, (count, _) in counts.items():
            if other != video and 2 * count < total:
                self._unmark(s, other, viewer)
        if 2 * here >= total:
            self._mark(s, FLAGGED, video, viewer, slot)
            if here > 1:  # and back to it: two views or more
                self._mark(s, REPEATED, video, viewer, slot)
        else:
            self._unmark(s, video, viewer)

    def _mark(self, s: CohortState, table: int, video: int, account: int, slot: int) -> None:
        entries = s.tables[table].get(video)
        if entries is None:
            entries = s.tables[table][video] = {}
        latest = entries.get(account)
        if latest is None:
            s.totals[table] += 1
            if table == FLAGGED and len(entries) + 1 == self.params.min_flagged:
                s.candidates.add(video)
        elif latest >= slot:
            return  # already in the window as late or later
        entries[account] = slot
        leaving = s.expiry.get(slot)
        if leaving is None:
            leaving = s.expiry[slot] = []
        leaving.append((table, video, account))

    def _settle(self, s: CohortState, slot: int) -> None:
        """Flag the accounts whose first session is over by the end of `slot` on the videos
        they are narrow on. A real newcomer's first minutes are a burst of swipes whose
        first video is, for a moment, all it has seen; judged after them, it is not."""
        end = (slot + 1) * self.slot_seconds
        oldest = slot - self.params.window_slots + 1
        while s.settling and s.settling[0][0] + self.settle_seconds <= end:
            _, account = s.settling.popleft()
            f = s.fresh.get(account)
            if f is None or f[3]:
                continue
            f[4] = True
            for video, (count, latest) in f[2].items():
                if 2 * count >= f[1] and latest >= oldest:
                    self._mark(s, FLAGGED, video, account, latest)
                    if count > 1:
                        self._mark(s, REPEATED, video, account, latest)

    def _unmark(self, s: CohortState, video: int, account: int) -> None:
        for table in (FLAGGED, REPEATED):
            entries = s.tables[table].get(video)
            if entries is not None and account in entries:
                self._drop(s, table, video, entries, account)

    def _drop(self, s: CohortState, table: int, video: int, entries: dict[int, int],
              account: int) -> None:  # fmt: skip
        del entries[account]
        s.totals[table] -= 1
        if table == FLAGGED and len(entries) == self.params.min_flagged - 1:
            s.candidates.discard(video)
        if not entries:
            del s.tables[table][video]

    def close_due(self, s: CohortState, watermark: float) -> list[CohortScore]:
        """Score every slot whose end (plus lateness) the watermark has passed."""
        if watermark < s.due_at:
            return []
        last = int((watermark - self.lateness) // self.slot_seconds) - 1  # last closable
        scores: list[CohortScore] = []
        if s.next_slot is None:
            s.next_slot = last + 1  # nothing to score before the first event
        while s.next_slot <= last:
            scores += self._close(s, s.next_slot)
            s.next_slot += 1
            if not s.window_views and s.next_slot <= last:
                s.next_slot = last  # a quiet gap: nothing in any window to score
        s.due_at = (s.next_slot + 1) * self.slot_seconds + self.lateness
        return scores

    def _close(self, s: CohortState, slot: int) -> list[CohortScore]:
        self._forget(s, slot)
        self._settle(s, slot)
        if not s.candidates or s.started is None:
            return []
        window_start = (slot - self.params.window_slots + 1) * self.slot_seconds
        if window_start < s.started + self.fresh_seconds:
            return []  # the window still holds views from before anyone could be new
        flagged, repeated = s.tables
        views = s.video_views
        counts = []
        for v in sorted(s.candidates):  # sorted: a set's order may change on unpickling
            k = len(flagged[v])
            counts.append((v, max(views.get(v, 0), k), k, len(repeated.get(v, ()))))
        # A young video's audience is not the platform's: the feed tries new videos on
        # samples of viewers, new ones among them. Young videos are compared with young
        # videos (leaning on the others' shares while there are few), the rest with the rest.
        young = [0, 0, 0]  # views, flagged, repeated
        for v in s.young:
            young[0] += views.get(v, 0)
            for table in (FLAGGED, REPEATED):
                entries = s.tables[table].get(v)
                young[table + 1] += len(entries) if entries else 0
        everyone = (max(s.window_views, s.totals[FLAGGED]), *s.totals)
        old = [total - y for total, y in zip(everyone, young, strict=True)]
        established = [c for c in counts if c[0] not in s.young]
        fresh = [c for c in counts if c[0] in s.young]
        shares = {False: self._shares(old, established)}
        if fresh:
            share, again = self._shares(young, fresh)
            prior, prior_again = shares[False]
            weight = YOUNG_PRIOR_VIEWS
            shares[True] = (
                (share * young[0] + prior * weight) / (young[0] + weight),
                (again * young[0] + prior_again * weight) / (young[0] + weight),
            )
        out = []
        for v, n, k, r in counts:
            share, again = shares[v in s.young]
            out.append(CohortScore(v, slot, n, k, share, _z(k, n, share), r, again,
                                   _z(r, n, again)))  # fmt: skip
        return out

    def _shares(self, totals: list[int], counts: list[tuple[int, int, int, int]]
                ) -> tuple[float, float]:  # fmt: skip
        """The flagged and repeated shares of a group of videos (`totals`: its views,
        flagged and repeated accounts; `counts`: its candidates)."""
        return (
            self._share(totals[0], totals[1], [(n, k) for _, n, k, _ in counts]),
            self._share(totals[0], totals[2], [(n, r) for _, n, _, r in counts]),
        )

    def _share(self, total: int, hits: int, candidates: list[tuple[int, int]]) -> float:
        """The platform's share `hits / total`, leaving out candidate videos far above it
        (campaigns, which would inflate it and hide each other) until those left out stay
        the same. Other videos are never left out: too few hits to matter."""
        p = self.params
        share, left_out = hits / total if total else p.share_floor, -1
        for _ in range(OUTLIER_ROUNDS):
            share = min(max(share, p.share_floor), 1.0 - p.share_floor)
            n_in, k_in, out = total, hits, 0
            for n, k in candidates:
                if k - n * share > p.outlier_z * math.sqrt(n * share * (1.0 - share)):
                    n_in, k_in, out = n_in - n, k_in - k, out + 1
            share = k_in / n_in if n_in > 0 else share
            if out == left_out:
                break
            left_out = out
        return min(max(share, p.share_floor), 1.0 - p.share_floor)

    def _forget(self, s: CohortState, slot: int) -> None:
        """Drop views that left the window ending at `slot`, and accounts no longer new."""
        oldest = slot - self.params.window_slots + 1
        for old in [x for x in s.views if x < oldest]:  # a window's slots: a few dozen
            for video, count in s.views.pop(old).items():
                s.window_views -= count
                left = s.video_views[video] - count
                if left:
                    s.video_views[video] = left
                else:
                    del s.video_views[video]
        s.oldest = oldest
        for seen_at in sorted(x for x in s.expiry if x < oldest):  # a window's slots: a few
            for table, video, account in s.expiry.pop(seen_at):
                entries = s.tables[table].get(video)
                if entries is None or entries.get(account) != seen_at:
                    continue  # seen again since (a later slot's list holds it), or withdrawn
                self._drop(s, table, video, entries, account)
        end = (slot + 1) * self.slot_seconds
        for video in [v for v, at in s.young.items() if at < end - self.young_seconds]:
            del s.young[video]
        horizon = end - self.fresh_seconds
        while s.arrivals and s.arrivals[0][0] < horizon:
            _, account = s.arrivals.popleft()
            s.fresh.pop(account, None)


def _z(k: int, n: int, share: float) -> float:
    """Binomial z-score of k successes in n draws at `share`."""
    return (k - n * share) / math.sqrt(n * share * (1.0 - share))
