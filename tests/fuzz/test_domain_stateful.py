"""Hypothesis stateful tests of the domain, through the applications on the memory:// store.

A RuleBasedStateMachine drives every command a client or moderator can send (creators,
videos, views, likes, unlikes, shares, comments, follows, reports, flags, escalations,
decisions, appeals, appeal rulings, hand suspensions, creator deletions) and runs the
moderation policy when it chooses to. Beside the real applications it keeps a plain model
of what must be true, so each command is checked for the exact outcome (recorded, or
rejected with the expected error code: no accepted invalid data, no rejected valid data).

After every step the aggregates must agree with the model and with rules stated on their
own (likes never negative and one per viewer, a removed video accepts no engagement,
strikes are the removal decisions not overturned, three strikes suspend, case status moves
only along legal transitions). At the end of each run, and whenever the machine chooses,
the projections run and the read models must equal both the recount from the event
history (adapters/readmodel/recount.py) and the model.

Short by default; `HYPOTHESIS_PROFILE=long` runs many more and longer programs
(profiles in tests/fuzz/conftest.py).
"""

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.bootstrap import Container, bootstrap
from adapters.readmodel.recount import recount_check
from adapters.readmodel.tables import rm_cases, rm_creators, rm_videos
from adapters.settings import Settings
from commands.base import CommandResult
from commands.engagement import Signal
from domain.creator import STRIKES_TO_SUSPEND, Creator
from domain.engagement import Engagement
from domain.errors import DomainError
from domain.following import Following
from domain.moderation import ModerationCase

from .conftest import FIGURES, profile

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DURATION = 10.0  # every video is 10 s long: watch time may be 0..50 s (replay factor 5)
VIEWERS = [UUID(int=n) for n in range(1, 5)]
REPORTERS = [UUID(int=n) for n in range(100, 104)]
MODERATOR = UUID(int=700)
CLIENT_IDS = st.none() | st.sampled_from(["c1", "c2", "c3"])

# Legal case status transitions (a settled case reopens on a new report or flag).
LEGAL = {
    ("open", "open"),
    ("open", "decided"),
    ("decided", "decided"),
    ("decided", "open"),
    ("decided", "appealed"),
    ("appealed", "appealed"),
    ("appealed", "closed"),
    ("closed", "closed"),
    ("closed", "open"),
}


class VirtualClock:
    """Event time advances one second per command: deterministic, never in the future."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=next(self._ticks))


# -- the model ---------------------------------------------------------------------------


@dataclass
class CreatorModel:
    strike_cases: set[UUID] = field(default_factory=set)
    suspended: bool = False
    for_strikes: bool = False
    touched_by_hand: bool = False  # suspended or reinstated manually at least once
    videos: int = 0


@dataclass
class VideoModel:
    creator_id: UUID
    status: str = "active"  # as committed: the policy changes it only when it runs
    views: int = 0
    completions: int = 0
    viewers: set[UUID] = field(default_factory=set)
    shares: int = 0


@dataclass
class PairModel:
    liked: bool = False
    comments: set[UUID] = field(default_factory=set)
    deleted: set[UUID] = field(default_factory=set)
    client_ids: set[str] = field(default_factory=set)


@dataclass
class CaseModel:
    creator_id: UUID
    status: str = "open"
    priority: str = "normal"
    reporters: set[UUID] = field(default_factory=set)
    reports: int = 0
    outcome: str | None = None
    appealed: bool = False


PRIORITIES = ("low", "normal", "high", "critical")
REASONS = ("spam", "hate", "other")


# Creators and videos of the running machine (st.runner() is the machine in a stateful
# test): drawn by index, so programs shrink towards the first ones.
CREATORS = st.runner().flatmap(lambda m: st.sampled_from(m.creator_ids))
VIDEOS = st.runner().flatmap(lambda m: st.sampled_from(m.video_ids))
COMPARE_EVERY = 10  # commands between read-model comparisons chosen by the machine


class DomainMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.container: Container = bootstrap(
            Settings(database_url="memory://", alert_actions_enabled=False), clock=VirtualClock()
        )
        self.m_creators: dict[UUID, CreatorModel] = {}
        self.m_videos: dict[UUID, VideoModel] = {}
        self.pairs: dict[tuple[UUID, UUID], PairModel] = {}
        self.follows: dict[tuple[UUID, UUID], bool] = {}
        self.cases: dict[UUID, CaseModel] = {}  # by video id
        self.pending: list[tuple[str, UUID, str]] = []  # (event, video id, outcome/resolution)
        self.seen_status: dict[UUID, str] = {}
        self.handles = itertools.count()
        self.creator_ids: list[UUID] = []
        self.video_ids: list[UUID] = []
        self.commands_since_compare = 0
        FIGURES["stateful runs"] += 1
        # Every program starts from two creators with one video each.
        for _ in range(2):
            self.register_creator()
        for creator_id in list(self.creator_ids):
            self.publish_video(creator_id)

    # -- helpers -----------------------------------------------------------------------
    def expect(self, error: str | None, command: Any) -> CommandResult | None:
        """Run a command: it must be recorded when `error` is None, else rejected with
        exactly that code (and then record nothing)."""
        FIGURES["stateful commands"] += 1
        self.commands_since_compare += 1
        head = self.container.head_position
        try:
            result = command()
        except DomainError as e:
            assert error is not None, f"valid command rejected: {e.code}: {e.message}"
            assert e.code == error, f"expected {error}, got {e.code}: {e.message}"
            assert self.container.head_position == head, "a rejected command recorded events"
            FIGURES["stateful rejections checked"] += 1
            return None
        assert error is None, f"command accepted, expected rejection {error}"
        return result

    def signal(self, error: str | None, **kwargs: Any) -> CommandResult | None:
        return self.expect(error, lambda: self.container.engagement.record(Signal(**kwargs)))

    def accepts(self, video_id: UUID) -> bool:
        return self.m_videos[video_id].status in ("active", "restricted")

    def pair(self, viewer: UUID, video_id: UUID) -> PairModel | None:
        return self.pairs.get((viewer, video_id))

    def engagement_error(self, viewer: UUID, video_id: UUID, cid: str | None) -> str | None:
        """The first rule a like/unlike/view/share hits before its own: a redelivery is a
        duplicate (even on a removed video), else the video must accept engagement."""
        pair = self.pair(viewer, video_id)
        if pair is not None and cid is not None and cid in pair.client_ids:
            return "duplicate"
        return None if self.accepts(video_id) else "video_unavailable"

    def record_pair(self, viewer: UUID, video_id: UUID, cid: str | None) -> PairModel:
        pair = self.pairs.setdefault((viewer, video_id), PairModel())
        if cid is not None:
            pair.client_ids.add(cid)
        return pair

    def check_duplicate(self, result: CommandResult | None) -> None:
        assert result is not None and result.details.get("status") == "duplicate"
        FIGURES["stateful redeliveries dropped"] += 1

    # -- content -------------------------------------------------------------------------
    @rule()
    def register_creator(self) -> None:
        result = self.expect(
            None,
            lambda: self.container.content.register_creator(
                handle=f"creator{next(self.handles)}", display_name="C", region="SE"
            ),
        )
        assert result is not None
        self.m_creators[result.id] = CreatorModel()
        self.creator_ids.append(result.id)

    @rule(creator=CREATORS)
    def publish_video(self, creator: UUID) -> None:
        error = "creator_suspended" if self.m_creators[creator].suspended else None
        result = self.expect(
            error,
            lambda: self.container.content.publish_video(
                creator_id=creator,
                caption="clip",
                hashtags=["#Fun"],
                sound_id="s1",
                duration_seconds=DURATION,
            ),
        )
        if result is not None:
            self.m_videos[result.id] = VideoModel(creator_id=creator)
            self.m_creators[creator].videos += 1
            self.video_ids.append(result.id)

    @rule(video=VIDEOS)
    def delete_video(self, video: UUID) -> None:
        model = self.m_videos[video]
        error = "already_deleted" if model.status == "deleted" else None
        if self.expect(error, lambda: self.container.content.delete_video(video)) is not None:
            model.status = "deleted"

    @rule(creator=CREATORS)
    def suspend_by_hand(self, creator: UUID) -> None:
        model = self.m_creators[creator]
        error = "already_suspended" if model.suspended else None
        if self.expect(
            error, lambda: self.container.content.suspend_creator(creator, reason="abuse")
        ):
            model.suspended, model.for_strikes, model.touched_by_hand = True, False, True

    @rule(creator=CREATORS)
    def reinstate_by_hand(self, creator: UUID) -> None:
        model = self.m_creators[creator]
        error = None if model.suspended else "not_suspended"
        if self.expect(
            error, lambda: self.container.content.reinstate_creator(creator, reason="ok")
        ):
            model.suspended, model.for_strikes, model.touched_by_hand = False, False, True

    # -- engagement ----------------------------------------------------------------------
    @rule(
        video=VIDEOS,
        viewer=st.sampled_from(VIEWERS),
        watch=st.sampled_from([0.0, 3.5, DURATION, DURATION * 5, DURATION * 5 + 0.5]),
        completed=st.booleans(),
        cid=CLIENT_IDS,
    )
    def view(self, video: UUID, viewer: UUID, watch: float, completed: bool, cid: Any) -> None:
        error = self.engagement_error(viewer, video, cid)
        if error is None and watch > DURATION * 5:
            error = "invalid_watch_time"
        kwargs = dict(watch_seconds=watch, completed=completed, client_event_id=cid)
        result = self.signal(
            None if error == "duplicate" else error,
            kind="view",
            viewer_id=viewer,
            video_id=video,
            **kwargs,
        )
        if error == "duplicate":
            self.check_duplicate(result)
        elif result is not None:
            self.record_pair(viewer, video, cid)
            model = self.m_videos[video]
            model.views += 1
            model.completions += int(completed)
            model.viewers.add(viewer)

    @rule(video=VIDEOS, viewer=st.sampled_from(VIEWERS), cid=CLIENT_IDS)
    def like(self, video: UUID, viewer: UUID, cid: Any) -> None:
        self._like_or_unlike("like", video, viewer, cid)

    @rule(video=VIDEOS, viewer=st.sampled_from(VIEWERS), cid=CLIENT_IDS)
    def unlike(self, video: UUID, viewer: UUID, cid: Any) -> None:
        self._like_or_unlike("unlike", video, viewer, cid)

    def _like_or_unlike(self, kind: str, video: UUID, viewer: UUID, cid: str | None) -> None:
        error = self.engagement_error(viewer, video, cid)
        pair = self.pair(viewer, video)
        liked = pair is not None and pair.liked
        if error is None and kind == "like" and liked:
            error = "already_liked"
        if error is None and kind == "unlike" and not liked:
            error = "not_liked"
        result = self.signal(
            None if error == "duplicate" else error,
            kind=kind,
            viewer_id=viewer,
            video_id=video,
            client_event_id=cid,
        )
        if error == "duplicate":
            self.check_duplicate(result)
        elif result is not None:
            self.record_pair(viewer, video, cid).liked = kind == "like"

    @rule(
        video=VIDEOS,
        viewer=st.sampled_from(VIEWERS),
        channel=st.sampled_from(["whatsapp", "copy_link", "carrier_pigeon"]),
        cid=CLIENT_IDS,
    )
    def share(self, video: UUID, viewer: UUID, channel: str, cid: Any) -> None:
        error = self.engagement_error(viewer, video, cid)
        if error is None and channel == "carrier_pigeon":
            error = "invalid_channel"
        result = self.signal(
            None if error == "duplicate" else error,
            kind="share",
            viewer_id=viewer,
            video_id=video,
            channel=channel,
            client_event_id=cid,
        )
        if error == "duplicate":
            self.check_duplicate(result)
        elif result is not None:
            self.record_pair(viewer, video, cid)
            self.m_videos[video].shares += 1

    @rule(video=VIDEOS, viewer=st.sampled_from(VIEWERS), text=st.sampled_from(["nice", "   "]))
    def comment(self, video: UUID, viewer: UUID, text: str) -> None:
        error = None if self.accepts(video) else "video_unavailable"
        if error is None and not text.strip():
            error = "empty_text"
        comment_id = uuid4()
        result = self.signal(
            error,
            kind="comment",
            viewer_id=viewer,
            video_id=video,
            comment_id=comment_id,
            text=text,
        )
        if result is not None:
            assert result.details["comment_id"] == str(comment_id)
            self.record_pair(viewer, video, None).comments.add(comment_id)

    @rule(video=VIDEOS, viewer=st.sampled_from(VIEWERS), data=st.data())
    def delete_comment(self, video: UUID, viewer: UUID, data: st.DataObject) -> None:
        pair = self.pair(viewer, video)
        owned = sorted(pair.comments | pair.deleted) if pair else []
        comment_id = data.draw(st.sampled_from([*owned, UUID(int=999)]), label="comment_id")
        if pair is None:  # no stream yet: starting one needs a video that accepts engagement
            error = "video_unavailable" if not self.accepts(video) else "comment_not_found"
        else:  # deleting an own comment needs no available video (a removed one included)
            error = None if comment_id in pair.comments else "comment_not_found"
        result = self.signal(
            error, kind="delete_comment", viewer_id=viewer, video_id=video, comment_id=comment_id
        )
        if result is not None and pair is not None:
            pair.comments.remove(comment_id)
            pair.deleted.add(comment_id)

    @rule(creator=CREATORS, viewer=st.sampled_from(VIEWERS), data=st.data())
    def follow_or_unfollow(self, creator: UUID, viewer: UUID, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(["follow", "unfollow"]), label="kind")
        if data.draw(st.booleans(), label="creator follows self"):
            viewer = creator
        following = self.follows.get((viewer, creator), False)
        if viewer == creator:
            error = "self_follow"
        elif kind == "follow":
            error = "already_following" if following else None
        else:
            error = None if following else "not_following"
        if self.signal(error, kind=kind, viewer_id=viewer, creator_id=creator) is not None:
            self.follows[(viewer, creator)] = kind == "follow"

    # -- moderation ----------------------------------------------------------------------
    def reopen(self, case: CaseModel) -> None:
        if case.status in ("decided", "closed"):
            case.status = "open"
            case.reporters = set()

    def open_case(self, video: UUID) -> CaseModel:
        if video not in self.cases:
            self.cases[video] = CaseModel(creator_id=self.m_videos[video].creator_id)
        return self.cases[video]

    @rule(
        video=VIDEOS,
        reporter=st.sampled_from(REPORTERS),
        reason=st.sampled_from([*REASONS, "boredom"]),
    )
    def report(self, video: UUID, reporter: UUID, reason: str) -> None:
        case = self.cases.get(video)
        error = None if self.accepts(video) else "video_unavailable"
        if error is None and reason not in REASONS:
            error = "invalid_reason"
        if error is None and case and case.status == "open" and reporter in case.reporters:
            error = "already_reported"
        if self.expect(
            error,
            lambda: self.container.moderation.report_video(
                video, reporter_id=reporter, reason=reason
            ),
        ):
            case = self.open_case(video)
            self.reopen(case)
            case.reports += 1
            case.reporters.add(reporter)

    @rule(video=VIDEOS, score=st.sampled_from([0.0, 0.7, 1.0, 1.5]))
    def auto_flag(self, video: UUID, score: float) -> None:
        error = None if self.accepts(video) else "video_unavailable"
        if error is None and score > 1.0:
            error = "invalid_score"
        if self.expect(
            error,
            lambda: self.container.moderation.auto_flag_video(
                video, model="nsfw-v1", score=score, reasons=["skin"]
            ),
        ):
            self.reopen(self.open_case(video))

    def case_id(self, video: UUID) -> UUID:
        return ModerationCase.create_id(video)

    @rule(video=VIDEOS, priority=st.sampled_from([*PRIORITIES, "urgent"]))
    def escalate(self, video: UUID, priority: str) -> None:
        case = self.cases.get(video)
        if case is None:
            error = "case_not_found"
        elif priority not in PRIORITIES:
            error = "invalid_priority"
        elif case.status != "open":
            error = "case_not_open"
        elif PRIORITIES.index(priority) <= PRIORITIES.index(case.priority):
            error = "not_an_escalation"
        else:
            error = None
        if self.expect(
            error,
            lambda: self.container.moderation.escalate_case(self.case_id(video), priority=priority),
        ):
            assert case is not None
            case.priority = priority

    @rule(video=VIDEOS, outcome=st.sampled_from(["keep", "restrict", "remove", "ban"]))
    def decide(self, video: UUID, outcome: str) -> None:
        case = self.cases.get(video)
        if case is None:
            error = "case_not_found"
        elif outcome == "ban":
            error = "invalid_outcome"
        else:
            error = None if case.status == "open" else "case_not_open"
        if self.expect(
            error,
            lambda: self.container.moderation.decide_case(
                self.case_id(video), moderator_id=MODERATOR, outcome=outcome, policy="p-1"
            ),
        ):
            assert case is not None
            case.status, case.outcome = "decided", outcome
            self.pending.append(("decided", video, outcome))

    @rule(video=VIDEOS, by_creator=st.booleans())
    def appeal(self, video: UUID, by_creator: bool) -> None:
        case = self.cases.get(video)
        if case is None:
            error = "case_not_found"
        elif not by_creator:
            error = "not_video_creator"
        elif case.appealed:
            error = "already_appealed"
        elif case.status != "decided" or case.outcome not in ("restrict", "remove"):
            error = "nothing_to_appeal"
        else:
            error = None
        appellant = self.m_videos[video].creator_id if by_creator else VIEWERS[0]
        if self.expect(
            error,
            lambda: self.container.moderation.appeal_case(
                self.case_id(video), appellant_id=appellant, statement="please"
            ),
        ):
            assert case is not None
            case.status, case.appealed = "appealed", True

    @rule(video=VIDEOS, resolution=st.sampled_from(["upheld", "overturned", "maybe"]))
    def resolve_appeal(self, video: UUID, resolution: str) -> None:
        case = self.cases.get(video)
        if case is None:
            error = "case_not_found"
        elif resolution == "maybe":
            error = "invalid_resolution"
        else:
            error = None if case.status == "appealed" else "no_pending_appeal"
        if self.expect(
            error,
            lambda: self.container.moderation.resolve_appeal(
                self.case_id(video), moderator_id=MODERATOR, resolution=resolution
            ),
        ):
            assert case is not None
            case.status = "closed"
            if resolution == "overturned":
                case.outcome = "keep"
                self.pending.append(("overturned", video, resolution))

    @precondition(lambda self: bool(self.pending))
    @rule()
    def run_policy(self) -> None:
        """The policy follows the log: each decision and ruling takes effect once, in order."""
        processed = self.container.run_policies_until_idle()
        assert processed >= len(self.pending)
        self.apply_pending()

    def apply_pending(self) -> None:
        for what, video_id, outcome in self.pending:
            video = self.m_videos[video_id]
            creator = self.m_creators[video.creator_id]
            case_id = self.case_id(video_id)
            restore = what == "overturned" or outcome == "keep"
            if restore and video.status in ("restricted", "removed"):
                video.status = "active"
            elif outcome == "restrict" and video.status == "active":
                video.status = "restricted"
            elif outcome == "remove":
                if video.status in ("active", "restricted"):
                    video.status = "removed"
                if case_id not in creator.strike_cases:
                    creator.strike_cases.add(case_id)
                    if len(creator.strike_cases) >= STRIKES_TO_SUSPEND and not creator.suspended:
                        creator.suspended, creator.for_strikes = True, True
            if what == "overturned" and case_id in creator.strike_cases:
                creator.strike_cases.remove(case_id)
                if creator.for_strikes and len(creator.strike_cases) < STRIKES_TO_SUSPEND:
                    creator.suspended, creator.for_strikes = False, False
        self.pending.clear()

    @precondition(lambda self: self.commands_since_compare >= COMPARE_EVERY)
    @rule()
    def project_and_compare(self) -> None:
        self.check_read_models()

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def aggregates_agree_with_model(self) -> None:
        content = self.container.content
        for video_id, model in self.m_videos.items():
            assert content.get_video(video_id).status == model.status, video_id
        for creator_id, model in self.m_creators.items():
            creator: Creator = content.get_creator(creator_id)
            assert set(creator.strike_cases) == model.strike_cases
            assert len(creator.strike_cases) == len(set(creator.strike_cases))
            assert creator.suspended == model.suspended
            if not model.touched_by_hand:  # three active strikes suspend, fewer do not
                assert creator.suspended == (creator.active_strikes >= STRIKES_TO_SUSPEND)
            for case_id in creator.strike_cases:  # a strike belongs to one of its own videos
                assert self.container.moderation.get_case(case_id).creator_id == creator_id

    @invariant()
    def engagement_agrees_with_model(self) -> None:
        engagement = self.container.engagement
        for (viewer, video_id), model in self.pairs.items():
            pair: Engagement = engagement.get_engagement(viewer, video_id)
            assert pair.liked == model.liked
            assert set(pair.comments) == model.comments
            assert not set(pair.comments) & set(pair.deleted_comments)
        for (viewer, creator_id), following in self.follows.items():
            stream: Following = engagement.get_following(viewer, creator_id)
            assert stream.following == following

    @invariant()
    def cases_move_only_along_legal_transitions(self) -> None:
        for video_id, model in self.cases.items():
            case = self.container.moderation.get_case(self.case_id(video_id))
            status = str(case.status)
            assert status == model.status
            assert case.report_count == model.reports
            assert case.appealed == model.appealed
            previous = self.seen_status.get(video_id, "open")
            assert (previous, status) in LEGAL, f"illegal transition {previous} -> {status}"
            self.seen_status[video_id] = status
            if status == "appealed":
                assert case.last_outcome in ("restrict", "remove")

    # -- read models ---------------------------------------------------------------------
    def check_read_models(self) -> None:
        """Projections caught up: read models equal the recount and the model."""
        self.container.run_projections_until_idle()
        report = recount_check(
            self.container.store, self.container.content.mapper, self.container.read_engine
        )
        assert report.ok, report.mismatches[:5]
        FIGURES["read-model comparisons"] += 1
        self.commands_since_compare = 0
        FIGURES["events recounted"] += report.events
        with self.container.read_engine.connect() as conn:
            videos = {r.video_id: r for r in conn.execute(sa.select(rm_videos))}
            creators = {r.creator_id: r for r in conn.execute(sa.select(rm_creators))}
            cases = {r.video_id: r for r in conn.execute(sa.select(rm_cases))}
        assert set(videos) == set(self.m_videos)
        for video_id, model in self.m_videos.items():
            row = videos[video_id]
            likes = sum(1 for (_, v), p in self.pairs.items() if v == video_id and p.liked)
            comments = sum(len(p.comments) for (_, v), p in self.pairs.items() if v == video_id)
            assert row.likes >= 0
            assert (row.status, row.views, row.completions, row.unique_viewers) == (
                model.status,
                model.views,
                model.completions,
                len(model.viewers),
            )
            assert (row.likes, row.comments, row.shares) == (likes, comments, model.shares)
        assert set(creators) == set(self.m_creators)
        for creator_id, model in self.m_creators.items():
            row = creators[creator_id]
            followers = sum(1 for (_, c), f in self.follows.items() if c == creator_id and f)
            views = sum(v.views for v in self.m_videos.values() if v.creator_id == creator_id)
            status = "suspended" if model.suspended else "active"
            assert (row.status, row.strikes, row.followers, row.videos, row.views) == (
                status,
                len(model.strike_cases),
                followers,
                model.videos,
                views,
            )
        assert set(cases) == set(self.cases)
        for video_id, model in self.cases.items():
            row = cases[video_id]
            assert (row.status, row.reports, row.appealed, row.outcome, row.priority) == (
                model.status,
                model.reports,
                model.appealed,
                model.outcome,
                model.priority,
            )

    def teardown(self) -> None:
        try:
            # Every decision takes effect, then the read models must match the history.
            self.container.run_policies_until_idle()
            self.apply_pending()
            self.aggregates_agree_with_model()
            self.check_read_models()
        finally:
            self.container.close()


@pytest.mark.timeout(900)
def test_domain_state_machine() -> None:
    """Random command programs keep every invariant; read models equal the recount."""
    DomainMachine.TestCase.settings = profile("stateful")
    DomainMachine.TestCase().runTest()
